"""Where a job's processes run: the isolation boundary chosen by ``[ci_vars] isolation``.

GitLab's answer to untrusted job scripts is the executor: its docs call the shell executor
insecure, and its runners isolate jobs in containers or as an unprivileged user. Ours:

* ``sandbox`` (:class:`Sandbox`): bubblewrap (Debian's ``bubblewrap``) gives the job its own
  PID, mount, IPC and UTS namespaces. It sees read-only system folders (``/usr``, ``/etc``...),
  a fresh ``/proc`` of its own processes, a minimal ``/dev``, a private ``/tmp`` (one per job,
  shared by its scripts) and its own workspace, nothing else: not the worker's processes,
  environment, ``AIRFLOW_HOME``, DAGs folder, settings file, artifact store or other runs'
  workspaces. A worker running as root
  drops the job to an unprivileged user (:class:`JobUser`, ``nobody`` by default) with
  ``setpriv``: no capabilities, no new privileges, no supplementary groups. A worker that is
  not root keeps its own uid inside an unprivileged user namespace.
* ``none`` (:class:`Unisolated`): gitlab-runner's shell executor; for a single trusted team.
* ``auto``: ``sandbox`` where it works on this machine (:func:`sandbox_problem`), else ``none``.
* ``docker``: each job in a container of its image (``airflow_ci_vars.containers``, run by
  ``ContainerRunner`` rather than through an :class:`Isolation`; docs/containers.md).

docs/security.md has the threat table (asset x mode). This module is pure: no Airflow import.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from airflow_ci_vars.errors import IsolationError

__all__ = [
    "DEFAULT_MODE",
    "DEFAULT_SANDBOX_USER",
    "CONTAINER_MODE",
    "MODES",
    "NONE_WARNING",
    "SANDBOX_HOME",
    "SYSTEM_PATHS",
    "Isolation",
    "JobUser",
    "Sandbox",
    "Unisolated",
    "choose_isolation",
    "hand_over",
    "sandbox_problem",
]

MODES = ("auto", "sandbox", "none")
"""Values of ``[ci_vars] isolation`` that choose an :class:`Isolation`."""

CONTAINER_MODE = "docker"
"""The ``[ci_vars] isolation`` value that runs every job in a container (``airflow_ci_vars.containers``)."""

DEFAULT_MODE = "auto"
DEFAULT_SANDBOX_USER = "nobody"
"""The OS user a root worker runs sandboxed jobs as (``[ci_vars] sandbox_user``)."""

SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
"""Folders a sandboxed job sees read-only (symlinks such as ``/bin -> usr/bin`` kept as links)."""

SANDBOX_HOME = "/tmp"  # the sandbox's own private tmpfs, not the worker's /tmp
"""``HOME`` and ``TMPDIR`` of a sandboxed job: its private ``/tmp``."""

NONE_WARNING = (
    "Job isolation is off ([ci_vars] isolation = none): this job's script runs as the worker's own "
    "user and can read everything the worker can (its /proc and environment, AIRFLOW_HOME, the DAGs "
    "folder, the variable store, other jobs' workspaces). Use it only where every pipeline author is "
    "trusted with the whole deployment; see docs/security.md."
)

_PROBE_TIMEOUT = 10.0


class Isolation(Protocol):
    """How a job's processes are started: the interface every mode implements."""

    @property
    def mode(self) -> str:
        """``sandbox`` or ``none``."""
        ...

    def prepare(self, directories: Iterable[str]) -> None:
        """Make ``directories`` (the workspace's project and temp folders) the job's own."""
        ...

    def command(self, argv: Sequence[str], *, workspace: str, cwd: str, tmp: str | None = None) -> list[str]:
        """The command line that runs ``argv`` in ``cwd`` inside the boundary, seeing ``workspace``;
        ``tmp`` is the job's own folder to show as ``/tmp`` (kept from one script to the next)."""
        ...

    def environment(self, env: Mapping[str, str]) -> dict[str, str]:
        """``env`` as the job sees it inside the boundary."""
        ...


