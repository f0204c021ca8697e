"""Which files a job's ``artifacts:`` keep (GitLab's ``paths``, ``exclude``, ``untracked``, ``when``).

Selection, path expansion and the stored manifest's format only: storing and restoring the files
(Airflow's ``ObjectStoragePath``) is done by ``operators.artifact_store``. No Airflow import. Paths
are relative to the job's working directory (or absolute inside it) and may not leave it, as in
gitlab-runner's ``commands/helpers/file_archiver.go``: a path that does is a warning
(``processPath: artifact path is not a subpath of project directory: PATH``) and keeps nothing; so
is a match reached through a symlinked folder that points outside (see ``job_paths``). As in
gitlab-runner's zip archiver (``helpers/archives/zip_create.go``), a symlink is kept **as a link**
(its target text), never as the content of what it points to, and a symlinked folder is not
descended into; a FIFO, socket or device is ignored with ``File ignored: PATH`` and
never opened.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from airflow_ci_vars.errors import ArtifactPathError
from airflow_ci_vars.job_paths import inside_real, outside, project_relative
from airflow_ci_vars.jobs import Artifacts
from airflow_ci_vars.variables.expansion import go_os_expand

__all__ = [
    "MANIFEST",
    "ArtifactSelection",
    "expanded_paths",
    "manifest",
    "manifest_entries",
    "relative_paths",
    "select_artifacts",
    "should_upload",
    "snapshot",
]

#: The file stored beside a job's artifact files: their relative paths and each symlink's target.
MANIFEST = "manifest.json"


@dataclass(frozen=True, slots=True)
class ArtifactSelection:
    """What to keep: regular files (their content), symlinks (``(path, target)``: the link itself),
    and GitLab-style warnings (missing or outside paths, ignored special files). Relative POSIX paths."""

    files: tuple[str, ...]
    warnings: tuple[str, ...]
    links: tuple[tuple[str, str], ...] = ()


def should_upload(artifacts: Artifacts, succeeded: bool) -> bool:
    """``artifacts:when``: ``on_success`` (default), ``on_failure`` or ``always``."""
    if artifacts.when == "always":
        return True
    return succeeded if artifacts.when == "on_success" else not succeeded


def expanded_paths(artifacts: Artifacts, environment: Mapping[str, str]) -> Artifacts:
    """``artifacts`` with ``paths`` and ``exclude`` expanded with the job's variables, as
    gitlab-runner does (``$NAME``, ``${NAME}``; an unset variable is empty)."""

    def expand(text: str) -> str:
        return go_os_expand(text, lambda name: environment.get(name, ""))

    return dataclasses.replace(
        artifacts,
        paths=tuple(expand(p) for p in artifacts.paths),
        exclude=tuple(expand(p) for p in artifacts.exclude),
    )


def snapshot(directory: str | os.PathLike[str]) -> frozenset[str]:
    """Relative paths of every file and symlink under ``directory`` (before the job: what is "tracked")."""
    root = Path(directory)
    return frozenset(_entries_under(root, root))


def _entries_under(root: Path, start: Path) -> Iterable[str]:
    """Everything but folders under ``start``; symlinks (to folders too) are entries, never followed."""
    if start.is_symlink() or not start.is_dir():
        yield start.relative_to(root).as_posix()
        return
    for dirpath, dirnames, filenames in os.walk(start):
        here = Path(dirpath)
        for name in filenames:
            yield (here / name).relative_to(root).as_posix()
        for name in dirnames:
            if (here / name).is_symlink():  # os.walk lists it but does not descend: keep the link
                yield (here / name).relative_to(root).as_posix()


def _expand(root: Path, pattern: str) -> set[str] | None:
    """Entries matched by one pattern (a folder matches everything under it); None if it leaves ``root``."""
    clean = pattern.strip()
    if not clean:
        return set()
    try:
        text = project_relative(root, clean.rstrip("/") or ".").as_posix()
    except ArtifactPathError:
        return None
    found: set[str] = set()
    escaped = False
    for match in root.glob(text) if any(c in text for c in "*?[") else [root / text]:
        if not (match.exists() or match.is_symlink()):
            continue
        if match != root and not inside_real(root, match.relative_to(root)):
            escaped = True  # reached through a symlinked folder pointing outside
            continue
        found.update(_entries_under(root, match))
    return None if escaped and not found else found


def _kind(root: Path, rel: str) -> str:
    """``file``, ``link`` or ``other`` (FIFO, socket, device: never read), from ``lstat``."""
    try:
        mode = (root / rel).lstat().st_mode
    except FileNotFoundError:
        return "gone"
    if stat.S_ISLNK(mode):
        return "link"
    return "file" if stat.S_ISREG(mode) else "other"


def select_artifacts(
    project_dir: str | os.PathLike[str],
    artifacts: Artifacts,
    *,
    tracked: frozenset[str] = frozenset(),
) -> ArtifactSelection:
    """Select what to keep: ``paths`` (globs, ``**``, folders), plus every entry created by the job
    when ``untracked`` (entries not in ``tracked``, the snapshot taken before the job), minus
    ``exclude``. A path matching nothing gives a warning, as in GitLab; a path outside the working
    directory is refused with gitlab-runner's warning."""
    root = Path(project_dir)
    warnings: list[str] = []
    chosen: set[str] = set()
    for pattern in artifacts.paths:
        found = _expand(root, pattern)
        if found is None:
            warnings.append(f"WARNING: processPath: {outside(pattern)}")
        elif not found:
            warnings.append(
                f"WARNING: {pattern}: no matching files. "
                "Ensure that the artifact path is relative to the working directory"
            )
        else:
            chosen |= found
    if artifacts.untracked:
        chosen |= snapshot(root) - tracked
    for pattern in artifacts.exclude:
        chosen -= _expand(root, pattern) or set()
    files: list[str] = []
    links: list[tuple[str, str]] = []
    for rel in sorted(chosen):
        kind = _kind(root, rel)
        if kind == "file":
            files.append(rel)
        elif kind == "link":
            links.append((rel, os.readlink(root / rel)))
        elif kind == "other":
            warnings.append(f"WARNING: File ignored: {rel}")
    return ArtifactSelection(tuple(files), tuple(warnings), tuple(links))


def relative_paths(files: Sequence[str]) -> tuple[str, ...]:
    """Validate stored relative paths before restoring them (no absolute paths, no ``..``)."""
    out = []
    for f in files:
        pure = PurePosixPath(f)
        if pure.is_absolute() or ".." in pure.parts or not pure.parts:
            raise ArtifactPathError(f"artifact path {f!r} is not a relative path inside the project", path=f)
        out.append(pure.as_posix())
    return tuple(out)


def manifest(files: Sequence[str], links: Mapping[str, str]) -> dict[str, object]:
    """The ``MANIFEST`` of stored artifacts: the files kept and each symlink's target text."""
    return {"files": list(files), "links": dict(links)}


def manifest_entries(listed: Mapping[str, Any]) -> tuple[tuple[str, ...], dict[str, str]]:
    """The files and links (path -> target) of a stored ``MANIFEST``, every path checked with
    ``relative_paths`` before anything is restored."""
    files = relative_paths([str(f) for f in listed.get("files", [])])
    links = dict(zip(relative_paths(list(listed.get("links", {}))), listed.get("links", {}).values(), strict=True))
    return files, links
