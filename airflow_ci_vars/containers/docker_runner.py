"""A container job on a Docker daemon, as gitlab-runner's Docker executor runs it.

R (gitlab-runner): ``executors/docker/docker.go`` (images, pull policies, the build container),
``executors/docker/services.go`` and ``internal/wait`` (services on the job's network, waited
for on their exposed ports), ``shells/bash.go`` (shell detection), ``executors/docker/internal/
labels``. Built on the ``docker`` package (Docker's Engine API client), no Airflow import.

For each job: a network of its own; each service started on it with its host names (the image
name as the runner derives it, and its ``alias``), waited for; then ``before_script`` +
``script`` in one container of the job's image, ``after_script`` in another one on the same
workspace. The workspace's project folder is bind-mounted at ``/builds/<project path>``, its
temp folder beside it (``$GITLAB_ENV``, the scripts), file variables read-only on top. Output
goes through the job's masker line by line. Everything this runner creates carries the label
``airflow-ci-vars.job`` and the owning task process: :func:`sweep_containers` removes what a
killed task left.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import posixpath
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_ci_vars.containers.plan import DETECT_SHELL, ContainerPlan, ContainerPolicy, ContainerSpec
from airflow_ci_vars.errors import ContainerError, ScriptTimeoutError
from airflow_ci_vars.isolation import hand_over
from airflow_ci_vars.masking import Masker
from airflow_ci_vars.runner import (
    DEFAULT_OUTPUT_LIMIT,
    LineEmitter,
    OutputLimit,
    StrPath,
    Workspace,
    build_script,
    process_alive,
    process_stamp,
    write_script,
)

__all__ = [
    "JOB_LABEL",
    "OWNER_LABEL",
    "ContainerJobs",
    "ContainerRunner",
    "DockerSettings",
    "docker_client",
    "sweep_containers",
]

JOB_LABEL = "airflow-ci-vars.job"
"""Label on every container and network of a job: the job's name."""
OWNER_LABEL = "airflow-ci-vars.owner"
"""Label naming the task process that owns the object (host, pid and start time)."""

_POLL = 0.05
_DRAIN = 5.0
_API_TIMEOUT = 60


@dataclass(frozen=True, slots=True)
class DockerSettings:
    """Where container jobs run: the daemon (``host``, None: ``DOCKER_HOST`` or the default
    socket) and the API timeout in seconds."""

    host: str | None = None
    timeout: int = _API_TIMEOUT

    @property
    def shown_host(self) -> str:
        """The daemon's address for messages."""
        return self.host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


@dataclass(frozen=True, slots=True)
class ContainerJobs:
    """``[ci_vars] isolation = docker``: the daemon jobs run on and the rules they follow."""

    docker: DockerSettings
    policy: ContainerPolicy


def docker_client(settings: DockerSettings) -> Any:
    """A ``docker.DockerClient`` for ``settings`` that answered a ping, or :class:`ContainerError`
    saying which daemon could not be reached (a worker without Docker never runs the job elsewhere)."""
    import docker  # type: ignore[import-untyped]  # no type hints shipped

    try:
        # DOCKER_TLS_VERIFY / DOCKER_CERT_PATH apply to a configured tcp:// host as to DOCKER_HOST.
        environment = {**os.environ, "DOCKER_HOST": settings.host} if settings.host else None
        client = docker.from_env(timeout=settings.timeout, environment=environment)
        client.ping()
    except Exception as exc:  # docker.errors.DockerException, requests' errors, OSError
        raise ContainerError(
            f"container jobs need a Docker daemon, and the one at {settings.shown_host} "
            f"([ci_vars] docker_host) cannot be reached on this worker: {_reason(exc)}"
        ) from None
    return client


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def _split_reference(image: str) -> tuple[str, str | None]:
    """``repo[:tag][@digest]`` -> (repository, tag or digest) for a pull."""
    if "@" in image:
        repo, digest = image.split("@", 1)
        return repo, digest
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = image.rsplit(":", 1)
        return repo, tag
    return image, "latest"