@dataclass(frozen=True, slots=True)
class JobUser:
    """The unprivileged OS user a root worker runs sandboxed jobs as."""

    name: str
    uid: int
    gid: int

    @classmethod
    def named(cls, name: str) -> JobUser:
        """Look ``name`` up in the system's user database; refuse root and unknown users."""
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise IsolationError(f"[ci_vars] sandbox_user: no such OS user: {name!r}") from None
        if entry.pw_uid == 0 or entry.pw_gid == 0:
            raise IsolationError(f"[ci_vars] sandbox_user: {name!r} is root; jobs must run unprivileged")
        return cls(name, entry.pw_uid, entry.pw_gid)


@dataclass(frozen=True, slots=True)
class Unisolated:
    """``none``: the job runs as the worker, seeing what the worker sees (gitlab-runner's shell executor).

    ``reason`` says why ``auto`` could not sandbox (None when ``none`` was asked for).
    """

    reason: str | None = None

    @property
    def mode(self) -> str:
        return "none"

    def prepare(self, directories: Iterable[str]) -> None:
        return None

    def command(self, argv: Sequence[str], *, workspace: str, cwd: str, tmp: str | None = None) -> list[str]:
        return list(argv)

    def environment(self, env: Mapping[str, str]) -> dict[str, str]:
        return dict(env)


def hand_over(paths: Iterable[str], uid: int, gid: int) -> None:
    """Give ``paths`` and everything below them to ``uid:gid`` (symbolic links not followed)."""
    for top in paths:
        os.lchown(top, uid, gid)
        for root, dirs, files in os.walk(top):
            for name in (*dirs, *files):
                with contextlib.suppress(FileNotFoundError):
                    os.lchown(os.path.join(root, name), uid, gid)


