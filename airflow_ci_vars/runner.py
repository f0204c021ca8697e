"""What gitlab-runner's *shell executor* does with one job, on an Airflow worker.

* :func:`clean_base_environment`: the few worker variables a job starts from (never Airflow's).
* :class:`Workspace`: one fresh private directory per task attempt: a copy of the project
  (``CI_PROJECT_DIR``), a sibling ``<name>.tmp`` (``RUNNER_TEMP_PROJECT_DIR``) holding the
  file-type variables and the ``$GITLAB_ENV`` file, and ``<name>.job-tmp``, the job's ``/tmp``
  inside a sandbox; everything removed afterwards.
* :func:`build_script`, :class:`ScriptRunner`: bash scripts as gitlab-runner writes them (errexit,
  pipefail, each command echoed as ``$ command``), run in their own process group with exactly
  the given environment, their output masked while it streams.
* :func:`run_job`: ``before_script`` + ``script`` in one shell, ``after_script`` in another.
* :func:`workspace_root`, :func:`sweep_workspaces`: where workspaces live, and the removal of
  what a killed task left there (its processes, its files) at the next task start.

Every process is started through an :class:`~airflow_ci_vars.isolation.Isolation` (the sandbox,
or none): see ``airflow_ci_vars/isolation.py`` and docs/security.md.

References are to gitlab-runner (GR): ``shells/bash.go``, ``shells/abstract.go``,
``common/build.go``, ``helpers/process``. This module is pure: it never imports Airflow.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import functools
import os
import re
import selectors
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol, TypeAlias

from airflow_ci_vars.errors import ScriptTimeoutError
from airflow_ci_vars.isolation import Isolation, Unisolated
from airflow_ci_vars.masking import Masker
from airflow_ci_vars.variables.resolve import VariableFile

__all__ = [
    "BASE_ENVIRONMENT_KEYS",
    "DEFAULT_OUTPUT_LIMIT",
    "DEFAULT_PATH",
    "GITLAB_ENV_FILE_NAME",
    "JobOutcome",
    "JobRunner",
    "LineEmitter",
    "OutputLimit",
    "ScriptRunner",
    "ScriptTimeoutError",
    "Workspace",
    "build_script",
    "clean_base_environment",
    "exit_code",
    "parse_gitlab_env",
    "process_alive",
    "process_stamp",
    "run_job",
    "sweep_workspaces",
    "workspace_root",
    "write_script",
]

StrPath: TypeAlias = "str | os.PathLike[str]"

# --------------------------------------------------------------------------------------------
# Base environment
# --------------------------------------------------------------------------------------------

BASE_ENVIRONMENT_KEYS = frozenset(
    {"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "USER", "LOGNAME", "SHELL", "TERM", "TMPDIR"}
)
"""Worker variables a job inherits (plus every ``LC_*``): what a login shell needs, no secrets."""

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""``PATH`` when the worker has none (the usual Linux default)."""

_LOCALE_KEY = re.compile(r"LC_[A-Z_]+")


