"""Where a job's report and artifact paths may point: inside its working directory, symlinks included.

gitlab-runner's rules and messages:

* ``commands/helpers/file_archiver.go`` (``findRelativePathInProject``): a path (absolute or
  relative, before any glob character) is made relative to the working directory; one that leaves
  it is refused with ``artifact path is not a subpath of project directory: PATH``. An absolute
  path inside the working directory (``$CI_PROJECT_DIR/dist``) is fine.
* ``helpers/archives/gzip_create.go`` (reports such as dotenv are uploaded as gzip): a report
  that is not a regular file (a symlink, a FIFO, a device) is refused with
  ``the "PATH" is not a regular file``.

Beyond gitlab-runner, a path whose *parent* directories resolve outside the working directory (a
symlinked folder pointing at ``/etc``) is refused too, with the first message: gitlab-runner would
follow such a folder. Files are opened without following a final symlink and without blocking on
a FIFO, so the check cannot be raced into reading something else once the job's processes are gone.

No Airflow import.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from airflow_ci_vars.errors import ArtifactPathError

__all__ = ["inside_real", "not_regular", "open_regular", "outside", "project_relative"]

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def outside(path: str) -> ArtifactPathError:
    """gitlab-runner's error for a path that leaves the working directory."""
    return ArtifactPathError(f"artifact path is not a subpath of project directory: {path}", path=path)


def not_regular(path: str) -> ArtifactPathError:
    """gitlab-runner's error for a report that is not a regular file."""
    return ArtifactPathError(f'the "{path}" is not a regular file', path=path)


def project_relative(root: str | os.PathLike[str], path: str) -> PurePosixPath:
    """``path`` relative to ``root``, lexically (``..`` resolved, symlinks not): gitlab-runner's
    ``findRelativePathInProject``. Raises :class:`ArtifactPathError` if it leaves ``root``."""
    base = os.path.abspath(root)
    full = os.path.normpath(os.path.join(base, path))
    relative = PurePosixPath(Path(os.path.relpath(full, base)).as_posix())
    if relative.parts[:1] == ("..",):
        raise outside(path)
    return relative


def inside_real(root: str | os.PathLike[str], relative: str | os.PathLike[str]) -> bool:
    """True if the folder holding ``relative`` resolves (symlinks followed) inside ``root``."""
    real_root = os.path.realpath(root)
    parent = os.path.realpath(os.path.dirname(os.path.join(real_root, os.fspath(relative))))
    return parent == real_root or parent.startswith(real_root.rstrip(os.sep) + os.sep)


def open_regular(root: str | os.PathLike[str], path: str) -> BinaryIO:
    """Open the regular file ``path`` (relative to ``root``, or absolute inside it) for reading.

    Raises :class:`ArtifactPathError` when it leaves ``root`` (lexically, or through a symlinked
    folder) or is not a regular file (a symlink, FIFO, socket or device is never followed nor
    read); ``FileNotFoundError`` when it does not exist.
    """
    relative = project_relative(root, path)
    if not inside_real(root, relative):
        raise outside(path)
    full = os.path.join(root, relative)
    if not stat.S_ISREG(os.lstat(full).st_mode):  # never open a FIFO or a device: it may block
        raise not_regular(path)
    try:
        fd = os.open(full, _OPEN_FLAGS)
    except OSError as err:
        if err.errno == errno.ELOOP:  # replaced by a symlink since
            raise not_regular(path) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise not_regular(path)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