def _under(path: str, roots: Iterable[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


@dataclass(frozen=True, slots=True)
class Sandbox:
    """``sandbox``: bubblewrap namespaces, read-only system folders, the workspace, nothing else.

    ``user`` is the account a root worker drops the job to (None: the worker is not root and
    keeps its uid in a user namespace). ``read_only`` are the system folders bound read-only;
    ``hidden`` are worker paths (``AIRFLOW_HOME``, the settings file...) masked by an empty
    tmpfs or ``/dev/null`` wherever they lie inside one of those folders.
    """

    bwrap: str
    user: JobUser | None
    read_only: tuple[str, ...] = SYSTEM_PATHS
    hidden: tuple[str, ...] = ()
    setpriv: str = field(default_factory=lambda: shutil.which("setpriv") or "/usr/bin/setpriv")

    @property
    def mode(self) -> str:
        return "sandbox"

    def prepare(self, directories: Iterable[str]) -> None:
        """Hand every file and folder below ``directories`` to the job user (links not followed)."""
        if self.user is not None:
            hand_over(directories, self.user.uid, self.user.gid)

    def _system_mounts(self) -> list[str]:
        args: list[str] = []
        bound: list[str] = []
        for path in self.read_only:
            if os.path.islink(path):
                args += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                args += ["--ro-bind", path, path]
                bound.append(path)
        # /etc/resolv.conf is often a link into /run (systemd-resolved): bind its target's folder.
        with contextlib.suppress(OSError):
            resolv = os.path.realpath("/etc/resolv.conf")
            if os.path.exists(resolv) and not _under(resolv, bound):
                folder = os.path.dirname(resolv)
                args += ["--ro-bind", folder, folder]
                bound.append(folder)
        for path in self.hidden:
            real = os.path.realpath(path)
            if not _under(real, bound) or not os.path.exists(real):
                continue  # not mounted in the sandbox at all
            if os.path.isdir(real):
                args += ["--tmpfs", real]
            else:
                args += ["--ro-bind", "/dev/null", real]
        return args

    @staticmethod
    def _passage(workspace: str) -> list[str]:
        """Folders leading to the workspace, made passable (0711) for the job user.

        bwrap would create them with the modes of the worker's own folders (the workspace root
        is 0700): the job could not reach its workspace. They are empty: nothing is listed.
        """
        args: list[str] = []
        parent = os.path.dirname(os.path.normpath(workspace))
        chain: list[str] = []
        while parent not in ("/", "", SANDBOX_HOME):
            chain.append(parent)
            parent = os.path.dirname(parent)
        for folder in reversed(chain):
            args += ["--perms", "0711", "--dir", folder]
        return args

    def command(self, argv: Sequence[str], *, workspace: str, cwd: str, tmp: str | None = None) -> list[str]:
        # The job's /tmp: its own folder when given (script and after_script share it, as in
        # one container), else an empty tmpfs.
        private_tmp = ["--bind", tmp, SANDBOX_HOME] if tmp else ["--perms", "1777", "--tmpfs", SANDBOX_HOME]
        args = [
            self.bwrap,
            "--die-with-parent",  # SIGKILL of the task kills bwrap's init, and so every job process
            "--new-session",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--hostname",
            "ci-job",
            *self._system_mounts(),
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            *private_tmp,
            *self._passage(workspace),
            "--bind",
            workspace,
            workspace,
            "--chdir",
            cwd,
        ]
        if self.user is None:
            args += ["--unshare-user", "--disable-userns", "--"]
            return args + list(argv)
        drop = [
            self.setpriv,
            f"--reuid={self.user.uid}",
            f"--regid={self.user.gid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
        ]
        return [*args, "--", *drop, *argv]

    def environment(self, env: Mapping[str, str]) -> dict[str, str]:
        inside = dict(env)
        inside["HOME"] = SANDBOX_HOME
        inside["TMPDIR"] = SANDBOX_HOME
        if self.user is not None:
            inside["USER"] = inside["LOGNAME"] = self.user.name
        return inside


def sandbox_problem(sandbox: Sandbox) -> str | None:
    """Why ``sandbox`` cannot run a job on this machine (None when it can): a real trial run."""
    if not os.access(sandbox.bwrap, os.X_OK):
        return f"bubblewrap not found ({sandbox.bwrap}); install Debian's bubblewrap package"
    if sandbox.user is not None and not os.access(sandbox.setpriv, os.X_OK):
        return f"setpriv not found ({sandbox.setpriv}); install util-linux"
    with tempfile.TemporaryDirectory(prefix="ci-sandbox-probe-") as probe:
        os.chmod(probe, 0o711)  # noqa: S103 -- traverse only, as a workspace (runner.Workspace)
        inner = os.path.join(probe, "w")
        os.mkdir(inner, 0o700)
        sandbox.prepare([inner])
        argv = sandbox.command(["/bin/sh", "-c", "test -w ."], workspace=probe, cwd=inner)
        try:
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=_PROBE_TIMEOUT,
                env={"PATH": "/usr/bin:/bin"},
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bubblewrap did not start: {exc}"
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return f"bubblewrap failed (exit code {done.returncode}): {said[-1] if said else 'no message'}"
    return None


def choose_isolation(
    mode: str,
    *,
    sandbox_user: str = DEFAULT_SANDBOX_USER,
    read_only: Sequence[str] = (),
    hidden: Sequence[str] = (),
    bwrap: str | None = None,
) -> Isolation:
    """The :class:`Isolation` for ``mode`` (one of :data:`MODES`) on this machine.

    ``auto`` picks ``sandbox`` when a trial run works, else ``none``; ``sandbox`` asked for
    explicitly raises :class:`IsolationError` (saying why) rather than run a job unprotected.
    ``read_only`` adds folders to :data:`SYSTEM_PATHS`; ``hidden`` lists worker paths to mask.
    """
    mode = (mode or DEFAULT_MODE).strip().lower()
    if mode == "none":
        return Unisolated()
    if mode == CONTAINER_MODE:
        raise IsolationError("[ci_vars] isolation = docker: container jobs run through airflow_ci_vars.containers")
    if mode not in MODES:
        expected = ", ".join((*MODES, CONTAINER_MODE))
        raise IsolationError(f"[ci_vars] isolation: unknown mode {mode!r}; expected one of {expected}")
    user = JobUser.named(sandbox_user) if os.geteuid() == 0 else None
    extra = tuple(p for p in (os.path.normpath(r) for r in read_only if r) if p not in SYSTEM_PATHS)
    sandbox = Sandbox(
        bwrap=bwrap or shutil.which("bwrap") or "/usr/bin/bwrap",
        user=user,
        read_only=SYSTEM_PATHS + extra,
        hidden=tuple(hidden),
    )
    problem = sandbox_problem(sandbox)
    if problem is None:
        return sandbox
    if mode == "auto":
        return Unisolated(reason=problem)
    raise IsolationError(f"[ci_vars] isolation = sandbox, but {problem}")