def clean_base_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a job process starts from: an allow-list of ``environ`` (default ``os.environ``).

    gitlab-runner's shell executor passes its whole environment on; an Airflow worker's holds
    ``AIRFLOW__*`` (database URLs, the fernet key), ``AIRFLOW_CONN_*`` and ``AIRFLOW_VAR_*``, so
    only locale, identity and ``PATH`` pass here. ``PATH`` gets :data:`DEFAULT_PATH` when missing.
    """
    source = dict(os.environ if environ is None else environ)
    base: dict[str, str] = {}
    for key, value in source.items():
        # Defence in depth: nothing of Airflow's, whatever the allow-list becomes.
        if key.upper().startswith("AIRFLOW"):
            continue
        if key in BASE_ENVIRONMENT_KEYS or _LOCALE_KEY.fullmatch(key):
            base[key] = value
    if not base.get("PATH"):
        base["PATH"] = DEFAULT_PATH
    return base


# --------------------------------------------------------------------------------------------
# Workspace
# --------------------------------------------------------------------------------------------

GITLAB_ENV_FILE_NAME = "gitlab_runner_env"
"""Name of the ``$GITLAB_ENV`` file in the temp dir (GR ``writeExports``: ``TmpFile("gitlab_runner_env")``)."""

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_gitlab_env(text: str) -> dict[str, str]:
    """The ``KEY=VALUE`` lines a job appended to ``$GITLAB_ENV``, later lines winning.

    gitlab-runner loads the file with ``while read -r line; do export "$line" || true; done``:
    ``read`` trims surrounding blanks, a line without ``=`` exports nothing, and ``export``
    refuses a key that is not a shell identifier (the ``|| true`` ignores it). Unlike that loop,
    a last line without a trailing newline still counts.
    """
    found: dict[str, str] = {}
    for raw in text.split("\n"):
        key, sep, value = raw.strip(" \t").partition("=")
        if sep and _IDENTIFIER.fullmatch(key):
            found[key] = value.replace("\0", "")  # bash's read drops NUL bytes
    return found


def _add_owner_bits(path: StrPath, bits: int) -> None:
    with contextlib.suppress(OSError):
        mode = stat.S_IMODE(os.lstat(path).st_mode)
        if mode & bits != bits:
            os.chmod(path, mode | bits)


def _make_owner_accessible(directory: str) -> None:
    """Give the owner rwx on ``directory`` and every real directory below (never through a symlink)."""
    _add_owner_bits(directory, stat.S_IRWXU)
    try:
        with os.scandir(directory) as entries:
            subdirs = [e.path for e in entries if e.is_dir(follow_symlinks=False)]
    except OSError:
        return
    for sub in subdirs:
        _make_owner_accessible(sub)


def _remove_tree(path: str) -> None:
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        return
    except OSError:
        # A job may leave read-only directories (``chmod -R a-w .``); their entries cannot be
        # unlinked until the directory is writable again.
        _make_owner_accessible(path)
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(path)


def _copy_file(src: str, dst: str) -> str:
    shutil.copy2(src, dst)
    # A git-sync or ConfigMap checkout may be read-only; a job's working copy must not be.
    _add_owner_bits(dst, stat.S_IRUSR | stat.S_IWUSR)
    return dst


def _copy_filter(top: str, excluded: frozenset[tuple[int, int]]) -> Callable[[str, list[str]], set[str]]:
    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = {".git"} if directory == top else set()
        for name in names:
            try:
                info = os.lstat(os.path.join(directory, name))
            except OSError:
                continue  # let copytree report it
            mode = info.st_mode
            # FIFOs, sockets and devices cannot be copied (opening a FIFO would block).
            special = not (stat.S_ISDIR(mode) or stat.S_ISREG(mode) or stat.S_ISLNK(mode))
            # The variable store and the worker's configuration never enter a workspace, by
            # whatever name or hard link they are reached (compared as device and inode).
            if special or (info.st_dev, info.st_ino) in excluded:
                skipped.add(name)
        return skipped

    return ignore


def _identities(paths: Iterable[StrPath]) -> frozenset[tuple[int, int]]:
    found = set()
    for path in paths:
        with contextlib.suppress(OSError):
            info = os.stat(path)
            found.add((info.st_dev, info.st_ino))
    return frozenset(found)


_ROOT_PREFIX = "airflow-ci-vars-jobs-"
_BASE_PREFIX = "ci-job-"
_OWNER_FILE = ".owner"
_JOBS_FILE = ".processes"
_STALE_AFTER = 3600.0  # seconds after which a workspace without an owner record counts as left


def workspace_root(root: StrPath | None = None) -> str:
    """The folder holding this worker user's workspaces, made private (0700) when missing.

    Default: ``<system temp dir>/airflow-ci-vars-jobs-<uid>``. A folder that is a symlink, is
    owned by another user or is writable by others is refused (``PermissionError``): another
    local user could otherwise plant or read workspaces.
    """
    path = os.fspath(root) if root is not None else os.path.join(tempfile.gettempdir(), f"{_ROOT_PREFIX}{os.geteuid()}")
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise PermissionError(f"workspace root {path} must be a directory of uid {os.geteuid()}, writable by it only")
    return path


def _group_and_start(pid: int | str) -> tuple[int, int] | None:
    """Process ``pid``'s group id and start time (clock ticks since boot); None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()  # proc(5), counted after "pid (comm)"
    return int(fields[2]), int(fields[19])  # fields 5 (pgrp) and 22 (starttime)


def _start_time(pid: int) -> int | None:
    """The start time of process ``pid`` (None when it is gone)."""
    found = _group_and_start(pid)
    return None if found is None else found[1]


def process_stamp(pid: int) -> str:
    """``"pid starttime\n"``: names process ``pid`` for good (a reused pid has another start time)."""
    return f"{pid} {_start_time(pid) or 0}\n"


def process_alive(stamp: str) -> bool:
    """Whether the process a :func:`process_stamp` names still runs on this machine."""
    pid, _, started = stamp.partition(" ")
    return pid.isdigit() and _start_time(int(pid)) == int(started or 0)


