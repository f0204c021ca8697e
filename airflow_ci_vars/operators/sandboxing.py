"""The operator's side of job isolation: what Airflow's configuration asks for, on this worker.

``[ci_vars] isolation`` (``auto``, ``sandbox``, ``none``, ``docker``), ``sandbox_user``,
``sandbox_read_only_paths``, ``sandbox_hidden_paths``, ``workspace_root``, ``job_log_limit`` and
the ``docker_*`` options become the pure objects of ``airflow_ci_vars.isolation``,
``airflow_ci_vars.runner`` and ``airflow_ci_vars.containers``.
:func:`worker_paths` names the worker's own files a job must never see: they are masked inside
the sandbox and left out of every workspace copy, whatever the mode.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_ci_vars.containers.docker_runner import ContainerJobs, DockerSettings
from airflow_ci_vars.containers.plan import DEFAULT_PULL_POLICY, DEFAULT_SERVICES_TIMEOUT, ContainerPolicy
from airflow_ci_vars.errors import IsolationError
from airflow_ci_vars.isolation import (
    CONTAINER_MODE,
    DEFAULT_MODE,
    DEFAULT_SANDBOX_USER,
    NONE_WARNING,
    Isolation,
    Unisolated,
    choose_isolation,
)
from airflow_ci_vars.runner import DEFAULT_OUTPUT_LIMIT, sweep_workspaces
from airflow_ci_vars.stores.configured import settings_file_path

if TYPE_CHECKING:
    from airflow.sdk.types import Logger  # the task logger (``BaseOperator.log``)

__all__ = ["JobBoundary", "job_boundary", "prepare_boundary", "worker_paths"]

_SECTION = "ci_vars"


def _conf(given: Any = None) -> Any:
    """``given`` (e.g. ``airflow_config.AirflowOptions`` for ``run``'s direct engine), else Airflow's."""
    if given is not None:
        return given
    from airflow.sdk import conf

    return conf


def _list(text: str) -> list[str]:
    return [item.strip() for item in text.replace("\n", ",").split(",") if item.strip()]


def worker_paths(settings_file: str | os.PathLike[str] | None, conf: Any = None) -> list[str]:
    """The worker's files and folders no job may read: Airflow's home, configuration, DAGs,
    plugins and logs, the variable store, the artifact store (when local), the parse cache,
    plus ``[ci_vars] sandbox_hidden_paths``. ``conf``: where options are read (``_conf``)."""
    conf = _conf(conf)
    found = [
        os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow"),
        os.environ.get("AIRFLOW_CONFIG", ""),
        settings_file_path(settings_file, conf) or "",
    ]
    for section, key in (
        ("core", "dags_folder"),
        ("core", "plugins_folder"),
        ("logging", "base_log_folder"),
        ("ci_vars", "parse_cache_dir"),
        ("ci_vars", "artifacts_root"),
    ):
        value = str(conf.get(section, key, fallback="") or "")
        found.append(value.removeprefix("file://"))
    found += _list(str(conf.get(_SECTION, "sandbox_hidden_paths", fallback="") or ""))
    return sorted({os.path.abspath(p) for p in found if p and "://" not in p})


@dataclass(frozen=True, slots=True)
class JobBoundary:
    """Where and how this worker runs a job: its isolation, workspace root and log limit;
    ``containers`` is set when jobs run in containers (``isolation = docker``)."""

    isolation: Isolation
    workspace_root: str | None
    output_limit: int | None
    hidden: tuple[str, ...]
    containers: ContainerJobs | None = None


def _flag(conf: Any, key: str) -> bool:
    text = str(conf.get(_SECTION, key, fallback="") or "").strip().lower()
    if text in ("", "false", "0", "no", "off"):
        return False
    if text in ("true", "1", "yes", "on"):
        return True
    raise IsolationError(f"[ci_vars] {key} must be true or false, not {text!r}")


def _number(conf: Any, key: str, kind: type[float] | type[int]) -> Any:
    text = str(conf.get(_SECTION, key, fallback="") or "").strip()
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError:
        raise IsolationError(f"[ci_vars] {key} must be a number, not {text!r}") from None
    if value < 0:
        raise IsolationError(f"[ci_vars] {key} must not be negative")
    return value


def container_jobs(conf: Any = None) -> ContainerJobs:
    """The ``[ci_vars] docker_*`` options (docs/containers.md) as the container jobs' settings."""
    conf = _conf(conf)

    def text(key: str) -> str:
        return str(conf.get(_SECTION, key, fallback="") or "").strip()

    timeout = _number(conf, "docker_services_timeout", float)
    pids = _number(conf, "docker_pids_limit", int)
    policy = ContainerPolicy(
        default_image=text("docker_default_image") or None,
        allowed_images=tuple(_list(text("docker_allowed_images"))),
        allowed_services=tuple(_list(text("docker_allowed_services"))),
        pull_policy=text("docker_pull_policy") or DEFAULT_PULL_POLICY,
        allowed_pull_policies=tuple(_list(text("docker_allowed_pull_policies"))),
        privileged=_flag(conf, "docker_privileged"),
        memory=text("docker_memory") or None,
        cpus=_number(conf, "docker_cpus", float),
        pids_limit=4096 if pids is None else (pids or None),
        services_timeout=DEFAULT_SERVICES_TIMEOUT if timeout is None else timeout,
    )
    return ContainerJobs(DockerSettings(host=text("docker_host") or None), policy)


def job_boundary(settings_file: str | os.PathLike[str] | None, conf: Any = None) -> JobBoundary:
    """Read the ``[ci_vars]`` options of job isolation (docs/security.md) from ``conf`` (``_conf``)."""
    conf = _conf(conf)
    hidden = tuple(worker_paths(settings_file, conf))
    mode = str(conf.get(_SECTION, "isolation", fallback="") or DEFAULT_MODE).strip().lower()
    containers = container_jobs(conf) if mode == CONTAINER_MODE else None
    isolation = (
        Unisolated()
        if containers is not None
        else choose_isolation(
            mode,
            sandbox_user=str(conf.get(_SECTION, "sandbox_user", fallback="") or DEFAULT_SANDBOX_USER),
            read_only=_list(str(conf.get(_SECTION, "sandbox_read_only_paths", fallback="") or "")),
            hidden=hidden,
        )
    )
    limit_kib = str(conf.get(_SECTION, "job_log_limit", fallback="") or "").strip()
    if limit_kib and not limit_kib.isdigit():
        raise IsolationError(f"[ci_vars] job_log_limit must be a whole number of KiB (0: no limit), not {limit_kib!r}")
    output_limit = DEFAULT_OUTPUT_LIMIT if not limit_kib else int(limit_kib) * 1024 or None
    root = str(conf.get(_SECTION, "workspace_root", fallback="") or "") or None
    return JobBoundary(isolation, root, output_limit, hidden, containers)


def prepare_boundary(settings_file: str | os.PathLike[str] | None, log: Logger, conf: Any = None) -> JobBoundary:
    """This worker's job boundary (``job_boundary``), said in the task log (a warning when there
    is no sandbox); clears the workspaces killed tasks left. Raises ``IsolationError``."""
    boundary = job_boundary(settings_file, conf)
    if boundary.containers is not None:
        log.info("Job isolation: containers on the Docker daemon at %s", boundary.containers.docker.shown_host)
    elif boundary.isolation.mode == "sandbox":
        user = getattr(boundary.isolation, "user", None)
        who = user.name if user is not None else "the worker's user, in a user namespace"
        log.info("Job isolation: sandbox (bubblewrap), running as %s", who)
    elif boundary.isolation.mode == "none":
        reason = getattr(boundary.isolation, "reason", None)
        if reason:
            log.warning("No job sandbox on this worker ([ci_vars] isolation = auto): %s", reason)
        log.warning("%s", NONE_WARNING)
    swept = sweep_workspaces(boundary.workspace_root)
    if swept:
        log.info("Removed %d workspace(s) left by killed tasks on this worker", swept)
    return boundary
