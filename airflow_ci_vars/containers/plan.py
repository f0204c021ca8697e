"""What a container job runs: its image, its services and their environments, decided before
anything starts. R (gitlab-runner): ``executors/docker/docker.go`` (``expandImageName``,
``getServiceVariables``, pull policies), ``helpers/container/services/services.go`` (service
host names), ``common/build.go`` (``/builds/<project path>``).

Pure: no Docker, no Airflow. The Docker runner (``containers.docker_runner``) and the
Kubernetes pod (``containers.kubernetes``) are both built from one :class:`ContainerPlan`.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from airflow_ci_vars.errors import ContainerError
from airflow_ci_vars.pipeline.entries.image import PULL_POLICIES, ImageSpec, ServiceSpec
from airflow_ci_vars.untrusted_regexp import UntrustedRegexp, wildcard_regexp
from airflow_ci_vars.variables.expansion import go_os_expand
from airflow_ci_vars.variables.model import Layer, Variable

__all__ = [
    "BUILDS_DIR",
    "DEFAULT_PULL_POLICY",
    "DEFAULT_SERVICES_TIMEOUT",
    "DETECT_SHELL",
    "PUBLIC_LAYERS",
    "BuildPaths",
    "ContainerPlan",
    "ContainerPolicy",
    "ContainerSpec",
    "build_paths",
    "plan_containers",
    "service_aliases",
]

BUILDS_DIR = "/builds"
"""``CI_BUILDS_DIR`` inside a container job (the runner's default ``builds_dir``)."""

DEFAULT_PULL_POLICY = "if-not-present"
"""The deployment's pull policy when ``[ci_vars] docker_pull_policy`` is unset (the runner's is ``always``)."""

DEFAULT_SERVICES_TIMEOUT = 30.0
"""Seconds to wait for a service's exposed ports (the runner's ``wait_for_services_timeout``)."""

PUBLIC_LAYERS = frozenset({Layer.PREDEFINED, Layer.DEPLOYMENT, Layer.DEFAULT, Layer.JOB})
"""Layers whose variables reach services: the runner passes ``PublicOrInternal()`` variables,
i.e. predefined and ``.gitlab-ci.yml`` ones; stored CI/CD variables, pipeline variables, dotenv
values and ``secrets:`` never reach a service."""

# Docker's reference grammar, enough to take the tag off (distribution/reference).
_TAG = re.compile(r"^(?P<repo>[^@]+?)(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>[A-Za-z0-9_+.-]+:[0-9a-fA-F]+))?$")
_REGISTRY_PORT = re.compile(r"^(.*?)(|:[0-9]+)(|/.*)$")


DETECT_SHELL = """for candidate in /usr/local/bin/bash /usr/bin/bash /bin/bash \\
    /usr/local/bin/sh /usr/bin/sh /bin/sh /busybox/sh; do
  if [ -x "$candidate" ]; then exec "$candidate" "$@"; fi
done
echo "shell not found (looked for bash, then sh)" >&2
exit 1
"""
"""gitlab-runner's shell detection (``shells/bash.go``, ``BashDetectShellScript``): the first of
bash, then sh, the image has runs the script given as its arguments (``sh -c DETECT_SHELL sh SCRIPT``)."""


@dataclass(frozen=True, slots=True)
class BuildPaths:
    """Where a container job sees its workspace: ``CI_BUILDS_DIR``, ``CI_PROJECT_DIR`` and the
    runner's temp folder (``RUNNER_TEMP_PROJECT_DIR``: file variables, ``$GITLAB_ENV``, scripts)."""

    builds_dir: str
    project_dir: str
    temp_dir: str


def build_paths(project: str, builds_dir: str = BUILDS_DIR) -> BuildPaths:
    """``/builds/<project path>`` as the runner lays it out (``common/build.go``); a project path
    that is empty or has a ``..`` segment (it would leave or alias another folder) is refused."""
    clean = posixpath.normpath("/" + project.strip("/")).lstrip("/")
    if not clean or ".." in project.split("/"):
        raise ContainerError(f"cannot place project {project!r} under {builds_dir}")
    project_dir = posixpath.join(builds_dir, clean)
    return BuildPaths(builds_dir, project_dir, project_dir + ".tmp")


@dataclass(frozen=True, slots=True)
class ContainerPolicy:
    """The deployment's rules for container jobs (``[ci_vars] docker_*``; docs/containers.md).

    ``allowed_images``/``allowed_services`` are the runner's ``allowed_images``/``allowed_services``
    globs (``*`` within a path segment, ``**`` across); empty allows any. ``allowed_pull_policies``
    empty allows any of :data:`PULL_POLICIES`. ``memory`` is Docker's syntax (``2g``), ``cpus`` a
    fraction of cores, ``pids_limit`` the processes per container.
    """

    default_image: str | None = None
    allowed_images: tuple[str, ...] = ()
    allowed_services: tuple[str, ...] = ()
    pull_policy: str = DEFAULT_PULL_POLICY
    allowed_pull_policies: tuple[str, ...] = ()
    privileged: bool = False
    memory: str | None = None
    cpus: float | None = None
    pids_limit: int | None = 4096
    services_timeout: float = DEFAULT_SERVICES_TIMEOUT
    _patterns: dict[str, tuple[UntrustedRegexp, ...]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.pull_policy not in PULL_POLICIES:
            raise ContainerError(
                f"[ci_vars] docker_pull_policy: {self.pull_policy!r} is not one of {', '.join(PULL_POLICIES)}"
            )
        bad = [p for p in self.allowed_pull_policies if p not in PULL_POLICIES]
        if bad:
            raise ContainerError(
                f"[ci_vars] docker_allowed_pull_policies: {bad[0]!r} is not one of {', '.join(PULL_POLICIES)}"
            )
        for name, patterns in (("images", self.allowed_images), ("services", self.allowed_services)):
            self._patterns[name] = tuple(wildcard_regexp(p, star="[^/]*", double_star=".*") for p in patterns)

    def allows(self, kind: str, image: str) -> bool:
        """Whether ``image`` (expanded) is allowed as a job image (``images``) or a service (``services``)."""
        patterns = self._patterns[kind]
        return not patterns or any(p.fullmatch(image) for p in patterns)


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """One container to start: the job's or a service's.

    ``entrypoint``/``command`` None keep the image's own; ``aliases`` are a service's host names
    on the job's network; ``environment`` is exactly what the container gets.
    """

    image: str
    pull_policy: str
    environment: tuple[tuple[str, str], ...] = field(repr=False)
    entrypoint: tuple[str, ...] | None = None
    command: tuple[str, ...] | None = None
    user: str | None = None
    platform: str | None = None
    aliases: tuple[str, ...] = ()
    written: str = ""

    @property
    def shown(self) -> str:
        """The name to show in logs: as written in the pipeline when it held a variable (a
        variable may be masked), else the image."""
        return self.written if self.written and self.written != self.image else self.image


@dataclass(frozen=True, slots=True)
class ContainerPlan:
    """A container job: its container, its services (in the pipeline's order) and its paths."""

    job: ContainerSpec
    services: tuple[ContainerSpec, ...]
    paths: BuildPaths
    policy: ContainerPolicy


def service_aliases(image: str) -> tuple[str, ...]:
    """The host names the runner gives a service from its image name (``SplitNameAndVersion``):
    the name without tag or registry port, ``/`` as ``__`` and, when different, as ``-``."""
    match = _TAG.match(image)
    if match is None:
        return ()
    parts = _REGISTRY_PORT.match(match.group("repo"))
    service = (parts.group(1) + parts.group(3)) if parts else match.group("repo")
    first = service.replace("/", "__")
    second = service.replace("/", "-")
    return (first,) if first == second else (first, second)


def _pull_policy(asked: Sequence[str], policy: ContainerPolicy, *, job: str, where: str, image: str) -> str:
    """The pull policy to use: the job's first one (when the deployment allows it), else the
    deployment's. The runner's message for a policy not allowed."""
    allowed = policy.allowed_pull_policies or PULL_POLICIES
    if asked:
        refused = [p for p in asked if p not in allowed]
        if refused:
            raise ContainerError(
                f"jobs:{job}:{where}: pull_policy ([{' '.join(asked)}]) defined in the pipeline for "
                f"{image!r} is not one of [ci_vars] docker_allowed_pull_policies ([{' '.join(allowed)}])"
            )
        return asked[0]
    if policy.pull_policy not in allowed:
        return allowed[0]
    return policy.pull_policy


def _expand(text: str, variables: Mapping[str, str]) -> str:
    return go_os_expand(text, lambda name: variables.get(name, ""))


def _check_allowed(
    kind: str, image: str, written: str, policy: ContainerPolicy, job: str, masked: Sequence[str]
) -> None:
    if policy.allows(kind, image):
        return
    patterns = policy.allowed_images if kind == "images" else policy.allowed_services
    shown = written if any(m and m in image for m in masked) else image
    what = "image" if kind == "images" else "service image"
    raise ContainerError(
        f"jobs:{job}: the {what} {shown!r} is not allowed by [ci_vars] docker_allowed_{kind} ({', '.join(patterns)})"
    )


def _public(variables: Sequence[Variable]) -> dict[str, str]:
    """The job's variables a service receives (:data:`PUBLIC_LAYERS`; last definition wins)."""
    found: dict[str, str] = {}
    for v in variables:
        if v.source is not None and v.source.layer in PUBLIC_LAYERS and not v.is_secret and not v.is_file:
            found[v.key] = v.value
    return found


def plan_containers(
    *,
    job: str,
    image: ImageSpec | None,
    services: Sequence[ServiceSpec],
    environment: Mapping[str, str],
    variables: Sequence[Variable],
    masked: Sequence[str],
    policy: ContainerPolicy,
    paths: BuildPaths,
) -> ContainerPlan:
    """Decide the containers of job ``job``.

    ``environment`` is the job's resolved environment (what its script gets); ``variables`` the
    runner's list it came from (with layers), ``masked`` the values to mask. Image and service
    names are expanded with the job's variables as the runner does; a job without ``image:``
    takes ``policy.default_image``. Raises :class:`ContainerError` naming the job, the image as
    written (when a masked value is in it) and the ``[ci_vars]`` setting that refuses it.
    """
    if image is None:
        if not policy.default_image:
            raise ContainerError(
                f"jobs:{job}: no image: the job names none and [ci_vars] docker_default_image is not set"
            )
        image = ImageSpec(policy.default_image)
    name = _expand(image.name, environment).strip()
    if not name:
        raise ContainerError(f"jobs:{job}:image: {image.name!r} expands to an empty image name")
    _check_allowed("images", name, image.name, policy, job, masked)
    job_container = ContainerSpec(
        image=name,
        pull_policy=_pull_policy(image.pull_policy, policy, job=job, where="image", image=image.name),
        environment=tuple(environment.items()),
        entrypoint=image.entrypoint,
        user=image.user,
        platform=image.platform,
        written=image.name,
    )
    public = _public(variables)
    started: list[ContainerSpec] = []
    for index, service in enumerate(services):
        where = f"services:{index}"
        service_name = _expand(service.name, public).strip()
        if not service_name:
            raise ContainerError(f"jobs:{job}:{where}: {service.name!r} expands to an empty image name")
        _check_allowed("services", service_name, service.name, policy, job, masked)
        own = {key: _expand(value, public) for key, value in service.variables}
        aliases = tuple(dict.fromkeys((*service_aliases(service_name), *service.aliases)))
        started.append(
            ContainerSpec(
                image=service_name,
                pull_policy=_pull_policy(service.pull_policy, policy, job=job, where=where, image=service.name),
                environment=tuple({**public, **own}.items()),
                entrypoint=service.entrypoint,
                command=service.command,
                user=service.user,
                platform=service.platform,
                aliases=aliases,
                written=service.name,
            )
        )
    return ContainerPlan(job_container, tuple(started), paths, policy)