def _kill_left_over(stamps: Iterable[str]) -> None:
    """SIGKILL every process still in the process group of a recorded job shell.

    A group's id is its leader's pid; only processes started after that leader count, so a
    pid reused since by an unrelated process is never hit.
    """
    wanted: dict[int, int] = {}
    for stamp in stamps:
        pid, _, started = stamp.strip().partition(" ")
        if pid.isdigit() and started.isdigit():
            wanted[int(pid)] = int(started)
    if not wanted:
        return
    for entry in os.listdir("/proc"):
        found = _group_and_start(entry) if entry.isdigit() else None
        if found is None:
            continue
        group, since = found
        if group in wanted and since >= wanted[group]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry), signal.SIGKILL)


def sweep_workspaces(root: StrPath | None = None) -> int:
    """Remove the workspaces under ``root`` whose task process is gone; return how many.

    A task killed with SIGKILL cannot clean up: the next task started on the worker kills what
    its job left running (the sandbox already did) and removes its workspace, file variables
    included. Workspaces of live tasks are left alone.
    """
    top = workspace_root(root)
    removed = 0
    for entry in os.scandir(top):
        if not entry.name.startswith(_BASE_PREFIX) or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            owner = Path(entry.path, _OWNER_FILE).read_text()
        except OSError:
            owner = ""
        if owner and process_alive(owner):
            continue
        if not owner:
            # Being created right now (the owner file is written first thing), or from an
            # older version: only remove it once it has not changed for a while.
            with contextlib.suppress(OSError):
                if time.time() - entry.stat(follow_symlinks=False).st_mtime < _STALE_AFTER:
                    continue
        with contextlib.suppress(OSError):
            _kill_left_over(Path(entry.path, _JOBS_FILE).read_text().splitlines())
        _remove_tree(entry.path)
        removed += 1
    return removed


def _write_private(path: str, text: str) -> None:
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with open(fd, "w", encoding="ascii") as fh:
        fh.write(text)