class ContainerRunner:
    """Runs one job's scripts in containers of its :class:`ContainerPlan` (a ``runner.JobRunner``).

    ``masker``/``emit``/``output_limit``/``kill_grace`` behave as for the shell runner;
    ``job_name`` labels every object. :meth:`prepare` makes the network, checks the images
    and starts the services; :meth:`close` removes them. One runner serves one task attempt.
    """

    def __init__(
        self,
        plan: ContainerPlan,
        masker: Masker,
        emit: Callable[[str], None],
        *,
        client: Any,
        job_name: str,
        kill_grace: float = 5.0,
        output_limit: int | None = DEFAULT_OUTPUT_LIMIT,
        file_keys: Sequence[str] = (),
    ) -> None:
        self._plan = plan
        self._masker = masker
        self._emit = OutputLimit(emit, output_limit)
        self._client = client
        self._api = client.api
        self._job_name = job_name
        self._kill_grace = kill_grace
        self._file_keys = tuple(file_keys)
        self._lock = threading.RLock()
        self._killed = False
        self._running: str | None = None  # id of the script container now running
        self._network: str | None = None
        self._services: list[str] = []
        self._workspace: Workspace | None = None
        self._owner: tuple[int, int] | None = None  # the job container's user, when not root
        self._configs: dict[str, dict[str, Any]] = {}  # image -> its configuration, inspected once
        self._slug = f"ci-job-{uuid.uuid4().hex[:12]}"
        owner = f"{socket.gethostname()} {process_stamp(os.getpid()).strip()}"
        self._labels = {JOB_LABEL: job_name[:200], OWNER_LABEL: owner}

    # -- the JobRunner interface ---------------------------------------------------------------

    @property
    def killed(self) -> bool:
        """True once :meth:`kill` was called."""
        return self._killed

    @property
    def plan(self) -> ContainerPlan:
        """What this runner runs."""
        return self._plan

    def prepare(self, workspace: Workspace) -> None:
        """Make the job's network, check or pull its images, start and wait for its services."""
        self._workspace = workspace
        self._say(f"Using Docker executor with image {self._plan.job.shown} ...")
        self._ensure_image(self._plan.job, "image")
        for service in self._plan.services:
            self._ensure_image(service, "service")
        self._owner = self._job_user()
        if self._owner is not None:
            # An image's own non-root user (or docker:user) must write its workspace: hand it over,
            # as gitlab-runner does with FF_DISABLE_UMASK_FOR_DOCKER_EXECUTOR (never world-writable).
            self._hand_over([os.fspath(workspace.project_dir), os.fspath(workspace.temp_dir)])
        network = self._api.create_network(self._slug, driver="bridge", labels=self._labels, check_duplicate=True)
        self._network = str(network["Id"])
        started: list[tuple[ContainerSpec, str]] = []
        for index, service in enumerate(self._plan.services):
            if self._killed:
                return
            self._say(f"Starting service {service.shown} ...")
            with self._refused("service", service):
                cid = self._create(
                    service,
                    name=f"{self._slug}-svc-{index}",
                    command=list(service.command) if service.command is not None else None,
                    binds={},
                    working_dir=None,
                    aliases=service.aliases,
                )
                self._services.append(cid)
                self._api.start(cid)
            started.append((service, cid))
        for service, cid in started:
            self._wait_for_service(service, cid)

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
        """Run ``commands`` in a new container of the job's image; return its exit code.

        ``env`` holds the worker's paths of ``$GITLAB_ENV``; they are shown to the job at the
        container's paths. After ``timeout`` the container is stopped and
        :class:`ScriptTimeoutError` raised; after :meth:`kill` nothing starts and 143 is returned.
        """
        workspace = workspace or self._workspace
        if workspace is None:
            raise ContainerError("a container job needs its workspace")
        path = write_script(script_dir, build_script(commands, portable=True))
        try:
            if self._owner is not None:
                self._hand_over([path])
            with self._lock:
                if self._killed:
                    return 128 + 15
            inside = self._inside(workspace)
            environment = {key: inside(value) if key == "GITLAB_ENV" else value for key, value in env.items()}
            with self._refused("image", self._plan.job):
                cid = self._create(
                    self._plan.job,
                    name=f"{self._slug}-build-{uuid.uuid4().hex[:6]}",
                    command=["sh", "-c", DETECT_SHELL, "sh", inside(path)],
                    binds=self._binds(workspace),
                    working_dir=inside(os.fspath(cwd)),
                    aliases=(),
                    environment=environment,
                )
            try:
                with self._refused("image", self._plan.job):
                    return self._run_container(cid, timeout)
            finally:
                with contextlib.suppress(Exception):
                    self._api.remove_container(cid, force=True, v=True)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)

    def kill(self) -> None:
        """Stop the running script container (SIGTERM, SIGKILL after ``kill_grace``); returns at once."""
        with self._lock:
            self._killed = True
            cid = self._running
        if cid is not None:
            with contextlib.suppress(Exception):
                self._api.kill(cid, signal="SIGTERM")

    def close(self) -> None:
        """Stop and remove the services and the network (idempotent, also after failures)."""
        services, self._services = self._services, []
        for cid in services:
            with contextlib.suppress(Exception):
                self._api.remove_container(cid, force=True, v=True)
        network, self._network = self._network, None
        if network is not None:
            # The daemon may release a removed container's endpoint a moment later.
            for attempt in range(50):
                try:
                    self._api.remove_network(network)
                    break
                except Exception as exc:
                    if "not found" in str(exc).lower() or attempt == 49:
                        break
                    time.sleep(0.1)

    # -- containers -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _refused(self, what: str, spec: ContainerSpec) -> Iterator[None]:
        """The daemon's refusal (a bad entrypoint, platform or user) as the job's located error."""
        import docker.errors  # type: ignore[import-untyped]

        try:
            yield
        except docker.errors.APIError as exc:
            reason = self._masker.mask(_reason(exc.explanation or exc))
            raise ContainerError(
                f"jobs:{self._job_name}: the {what} {spec.shown!r} could not start: {reason}"
            ) from None

    def _job_user(self) -> tuple[int, int] | None:
        """The uid and gid the job's scripts run as, when not root: ``docker:user`` or the image's ``USER``."""
        spec = self._plan.job
        user = spec.user or str(self._configs[spec.image].get("User") or "")
        if user.split(":")[0] in ("", "root", "0"):
            return None
        uid, _, gid = user.partition(":")
        if uid.isdigit() and (gid == "" or gid.isdigit()):
            return int(uid), int(gid or uid)
        # A user name: only the image knows its ids.
        cid = self._api.create_container(
            spec.image,
            command=['echo "$(id -u):$(id -g)"'],
            entrypoint=["/bin/sh", "-c"],
            user=user,
            labels=self._labels,
            platform=spec.platform,
            network_disabled=True,
        )["Id"]
        try:
            self._api.start(cid)
            code = self._api.wait(cid, timeout=_API_TIMEOUT).get("StatusCode", 1)
            said = self._api.logs(cid, stdout=True, stderr=False).decode("ascii", "replace").strip()
        finally:
            with contextlib.suppress(Exception):
                self._api.remove_container(cid, force=True)
        found_uid, _, found_gid = said.partition(":")
        if code != 0 or not found_uid.isdigit() or not found_gid.isdigit():
            raise ContainerError(f"jobs:{self._job_name}: the image {spec.shown!r} has no user {user!r}")
        return (int(found_uid), int(found_gid)) if found_uid != "0" else None

    def _hand_over(self, paths: list[str]) -> None:
        assert self._owner is not None
        try:
            hand_over(paths, *self._owner)
        except PermissionError:
            raise ContainerError(
                f"jobs:{self._job_name}: the job runs as uid {self._owner[0]} in its image, and this worker "
                "may not give it the workspace (run the worker as root, or use a root image user)"
            ) from None

    def _say(self, line: str) -> None:
        self._emit(self._masker.mask(line))

    def _ensure_image(self, spec: ContainerSpec, what: str) -> None:
        """The runner's pull policies: ``never`` uses the local image only, ``if-not-present``
        pulls a missing one, ``always`` pulls. The image's configuration is kept (its user, its ports)."""
        import docker.errors

        if spec.pull_policy != "always":
            try:
                self._configs[spec.image] = self._api.inspect_image(spec.image).get("Config") or {}
                return
            except docker.errors.ImageNotFound:
                pass
        if spec.pull_policy == "never":
            raise ContainerError(
                f"jobs:{self._job_name}: the {what} {spec.shown!r} is not present on the Docker host and its "
                "pull policy is never ([ci_vars] docker_pull_policy, or the job's pull_policy)"
            )
        repo, tag = _split_reference(spec.image)
        self._say(f"Pulling docker image {spec.shown} ...")
        try:
            self._api.pull(repo, tag=tag, platform=spec.platform)
        except docker.errors.DockerException as exc:
            raise ContainerError(
                f"jobs:{self._job_name}: failed to pull the {what} {spec.shown!r}: {self._masker.mask(_reason(exc))}"
            ) from None
        self._configs[spec.image] = self._api.inspect_image(spec.image).get("Config") or {}

    def _create(
        self,
        spec: ContainerSpec,
        *,
        name: str,
        command: list[str] | None,
        binds: Mapping[str, Mapping[str, str]],
        working_dir: str | None,
        aliases: Sequence[str],
        environment: Mapping[str, str] | None = None,
    ) -> str:
        policy = self._plan.policy
        env = dict(spec.environment) if environment is None else dict(environment)
        host_config = self._api.create_host_config(
            binds=dict(binds),
            init=True,  # signals reach the shell, zombies are reaped
            privileged=policy.privileged,
            security_opt=None if policy.privileged else ["no-new-privileges"],
            mem_limit=policy.memory,
            nano_cpus=int(policy.cpus * 1e9) if policy.cpus else None,
            pids_limit=policy.pids_limit,
            network_mode=self._slug,
        )
        networking = self._api.create_networking_config(
            {self._slug: self._api.create_endpoint_config(aliases=list(aliases) or None)}
        )
        entrypoint = list(spec.entrypoint) if spec.entrypoint is not None else None
        created = self._api.create_container(
            spec.image,
            command=command,
            entrypoint=entrypoint,
            environment=[f"{k}={v}" for k, v in env.items()],
            working_dir=working_dir,
            user=spec.user,
            labels=self._labels,
            host_config=host_config,
            networking_config=networking,
            name=name,
            platform=spec.platform,
            use_config_proxy=False,  # exactly the job's variables, nothing from ~/.docker/config.json
        )
        return str(created["Id"])

    def _inside(self, workspace: Workspace) -> Callable[[str], str]:
        """Map a worker path inside the workspace to the container's path."""
        paths = self._plan.paths
        pairs = (
            (os.fspath(workspace.temp_dir), paths.temp_dir),
            (os.fspath(workspace.project_dir), paths.project_dir),
        )

        def inside(path: str) -> str:
            for host, container in pairs:
                if path == host:
                    return container
                if path.startswith(host + "/"):
                    return posixpath.join(container, path[len(host) + 1 :])
            return path

        return inside

    def _binds(self, workspace: Workspace) -> dict[str, dict[str, str]]:
        paths = self._plan.paths
        binds = {
            os.fspath(workspace.project_dir): {"bind": paths.project_dir, "mode": "rw"},
            os.fspath(workspace.temp_dir): {"bind": paths.temp_dir, "mode": "rw"},
        }
        for key in self._file_keys:
            host = os.path.join(workspace.temp_dir, key)
            if os.path.isfile(host) and not os.path.islink(host):
                binds[host] = {"bind": posixpath.join(paths.temp_dir, key), "mode": "ro"}
        return binds

    def _run_container(self, cid: str, timeout: float | None) -> int:
        """Start ``cid``, stream its output through the masker, stop it on timeout or kill."""
        out = LineEmitter(self._masker, self._emit)
        reader = threading.Thread(target=self._read, args=(cid, out), daemon=True, name="ci-job-output")
        with self._lock:
            if self._killed:
                return 128 + 15
            self._running = cid
        try:
            self._api.start(cid)
            reader.start()
            deadline = None if timeout is None else time.monotonic() + timeout
            sigkill_at: float | None = None
            timed_out = False
            while reader.is_alive():
                now = time.monotonic()
                if sigkill_at is None and (self._killed or (deadline is not None and now >= deadline)):
                    timed_out = not self._killed
                    with contextlib.suppress(Exception):
                        self._api.kill(cid, signal="SIGTERM")
                    sigkill_at = now + self._kill_grace
                if sigkill_at is not None and now >= sigkill_at:
                    with contextlib.suppress(Exception):
                        self._api.kill(cid)
                    sigkill_at = float("inf")
                reader.join(_POLL)
            code = int(self._api.wait(cid, timeout=self._kill_grace + _API_TIMEOUT).get("StatusCode", 1))
        finally:
            with self._lock:
                self._running = None
        reader.join(_DRAIN)
        out.close()
        if timed_out:
            assert timeout is not None
            raise ScriptTimeoutError(timeout)
        return code

    def _read(self, cid: str, out: LineEmitter) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        with contextlib.suppress(Exception):
            for chunk in self._api.logs(cid, stdout=True, stderr=True, stream=True, follow=True):
                out.write(decoder.decode(chunk))
        out.write(decoder.decode(b"", final=True))

    # -- services -------------------------------------------------------------------------------

    def _wait_for_service(self, service: ContainerSpec, cid: str) -> None:
        """Wait until each TCP port the image exposes accepts a connection (the runner's
        ``wait_for_services_timeout``); say the runner's warning when it does not."""
        config = self._configs[service.image]
        ports = sorted(int(p.split("/")[0]) for p in (config.get("ExposedPorts") or {}) if p.endswith("/tcp"))
        if not ports:
            return
        deadline = time.monotonic() + self._plan.policy.services_timeout
        problem = ""
        for port in ports:
            while True:
                if self._killed:
                    return
                state = self._api.inspect_container(cid)
                if not state["State"].get("Running"):
                    problem = f"service container exited with code {state['State'].get('ExitCode')}"
                    break
                address = (state["NetworkSettings"]["Networks"].get(self._slug) or {}).get("IPAddress")
                if address and _port_open(address, port):
                    break
                if time.monotonic() >= deadline:
                    waited = self._plan.policy.services_timeout
                    problem = f"service {service.shown} did not open port {port}/tcp within {waited:g} seconds"
                    break
                time.sleep(0.1)
            if problem:
                break
        if not problem:
            return
        self._say("")
        self._say(f"*** WARNING: Service {service.shown} probably didn't start properly.")
        self._say("")
        self._say("Health check error:")
        self._say(problem)
        self._say("")
        self._say("Service container logs:")
        with contextlib.suppress(Exception):
            logs = self._api.logs(cid, stdout=True, stderr=True, tail=50).decode("utf-8", "replace")
            for line in logs.splitlines():
                self._say(line)
        self._say("")
        self._say("*********")


def _port_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def _labelled(client: Any, kind: str) -> Iterator[dict[str, Any]]:
    api = client.api
    if kind == "container":
        yield from api.containers(all=True, filters={"label": JOB_LABEL})
    else:
        yield from api.networks(filters={"label": JOB_LABEL})


def sweep_containers(client: Any) -> int:
    """Remove the containers and networks of jobs whose task process (on this host) is gone, as
    :func:`~airflow_ci_vars.runner.sweep_workspaces` removes their workspaces. Returns how many
    objects were removed."""
    api = client.api
    removed = 0
    host = socket.gethostname()
    for kind in ("container", "network"):
        for item in list(_labelled(client, kind)):
            labels = item.get("Labels") or {}
            owner_host, _, stamp = labels.get(OWNER_LABEL, "").partition(" ")
            if owner_host != host:
                continue  # another machine's job on a shared daemon
            if process_alive(stamp):
                continue
            with contextlib.suppress(Exception):
                if kind == "container":
                    api.remove_container(item["Id"], force=True, v=True)
                else:
                    api.remove_network(item["Id"])
                removed += 1
    return removed
