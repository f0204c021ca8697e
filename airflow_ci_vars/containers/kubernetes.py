"""A container job as a Kubernetes pod: the manifests, not a client. R (gitlab-runner):
``executors/kubernetes/kubernetes.go`` (one pod: ``build`` and ``svc-N`` containers, security
context, pull policies), ``executors/kubernetes/host_aliases.go`` (services reached on
localhost, their host names mapped to 127.0.0.1), ``shells/bash.go`` (``BashDetectShellScript``:
bash if the image has one, else sh).

Pure: no Airflow, no Kubernetes client. :func:`pod_manifests` turns a :class:`ContainerPlan`
into two plain ``v1`` dicts, a Secret and a Pod, for ``kubectl apply`` or the cncf-kubernetes
provider. The pod never holds a masked value: those, the script and file variables live in the
Secret (docs/containers.md, "Kubernetes").
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal

from airflow_ci_vars.containers.plan import DETECT_SHELL, ContainerPlan, ContainerSpec, service_aliases
from airflow_ci_vars.errors import ContainerError

__all__ = ["JOB_LABEL", "SCRIPT_NAME", "PodManifests", "kubernetes_name", "pod_manifests"]

JOB_LABEL = "airflow-ci-vars.job"
"""The label every manifest carries: the pod's name."""

SCRIPT_NAME = "script.sh"
"""The script's file name in the job's temp folder (not a valid variable key: no clash with a file variable)."""