class Workspace:
    """One task attempt's private directory; a context manager that removes it on exit.

    On enter, a fresh directory (mode 0711: a sandboxed job user may pass, not list) is made
    under ``root`` (default: :func:`workspace_root`) holding :attr:`project_dir`, a copy of
    ``source_dir`` (``.git`` at its top excluded, symlinks kept as symlinks, every file that *is*
    one of ``exclude`` left out: the variable store and the worker's configuration; empty when
    ``source_dir`` is None), a record of the owning task process (for :func:`sweep_workspaces`), and the sibling
    :attr:`temp_dir` ``<name>.tmp`` (mode 0700, gitlab-runner's ``RUNNER_TEMP_PROJECT_DIR``)
    with an empty :attr:`gitlab_env_path`. On exit -- also on an exception, a
    ``KeyboardInterrupt`` or an explicit :meth:`cleanup` -- everything is removed. A workspace
    is entered once.
    """

    __slots__ = ("_base", "_closed", "_exclude", "_name", "_root", "_source")

    def __init__(
        self,
        source_dir: StrPath | None,
        *,
        root: StrPath | None = None,
        name: str = "project",
        exclude: Iterable[StrPath] = (),
    ) -> None:
        if name in ("", ".", "..") or "/" in name or "\0" in name or (os.altsep and os.altsep in name):
            raise ValueError("workspace name must be a single path component")
        self._source = None if source_dir is None else os.fspath(source_dir)
        self._root = None if root is None else os.fspath(root)
        self._exclude = tuple(exclude)
        self._name = name
        self._base: str | None = None
        self._closed = False

    def __enter__(self) -> Workspace:
        if self._base is not None or self._closed:
            raise RuntimeError("a Workspace can be entered only once")
        self._base = tempfile.mkdtemp(prefix=_BASE_PREFIX, dir=workspace_root(self._root))
        try:
            os.chmod(self._base, 0o711)  # noqa: S103 -- traverse only: a sandboxed job user reaches its folders
            _write_private(os.path.join(self._base, _OWNER_FILE), process_stamp(os.getpid()))
            if self._source is None:
                os.mkdir(self.project_dir, 0o700)
            else:
                shutil.copytree(
                    self._source,
                    self.project_dir,
                    symlinks=True,
                    ignore=_copy_filter(self._source, _identities(self._exclude)),
                    copy_function=_copy_file,
                )
                _add_owner_bits(self.project_dir, stat.S_IRWXU)
            os.mkdir(self.temp_dir, 0o700)
            os.chmod(self.temp_dir, 0o700)  # whatever the umask
            os.mkdir(self.job_tmp_dir, 0o700)
            os.close(os.open(self.gitlab_env_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600))
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    def cleanup(self) -> None:
        """Remove the whole workspace (idempotent). Read-only files and directories are no obstacle."""
        base, self._base = self._base, None
        self._closed = True
        if base is not None:
            _remove_tree(base)

    def _path(self, *parts: str) -> Path:
        if self._base is None:
            raise RuntimeError("the workspace is not open")
        return Path(self._base, *parts)

    @property
    def path(self) -> Path:
        """The private directory holding everything else (``CI_BUILDS_DIR`` of this attempt)."""
        return self._path()

    def record_process(self, pid: int) -> None:
        """Note a job shell's pid, so that :func:`sweep_workspaces` can kill its leftovers."""
        with open(self._path(_JOBS_FILE), "a", encoding="ascii") as fh:
            fh.write(process_stamp(pid))

    @property
    def project_dir(self) -> Path:
        """The job's working directory (``CI_PROJECT_DIR``)."""
        return self._path(self._name)

    @property
    def temp_dir(self) -> Path:
        """``<project_dir>.tmp`` (``RUNNER_TEMP_PROJECT_DIR``): file variables, ``$GITLAB_ENV``, scripts."""
        return self._path(f"{self._name}.tmp")

    @property
    def job_tmp_dir(self) -> Path:
        """``<name>.job-tmp``: the job's ``/tmp`` inside a sandbox, kept from one script to the next."""
        return self._path(f"{self._name}.job-tmp")

    @property
    def gitlab_env_path(self) -> Path:
        """The ``$GITLAB_ENV`` file."""
        return self._path(f"{self._name}.tmp", GITLAB_ENV_FILE_NAME)

    def write_files(self, files: Iterable[VariableFile]) -> None:
        """Write each file-type variable's content to its ``path``, mode 0600.

        Each path must name a file directly in :attr:`temp_dir` (``ValueError`` otherwise); an
        existing file or symlink is never overwritten (``FileExistsError``).
        """
        temp = os.path.normpath(self.temp_dir)
        for f in files:
            target = os.path.normpath(os.path.abspath(f.path))
            if os.path.dirname(target) != temp or os.path.basename(target) in ("", ".", ".."):
                raise ValueError(f"file variable {f.key!r}: path is outside the workspace temp dir")
            data = f.content.encode("utf-8", "surrogateescape")
            # Created 0600 in one step (never world-readable, even briefly); O_EXCL and
            # O_NOFOLLOW refuse anything planted at that path.
            fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)

    def read_gitlab_env(self) -> dict[str, str]:
        """Parse the ``$GITLAB_ENV`` file as it is now ({} when the job removed or replaced it)."""
        try:
            # O_NONBLOCK: a job could replace the file with a FIFO; opening that must not hang.
            fd = os.open(self.gitlab_env_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return {}
        with open(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return {}
            return parse_gitlab_env(fh.read().decode("utf-8", "surrogateescape"))

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("open" if self._base is not None else "new")
        return f"Workspace({self._source!r}, {state}{', ' + self._base if self._base else ''})"


# --------------------------------------------------------------------------------------------
# Scripts
# --------------------------------------------------------------------------------------------

_SCRIPT_PROLOGUE = (
    # GR shells/bash.go (BashWriter.Finish): stop at the first failing command, also inside a
    # pipeline, and let '>' overwrite files whatever the user's shell options.
    "set -eo pipefail",
    "set +o noclobber",
)
# The same for whatever shell an image has (GR: a POSIX sh such as dash has no pipefail).
_PORTABLE_PROLOGUE = (
    "if set -o | grep pipefail > /dev/null 2>&1; then set -o pipefail; fi",
    "set -o errexit",
    "set +o noclobber",
)


def build_script(commands: Sequence[str], *, portable: bool = False) -> str:
    """The bash text gitlab-runner generates for ``commands``.

    Like GR ``writeCommands``: each command is trimmed, echoed as ``$ command`` (a multi-line
    one as its first line plus ``# collapsed multi-line command``; an empty one as an empty
    line) and then written as is. The echo is printed literally (``printf`` of a quoted
    string), never expanded, and without gitlab-runner's ANSI colours, which task logs would
    show raw. ``portable``: for any POSIX shell (an image may have sh but no bash).
    """
    lines = list(_PORTABLE_PROLOGUE if portable else _SCRIPT_PROLOGUE)
    for raw in commands:
        command = raw.strip()
        if command:
            first, newline, _ = command.partition("\n")
            shown = f"$ {first.rstrip()}" + (" # collapsed multi-line command" if newline else "")
            lines.append(f"printf '%s\\n' {shlex.quote(shown)}")
        else:
            lines.append("echo")
        lines.append(command)
    return "\n".join(lines) + "\n"


def write_script(script_dir: StrPath, text: str) -> str:
    """Write ``text`` to a new file (mode 0700) in ``script_dir``; return its path."""
    fd, path = tempfile.mkstemp(prefix="script-", suffix=".sh", dir=script_dir)
    try:
        with open(fd, "w", encoding="utf-8", errors="surrogateescape") as fh:
            os.fchmod(fh.fileno(), 0o700)
            fh.write(text)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return path


def exit_code(returncode: int) -> int:
    """A process's exit code as bash and the job log say it: death by signal N is 128+N."""
    # Popen reports death by signal N as -N; bash (and gitlab-runner's log) says 128+N.
    return 128 - returncode if returncode < 0 else returncode


def _has_exited(pid: int) -> bool:
    """True once ``pid`` has exited, *without reaping it*.

    While the zombie is unreaped its pid -- the job's process-group id -- cannot be reused, so
    signalling the group can never hit an unrelated process.
    """
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


class LineEmitter:
    """Masked text in, whole lines out (without their newline, nor a trailing CR).

    The masking stream holds back the last ``longest phrase - 1`` characters, so a line such as
    ``$ ./deploy`` would wait for the deploy's next output. When no phrase contains a newline,
    no secret and no sanitizer match (neither holds whitespace) can cross a line boundary, so
    flushing the stream whenever the text so far ends with ``\n`` gives exactly the one-shot
    result -- and every complete line is emitted at once.
    """

    __slots__ = ("_emit", "_flush_at_newline", "_partial", "_stream")

    # A line longer than this is emitted in pieces (already masked, so cutting it is safe).
    _MAX_LINE = 64 * 1024

    def __init__(self, masker: Masker, emit: Callable[[str], None]) -> None:
        self._stream = masker.stream()
        self._flush_at_newline = not any("\n" in phrase for phrase in masker.phrases)
        self._emit = emit
        self._partial = ""

    def write(self, text: str) -> None:
        if not text:
            return
        masked = self._stream.write(text)
        if self._flush_at_newline and text.endswith("\n"):
            masked += self._stream.flush()  # the stream stays usable for what follows
        self._push(masked)

    def close(self) -> None:
        self._push(self._stream.flush())
        if self._partial:
            rest, self._partial = self._partial, ""
            self._emit(rest.removesuffix("\r"))

    def _push(self, masked: str) -> None:
        if not masked:
            return
        *lines, self._partial = (self._partial + masked).split("\n")
        for line in lines:
            self._emit(line.removesuffix("\r"))
        while len(self._partial) > self._MAX_LINE:
            self._emit(self._partial[: self._MAX_LINE])
            self._partial = self._partial[self._MAX_LINE :]


DEFAULT_OUTPUT_LIMIT = 4 * 1024 * 1024
"""gitlab-runner's job log limit (``output_limit``, 4096 KiB by default): output past it is dropped."""


class OutputLimit:
    """``emit`` until ``limit`` bytes of log were written, then gitlab-runner's notice once, then nothing.

    The job keeps running (GR ``helpers/trace``: "Job execution will continue but no more output
    will be collected."); lines are counted in UTF-8 bytes with their newline.
    """

    __slots__ = ("_emit", "_limit", "_over", "_written")

    def __init__(self, emit: Callable[[str], None], limit: int | None) -> None:
        self._emit = emit
        self._limit = limit
        self._written = 0
        self._over = False

    def __call__(self, line: str) -> None:
        if self._over:
            return
        size = len(line.encode("utf-8", "surrogateescape")) + 1
        if self._limit is not None and self._written + size > self._limit:
            self._over = True
            self._emit(f"Job's log exceeded limit of {self._limit} bytes.")
            self._emit("Job execution will continue but no more output will be collected.")
            return
        self._written += size
        self._emit(line)


@functools.cache
def _prctl() -> Callable[..., int] | None:
    with contextlib.suppress(OSError, AttributeError):
        return ctypes.CDLL(None, use_errno=True).prctl
    return None


_PR_SET_PDEATHSIG = 1


def _child_setup(parent: int, prctl: Callable[..., int] | None) -> Callable[[], None]:
    """What the job's first process does before ``exec``: die with the task process.

    ``PR_SET_PDEATHSIG``: SIGKILL when the task process dies, even by SIGKILL. The sandbox's
    init takes everything else with it; without a sandbox, the next task's
    :func:`sweep_workspaces` kills the rest of the process group.
    """

    def setup() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the task died before prctl took effect
            os._exit(137)

    return setup


_KILLED_EXIT_CODE = 128 + signal.SIGTERM
_POLL_INTERVAL = 0.1
_CHUNK_SIZE = 64 * 1024
_DRAIN_TIMEOUT = 2.0


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class JobRunner(Protocol):
    """What :func:`run_job` runs a job's scripts with: :class:`ScriptRunner` on the worker (or
    in its sandbox), ``containers.docker_runner.ContainerRunner`` in the job's image."""

    @property
    def killed(self) -> bool:
        """True once :meth:`kill` was called; no script runs after that."""
        ...

    def prepare(self, workspace: Workspace) -> None:
        """Get ready to run scripts in ``workspace`` (hand it to the job's user, start services)."""
        ...

    def run(
        self,
        commands: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: StrPath,
        script_dir: StrPath,
        timeout: float | None = None,
        workspace: Workspace | None = None,
    ) -> int:
        """Run ``commands`` in one shell; return its exit code (see :meth:`ScriptRunner.run`)."""
        ...

    def kill(self) -> None:
        """Stop the running script and every later one; returns at once."""
        ...

    def close(self) -> None:
        """Release what :meth:`prepare` started (idempotent)."""
        ...


class ScriptRunner:
    """Run bash scripts like gitlab-runner's shell executor, streaming masked output to ``emit``.

    Each :meth:`run` starts ``bash --noprofile --norc <script>`` in a new session (its own
    process group), stdin from ``/dev/null``, stdout and stderr merged, environment exactly
    ``env``. Output is decoded as UTF-8 (invalid bytes replaced), masked by one
    ``masker.stream()`` per run and passed to ``emit`` line by line. When bash exits, whatever
    is left of its process group (background jobs) is killed: nothing a job starts outlives it.

    :meth:`kill` (from any thread, e.g. an operator's ``on_kill``) stops the running script and
    every later one. ``kill_grace`` is the time between SIGTERM and SIGKILL (GR
    ``helpers/process``: terminate the group, then force-kill it). ``shell`` is the bash to run
    (default: ``bash`` on the worker's ``PATH``). One runner serves one task attempt.

    ``isolation`` starts every script inside its boundary (default: none); ``output_limit`` is
    the job log's size in bytes past which output is dropped, as gitlab-runner does (None: no
    limit). The first process of each script dies with the task process, SIGKILL included.
    """

    def __init__(
        self,
        masker: Masker,
        emit: Callable[[str], None],
        *,
        kill_grace: float = 5.0,
        shell: str | None = None,
        isolation: Isolation | None = None,
        output_limit: int | None = DEFAULT_OUTPUT_LIMIT,
    ) -> None:
        self._masker = masker
        self._emit = OutputLimit(emit, output_limit)
        self._isolation: Isolation = isolation if isolation is not None else Unisolated()
        self._kill_grace = kill_grace
        # Found on the worker's PATH: the job's own PATH may lack it, or point at another bash.
        self._shell = shell or shutil.which("bash") or "/bin/bash"
        # Reentrant: on_kill may run in a signal handler on the very thread that holds it.
        self._lock = threading.RLock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._signals_allowed = False
        self._killed = False

    @property
    def isolation(self) -> Isolation:
        """The boundary every script of this runner starts in."""
        return self._isolation

    def close(self) -> None:
        """Nothing to release: every script's processes are gone when :meth:`run` returns."""
        return None

    def prepare(self, workspace: Workspace) -> None:
        """Hand the workspace's project, temp and job-tmp folders (as they are now) to the job's user."""
        self._isolation.prepare(
            [os.fspath(workspace.project_dir), os.fspath(workspace.temp_dir), os.fspath(workspace.job_tmp_dir)]
        )

    @property
    def killed(self) -> bool:
        """True once :meth:`kill` was called; no script runs after that."""
        return self._killed

    def kill(self) -> None:
        """SIGTERM the running script's process group, SIGKILL it after ``kill_grace``; returns at once."""
        with self._lock:
            self._killed = True
            proc = self._proc
            if proc is None or not self._signals_allowed:
                return
            _signal_group(proc.pid, signal.SIGTERM)
        # The run loop escalates too; this timer covers a run thread stuck in ``emit``.
        timer = threading.Timer(self._kill_grace, self._force_kill, args=(proc,))
        timer.daemon = True
        timer.start()

    def _force_kill(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            if self._proc is proc and self._signals_allowed:
                _signal_group(proc.pid, signal.SIGKILL)

    def _signal(self, proc: subprocess.Popen[bytes], sig: int) -> None:
        with self._lock:
            if self._signals_allowed:
                _signal_group(proc.pid, sig)

    def run(
        self,
        commands: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: StrPath,
        script_dir: StrPath,
        timeout: float | None = None,
        workspace: Workspace | None = None,
    ) -> int:
        """Run ``commands`` (see :func:`build_script`) in one bash; return its exit code.

        Death by signal N gives 128+N, as in bash. The script file (mode 0700) is written to
        ``script_dir`` and removed afterwards. ``workspace`` is what the isolation lets the job
        see (default: ``cwd``) and where the shell's pid is recorded for :func:`sweep_workspaces`.
        After ``timeout`` seconds the process group is terminated and :class:`ScriptTimeoutError`
        raised. After :meth:`kill`, nothing is
        started and 143 (SIGTERM) is returned. If anything escapes (an exception raised by a
        signal handler, ``KeyboardInterrupt``), the process group is killed first.
        """
        path = write_script(script_dir, build_script(commands))
        try:
            self._isolation.prepare([path])
            return self._run_file(path, env=env, cwd=cwd, timeout=timeout, workspace=workspace)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)

    def _run_file(
        self, path: str, *, env: Mapping[str, str], cwd: StrPath, timeout: float | None, workspace: Workspace | None
    ) -> int:
        proc: subprocess.Popen[bytes] | None = None
        done = False
        mount = os.fspath(workspace.path if workspace is not None else cwd)
        argv = self._isolation.command(
            [self._shell, "--noprofile", "--norc", path],
            workspace=mount,
            cwd=os.fspath(cwd),
            tmp=os.fspath(workspace.job_tmp_dir) if workspace is not None else None,
        )
        try:
            with self._lock:
                if self._killed:
                    return _KILLED_EXIT_CODE
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    env=self._isolation.environment(env),
                    cwd=os.fspath(cwd),
                    start_new_session=True,
                    preexec_fn=_child_setup(os.getpid(), _prctl()),  # prctl and getppid only
                )
                self._proc = proc
                self._signals_allowed = True
            if workspace is not None:
                workspace.record_process(proc.pid)
            code, timed_out = self._pump(proc, timeout)
            done = True
        finally:
            if proc is not None:
                if not done:
                    self._abort(proc)
                if proc.stdout is not None:
                    proc.stdout.close()
                with self._lock:
                    self._proc = None
                    self._signals_allowed = False
        if timed_out:
            assert timeout is not None
            raise ScriptTimeoutError(timeout)
        return code

    def _abort(self, proc: subprocess.Popen[bytes]) -> None:
        """Kill the whole group at once and reap bash: the run was interrupted, nothing may linger."""
        with self._lock:
            if self._signals_allowed:
                _signal_group(proc.pid, signal.SIGKILL)
            self._signals_allowed = False
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(self._kill_grace, 1.0))

    def _pump(self, proc: subprocess.Popen[bytes], timeout: float | None) -> tuple[int, bool]:
        """Stream output until bash exits; kill leftovers; reap. Returns (exit code, timed out)."""
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        out = LineEmitter(self._masker, self._emit)
        start = time.monotonic()
        deadline = None if timeout is None else start + timeout
        sigkill_at: float | None = None  # set once SIGTERM is sent
        sigkill_sent = False
        timed_out = False
        eof = False
        idle = 0.001  # backoff while waiting for bash's exit after EOF
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while True:
                now = time.monotonic()
                if sigkill_at is None and (self._killed or (deadline is not None and now >= deadline)):
                    timed_out = not self._killed
                    self._signal(proc, signal.SIGTERM)
                    sigkill_at = now + self._kill_grace
                if sigkill_at is not None and not sigkill_sent and now >= sigkill_at:
                    self._signal(proc, signal.SIGKILL)
                    sigkill_sent = True
                # Bash's exit ends the run, not the pipe's EOF: a background job may hold the
                # pipe open for ever (gitlab-runner would wait for it; a task must not).
                if _has_exited(proc.pid):
                    break
                wait = _POLL_INTERVAL
                for limit in (deadline, None if sigkill_sent else sigkill_at):
                    if limit is not None:
                        wait = min(wait, max(limit - now, 0.0))
                if eof:  # bash closed its output (usually: it is exiting right now)
                    time.sleep(min(wait, idle))
                    idle = min(idle * 2, _POLL_INTERVAL)
                elif selector.select(wait):
                    data = os.read(fd, _CHUNK_SIZE)
                    if data:
                        out.write(decoder.decode(data))
                    else:
                        eof = True
            # Bash is a zombie: its group id is still ours. Kill what it left running.
            self._signal(proc, signal.SIGKILL)
            drain_until = time.monotonic() + _DRAIN_TIMEOUT
            while not eof:
                left = drain_until - time.monotonic()
                if left <= 0:
                    break  # a process that left the group still holds the pipe
                if selector.select(left):
                    data = os.read(fd, _CHUNK_SIZE)
                    if data:
                        out.write(decoder.decode(data))
                    else:
                        eof = True
        with self._lock:
            self._signals_allowed = False  # from here on the pid may be reaped and reused
        returncode = proc.wait()
        out.write(decoder.decode(b"", final=True))
        out.close()
        return exit_code(returncode), timed_out