_PULL_POLICIES = {"always": "Always", "never": "Never", "if-not-present": "IfNotPresent"}
_SCRIPT_MODE = 0o500
_FILE_MODE = 0o400
_MAX_NAME = 63
_VARS_SUFFIX = "-vars"
_MIN_GUARDED = 8  # GitLab's shortest maskable value; shorter ones would match names by chance
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DOCKER_MEMORY = re.compile(r"(?P<number>[0-9]+(\.[0-9]+)?)(?P<unit>[bkmgt]?)b?", re.IGNORECASE)
_KUBERNETES_MEMORY = re.compile(r"[0-9]+(\.[0-9]+)?([KMGTPE]i?|e[0-9]+)?")
_DOCKER_UNITS = {"": "", "b": "", "k": "Ki", "m": "Mi", "g": "Gi", "t": "Ti"}
_DOCKER_POWERS = {"": 0, "b": 0, "k": 1, "m": 2, "g": 3, "t": 4}
_NUMERIC_USER = re.compile(r"(?P<uid>[0-9]+)(:(?P<gid>[0-9]+))?")
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_FILE_KEY = re.compile(r"[A-Za-z0-9_]+")
_LABEL_KEY = re.compile(
    r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")

# The runner's shell detection (plan.DETECT_SHELL), after making and entering the project folder,
# $1 (the workspace volume starts empty); the rest goes to the shell found.
_DETECT_SHELL = 'mkdir -p "$1" && cd "$1" || exit 1\nshift\n' + DETECT_SHELL


@dataclass(frozen=True, slots=True)
class PodManifests:
    """The job's Secret and Pod as ``v1`` API dicts (JSON-able). Apply the Secret first: the
    pod's volumes and ``secretKeyRef`` entries name it."""

    pod: dict[str, object]
    secret: dict[str, object]


def kubernetes_name(name: str, *, limit: int = _MAX_NAME) -> str:
    """``name`` as a DNS-1123 label of at most ``limit`` characters: lower case, other
    characters as ``-``; a name that had to change ends with 8 hex digits of its hash, so two
    names that differ only in what was dropped stay apart."""
    clean = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if clean == name and len(clean) <= limit:
        return clean
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    head = clean[: limit - len(digest) - 1].rstrip("-")
    return f"{head}-{digest}" if head else f"job-{digest}"[:limit]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def _memory(value: str) -> str:
    """Docker's memory syntax (``512m``, ``2g``: powers of 1024) as a Kubernetes quantity
    (``512Mi``, ``2Gi``); a value already in Kubernetes' syntax (``2Gi``, ``1G``) is kept."""
    docker = _DOCKER_MEMORY.fullmatch(value.strip())
    if docker:
        number, unit = docker.group("number"), docker.group("unit").lower()
        if "." not in number:
            return number + _DOCKER_UNITS[unit]
        return str(int(Decimal(number) * 1024 ** _DOCKER_POWERS[unit]))
    if _KUBERNETES_MEMORY.fullmatch(value.strip()):
        return value.strip()
    raise ContainerError(f"[ci_vars] docker_memory: {value!r} is neither Docker's nor Kubernetes' memory syntax")


def _cpu(cpus: float) -> str:
    if cpus <= 0:
        raise ContainerError(f"[ci_vars] docker_cpus: {cpus!r} must be more than 0")
    return format(Decimal(repr(float(cpus))).normalize(), "f")


def _pull_policy(spec: ContainerSpec) -> str:
    return _PULL_POLICIES[spec.pull_policy]


def _platform(plan: ContainerPlan, where: str) -> dict[str, str]:
    """``nodeSelector`` for the containers' ``platform`` (one pod runs on one node)."""
    given = {c.platform for c in (plan.job, *plan.services) if c.platform}
    if not given:
        return {}
    if len(given) > 1:
        raise ContainerError(
            f"{where}: the containers ask for different platforms ({', '.join(sorted(given))}); "
            "one pod runs on one node"
        )
    parts = given.pop().split("/")
    if len(parts) == 1:
        return {"kubernetes.io/arch": parts[0]}
    return {"kubernetes.io/os": parts[0], "kubernetes.io/arch": parts[1]}


def _host_aliases(plan: ContainerPlan, where: str) -> list[dict[str, object]]:
    """Every service host name on 127.0.0.1 (the runner's ``createServicesHostAlias``): a name
    derived from the image that is not a DNS-1123 subdomain is skipped, such an ``alias`` refused."""
    names: list[str] = []
    for index, service in enumerate(plan.services):
        derived = service_aliases(service.image)
        for alias in service.aliases:
            if not _DNS_SUBDOMAIN.fullmatch(alias) or len(alias) > 253:
                if alias in derived:
                    continue
                raise ContainerError(
                    f"{where}: services:{index}: alias {alias!r} is not a valid host name "
                    "(DNS-1123: lower-case letters, digits, '-' and '.')"
                )
            names.append(alias)
    unique = list(dict.fromkeys(names))
    return [{"ip": "127.0.0.1", "hostnames": unique}] if unique else []


def _entrypoint_blank(entrypoint: tuple[str, ...]) -> bool:
    return not any(entrypoint)


def _build_command(spec: ContainerSpec, project_dir: str, script_path: str) -> dict[str, list[str]]:
    """``command``/``args`` of the build container: the image's ENTRYPOINT (or the job's
    ``entrypoint``) runs the shell detection, as Docker's ``Entrypoint`` + ``Cmd`` do."""
    shell = ["sh", "-c", _DETECT_SHELL, "sh", project_dir, script_path]
    if spec.entrypoint is None:
        return {"args": shell}
    if _entrypoint_blank(spec.entrypoint):
        return {"command": shell}
    return {"command": list(spec.entrypoint), "args": shell}


def _service_command(spec: ContainerSpec, where: str) -> dict[str, list[str]]:
    """A service's ``entrypoint`` is the container's ``command``, its ``command`` the ``args``."""
    if spec.entrypoint is not None and _entrypoint_blank(spec.entrypoint):
        if not spec.command:
            raise ContainerError(
                f'{where}: entrypoint [""] without command cannot be written in a pod '
                "(Kubernetes cannot drop an image's ENTRYPOINT and keep its CMD); give the service a command"
            )
        return {"command": list(spec.command)}
    out: dict[str, list[str]] = {}
    if spec.entrypoint is not None:
        out["command"] = list(spec.entrypoint)
    if spec.command is not None:
        out["args"] = list(spec.command)
    return out


def _user(spec: ContainerSpec, where: str) -> dict[str, int]:
    if spec.user is None:
        return {}
    match = _NUMERIC_USER.fullmatch(spec.user.strip())
    if match is None:
        raise ContainerError(
            f"{where}: user {spec.user!r} is not numeric; a pod can only run as a numeric user "
            "(runAsUser), give uid or uid:gid"
        )
    found = {"runAsUser": int(match.group("uid"))}
    if match.group("gid") is not None:
        found["runAsGroup"] = int(match.group("gid"))
    return found


def _security_context(plan: ContainerPlan, spec: ContainerSpec, where: str) -> dict[str, object]:
    privileged = plan.policy.privileged
    context: dict[str, object] = {"privileged": privileged, "allowPrivilegeEscalation": privileged}
    if not privileged:
        context["capabilities"] = {"drop": ["NET_RAW"]}  # the runner's default cap_drop
    context.update(_user(spec, where))
    return context


def _resources(plan: ContainerPlan) -> dict[str, object]:
    limits: dict[str, str] = {}
    if plan.policy.memory:
        limits["memory"] = _memory(plan.policy.memory)
    if plan.policy.cpus is not None:
        limits["cpu"] = _cpu(plan.policy.cpus)
    return {"limits": limits} if limits else {}


class _Env:
    """Builds ``env`` lists: secret values through the Secret, the rest inline."""

    def __init__(
        self,
        where: str,
        secret_name: str,
        masked_keys: Collection[str],
        environments: list[tuple[tuple[str, str], ...]],
    ) -> None:
        self.where = where
        self.secret_name = secret_name
        self.masked_keys = frozenset(masked_keys)
        self.masked_values = {v for env in environments for k, v in env if k in self.masked_keys and v}
        self.data: dict[str, str] = {}

    def secret(self, value: str) -> bool:
        return any(m in value for m in self.masked_values)

    def entries(
        self, prefix: str, environment: Mapping[str, str] | tuple[tuple[str, str], ...]
    ) -> list[dict[str, object]]:
        items = environment.items() if isinstance(environment, Mapping) else environment
        out: list[dict[str, object]] = []
        for key, value in items:
            if key in self.masked_keys or self.secret(value):
                secret_key = f"{prefix}.env.{key}"
                if not _SECRET_KEY.fullmatch(secret_key):
                    raise ContainerError(
                        f"{self.where}: {prefix}: variable {key!r} cannot be a Secret key "
                        "(letters, digits, '-', '_' and '.')"
                    )
                self.data[secret_key] = value
                ref = {"secretKeyRef": {"name": self.secret_name, "key": secret_key}}
                out.append({"name": key, "valueFrom": ref})
            else:
                out.append({"name": key, "value": value})
        return out


def _strings(value: object, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(key, f"{path}.{key}")
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def _refuse_masked(pod: Mapping[str, object], masked: set[str], where: str) -> None:
    """The last guard: no masked value anywhere in the pod (an image name, a command, a label)."""
    guarded = [m for m in masked if len(m) >= _MIN_GUARDED]
    for path, text in _strings(pod, "pod"):
        if any(m in text for m in guarded):
            raise ContainerError(
                f"{where}: {path} would hold a masked value (a pod spec is readable by anyone who may get pods)"
            )


def pod_manifests(
    plan: ContainerPlan,
    *,
    name: str,
    namespace: str,
    script: str,
    files: Mapping[str, str],
    masked_keys: Collection[str],
    labels: Mapping[str, str] = {},
    timeout_seconds: int | None = None,
) -> PodManifests:
    """The Pod and Secret that run ``plan`` on Kubernetes, as gitlab-runner's Kubernetes executor
    lays them out.

    One pod: the ``build`` container runs ``script`` (bash if the image has it, else sh) in
    ``plan.paths.project_dir``; services are ``svc-0``, ``svc-1``... on the pod's network, their
    host names on 127.0.0.1 (``hostAliases``). The workspace is an ``emptyDir`` at
    ``plan.paths.builds_dir``. The Secret holds the script (mode 0500), ``files`` (file variables,
    key -> content, each mounted read-only at ``<temp_dir>/<KEY>``, its variable set to that
    path) and every value of ``masked_keys`` (reached through ``secretKeyRef``, never inline).
    ``name`` is made a DNS-1123 label (:func:`kubernetes_name`). Raises :class:`ContainerError`
    for what a pod cannot express (a non-numeric ``user``, two platforms, an invalid ``alias``)
    and when a masked value would still land in the pod (an image name, a command).
    """
    if timeout_seconds is not None and timeout_seconds <= 0:
        raise ContainerError(f"pod {name!r}: timeout_seconds must be positive, not {timeout_seconds}")
    pod_name = kubernetes_name(name)
    secret_name = kubernetes_name(name, limit=_MAX_NAME - len(_VARS_SUFFIX)) + _VARS_SUFFIX
    where = f"pod {pod_name}"
    paths = plan.paths
    for key, value in labels.items():
        if not _LABEL_KEY.fullmatch(key) or not _LABEL_VALUE.fullmatch(value):
            raise ContainerError(f"{where}: label {key}={value!r} is not a valid Kubernetes label")
    all_labels = {**labels, JOB_LABEL: pod_name}

    file_paths = {key: f"{paths.temp_dir}/{key}" for key in files}
    job_environment = dict(plan.job.environment)
    job_environment.update(file_paths)
    env = _Env(where, secret_name, masked_keys, [plan.job.environment, *(s.environment for s in plan.services)])
    secret_data: dict[str, str] = {"script": script}
    items: list[dict[str, object]] = [{"key": "script", "path": "script", "mode": _SCRIPT_MODE}]
    script_path = f"{paths.temp_dir}/{SCRIPT_NAME}"
    secret_mounts: list[dict[str, object]] = [
        {"name": "job-secret", "mountPath": script_path, "subPath": "script", "readOnly": True}
    ]
    for key, content in files.items():
        if not _FILE_KEY.fullmatch(key):
            raise ContainerError(f"{where}: file variable {key!r} is not a valid variable key")
        secret_data[f"file.{key}"] = content
        items.append({"key": f"file.{key}", "path": f"file.{key}", "mode": _FILE_MODE})
        secret_mounts.append(
            {"name": "job-secret", "mountPath": file_paths[key], "subPath": f"file.{key}", "readOnly": True}
        )
    workspace = {"name": "workspace", "mountPath": paths.builds_dir}
    resources = _resources(plan)  # checked once, then a copy per container: no shared dicts

    build: dict[str, object] = {
        "name": "build",
        "image": plan.job.image,
        "imagePullPolicy": _pull_policy(plan.job),
        **_build_command(plan.job, paths.project_dir, script_path),
        "env": env.entries("build", job_environment),
        "volumeMounts": [workspace, *secret_mounts],
        "securityContext": _security_context(plan, plan.job, f"{where}: image"),
    }
    if resources:
        build["resources"] = _resources(plan)
    containers = [build]
    for index, service in enumerate(plan.services):
        service_where = f"{where}: services:{index}"
        container: dict[str, object] = {
            "name": f"svc-{index}",
            "image": service.image,
            "imagePullPolicy": _pull_policy(service),
            **_service_command(service, service_where),
            "env": env.entries(f"svc-{index}", service.environment),
            "volumeMounts": [dict(workspace)],
            "securityContext": _security_context(plan, service, service_where),
        }
        if resources:
            container["resources"] = _resources(plan)
        containers.append(container)

    spec: dict[str, object] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "containers": containers,
        "volumes": [
            {"name": "workspace", "emptyDir": {}},
            {"name": "job-secret", "secret": {"secretName": secret_name, "defaultMode": _FILE_MODE, "items": items}},
        ],
    }
    aliases = _host_aliases(plan, where)
    if aliases:
        spec["hostAliases"] = aliases
    node_selector = _platform(plan, where)
    if node_selector:
        spec["nodeSelector"] = node_selector
    if timeout_seconds is not None:
        spec["activeDeadlineSeconds"] = int(timeout_seconds)
    job_user = _user(plan.job, f"{where}: image")
    if job_user:
        # Secret files are root's; fsGroup gives the job's group read access to them.
        spec["securityContext"] = {"fsGroup": job_user.get("runAsGroup", job_user["runAsUser"])}

    metadata = {"name": pod_name, "namespace": namespace, "labels": all_labels}
    pod: dict[str, object] = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}
    _refuse_masked(pod, env.masked_values, where)
    secret_data.update(env.data)
    secret: dict[str, object] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": secret_name, "namespace": namespace, "labels": dict(all_labels)},
        "type": "Opaque",
        "immutable": True,
        "data": {key: _b64(value) for key, value in secret_data.items()},
    }
    return PodManifests(pod=pod, secret=secret)