# --------------------------------------------------------------------------------------------
# Jobs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """What a job run gave.

    ``exit_code`` is the job's result (before_script + script); ``after_script_exit_code`` is
    None when there was no after_script, it timed out or could not start; ``gitlab_env`` holds
    the variables script wrote to ``$GITLAB_ENV``.
    """

    exit_code: int
    after_script_exit_code: int | None
    after_script_timed_out: bool
    gitlab_env: dict[str, str]


def run_job(
    *,
    before_script: Sequence[str] = (),
    script: Sequence[str],
    after_script: Sequence[str] = (),
    env: Mapping[str, str],
    workspace: Workspace,
    masker: Masker,
    emit: Callable[[str], None],
    after_script_timeout: float = 300.0,
    runner: JobRunner | None = None,
) -> JobOutcome:
    """Run one job in ``workspace`` as gitlab-runner does.

    ``before_script`` + ``script`` run in one bash (cwd :attr:`Workspace.project_dir`, env
    ``env`` plus ``GITLAB_ENV`` and ``CI_JOB_STATUS=running``). ``after_script`` then runs in a
    separate bash -- after success and after failure -- that sees none of script's exports but
    gets ``CI_JOB_STATUS=success|failed`` and, last (GR sources the file after the exports),
    the ``KEY=VALUE`` lines script appended to ``$GITLAB_ENV``. It has its own timeout (GR's
    default: 5 minutes); its failure or timeout is only a warning and never changes the job's
    exit code. After ``runner.kill()`` it does not run: the task is being stopped.

    Pass ``runner`` (built with the same ``masker`` and ``emit``) to be able to kill the job, or
    to run it in containers. An exception from the script run propagates, its processes already
    killed; the runner is closed (services stopped) whatever happens.
    """
    runner = runner if runner is not None else ScriptRunner(masker, emit)
    try:
        runner.prepare(workspace)
        return _run_scripts(
            runner,
            before_script=before_script,
            script=script,
            after_script=after_script,
            env=env,
            workspace=workspace,
            emit=emit,
            after_script_timeout=after_script_timeout,
        )
    finally:
        runner.close()


def _run_scripts(
    runner: JobRunner,
    *,
    before_script: Sequence[str],
    script: Sequence[str],
    after_script: Sequence[str],
    env: Mapping[str, str],
    workspace: Workspace,
    emit: Callable[[str], None],
    after_script_timeout: float,
) -> JobOutcome:
    env_file = str(workspace.gitlab_env_path)
    # The runner's own variables win over same-named job variables: they describe this run.
    exit_code = runner.run(
        [*before_script, *script],
        env={**env, "CI_JOB_STATUS": "running", "GITLAB_ENV": env_file},
        cwd=workspace.project_dir,
        script_dir=workspace.temp_dir,
        workspace=workspace,
    )
    gitlab_env = workspace.read_gitlab_env()
    after_code: int | None = None
    after_timed_out = False
    if after_script and not runner.killed:
        after_env = {
            **env,
            "CI_JOB_STATUS": "success" if exit_code == 0 else "failed",
            "GITLAB_ENV": env_file,
            **gitlab_env,
        }
        try:
            after_code = runner.run(
                after_script,
                env=after_env,
                cwd=workspace.project_dir,
                script_dir=workspace.temp_dir,
                timeout=after_script_timeout,
                workspace=workspace,
            )
        except ScriptTimeoutError:
            after_timed_out = True
            emit(f"WARNING: after_script timed out after {after_script_timeout:g} seconds")
        except OSError as exc:  # e.g. script removed the working directory
            emit(f"WARNING: after_script failed, but job will continue unaffected: {exc.strerror or exc}")
        else:
            if after_code != 0:
                # GR's wording (common/build.go) for a failed after_script.
                emit(f"WARNING: after_script failed, but job will continue unaffected: exit code {after_code}")
    return JobOutcome(exit_code, after_code, after_timed_out, gitlab_env)
