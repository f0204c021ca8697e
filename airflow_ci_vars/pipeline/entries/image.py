"""``image`` and ``services``. R: ``config/entry/image.rb``, ``entry/imageable.rb``,
``entry/service.rb``, ``entry/services.rb``, ``entry/pull_policy.rb``.

Both keep GitLab's shapes: a string is ``{name: STRING}``; a hash has ``name`` (required),
``entrypoint`` (array of strings) and ``pull_policy`` (one of ``always``, ``never``,
``if-not-present``, or an array of them); an image also takes ``docker: {platform, user}``, a
service ``alias``, ``command`` and ``variables``. Names are kept as written: the runner expands
them with the job's variables when the job starts (``airflow_ci_vars.containers.plan``).
``default:`` and ``inherit:default`` reach a job through the config (``pipeline.config``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from airflow_ci_vars.errors import JobConfigError

__all__ = ["PULL_POLICIES", "ImageSpec", "ServiceSpec", "parse_image", "parse_services"]

PULL_POLICIES = ("always", "never", "if-not-present")
"""``pull_policy`` values (R: ``entry/pull_policy.rb``)."""

_IMAGE_KEYS = ("name", "entrypoint", "ports", "pull_policy", "docker", "kubernetes")
_SERVICE_KEYS = (
    "name",
    "entrypoint",
    "command",
    "alias",
    "ports",
    "variables",
    "pull_policy",
    "docker",
    "kubernetes",
)
_DOCKER_KEYS = ("platform", "user")


@dataclass(frozen=True, slots=True)
class ImageSpec:
    """A job's ``image:`` as written (``name`` not yet expanded).

    ``entrypoint`` None keeps the image's own; ``()`` (``entrypoint: [""]`` in YAML gives
    ``("",)``) overrides it. ``pull_policy`` is empty when the job names none.
    """

    name: str
    entrypoint: tuple[str, ...] | None = None
    pull_policy: tuple[str, ...] = ()
    user: str | None = None
    platform: str | None = None


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """One entry of ``services:`` as written: the image, its ``alias`` (a comma or space
    separated list), ``entrypoint``/``command`` overrides and its own ``variables``."""

    name: str
    alias: str | None = None
    entrypoint: tuple[str, ...] | None = None
    command: tuple[str, ...] | None = None
    variables: tuple[tuple[str, str], ...] = ()
    pull_policy: tuple[str, ...] = ()
    user: str | None = None
    platform: str | None = None

    @property
    def aliases(self) -> tuple[str, ...]:
        """The ``alias`` entries (GitLab splits on commas and spaces)."""
        return tuple(self.alias.replace(",", " ").split()) if self.alias else ()


def _error(name: str, where: str, message: str, key: str) -> JobConfigError:
    return JobConfigError(f"jobs:{name}:{where} {message}", job=name, key=key)


def _strings(name: str, where: str, field: str, value: object, key: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _error(name, where, f"{field} should be an array of strings", key)
    return tuple(value)


def _pull_policy(name: str, where: str, value: object, key: str) -> tuple[str, ...]:
    """R: ``entry/pull_policy.rb`` (a string or an array of strings, each one of :data:`PULL_POLICIES`)."""
    if value is None:
        return ()
    if isinstance(value, str):
        if value not in PULL_POLICIES:
            raise _error(name, f"{where}:pull_policy", "config is not included in the list", key)
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _error(name, f"{where}:pull_policy", "config should be an array of strings or a string", key)
    if not value:
        raise _error(name, f"{where}:pull_policy", "config can't be blank", key)
    unknown = [v for v in value if v not in PULL_POLICIES]
    if unknown:
        raise _error(name, f"{where}:pull_policy", f"config contains unknown values: {', '.join(unknown)}", key)
    return tuple(dict.fromkeys(value))


def _docker(name: str, where: str, value: object, key: str) -> tuple[str | None, str | None]:
    if value is None:
        return None, None
    if not isinstance(value, Mapping):
        raise _error(name, where, "docker config should be a hash", key)
    unknown = sorted(str(k) for k in value if k not in _DOCKER_KEYS)
    if unknown:
        raise _error(name, where, f"docker config contains unknown keys: {', '.join(unknown)}", key)
    out: list[str | None] = []
    for field in _DOCKER_KEYS:
        given = value.get(field)
        if given is not None and not isinstance(given, str):
            raise _error(name, where, f"docker {field} should be a string", key)
        out.append(given)
    platform, user = out
    return user, platform


def _common(name: str, where: str, value: object, allowed: tuple[str, ...], key: str) -> Mapping[str, object]:
    """``value`` as a hash (a string is its name), with GitLab's shape checks."""
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, Mapping):
        raise _error(name, where, "config should be a hash or a string", key)
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise _error(name, where, f"config contains unknown keys: {', '.join(unknown)}", key)
    if "ports" in value:
        raise _error(name, where, "config contains disallowed keys: ports", key)
    given = value.get("name")
    if not isinstance(given, str) or not given.strip():
        raise _error(name, where, "name can't be blank" if not given else "name should be a string", key)
    return value


def parse_image(name: str, value: object) -> ImageSpec | None:
    """Job ``name``'s ``image:`` (None without the keyword)."""
    if value is None:
        return None
    entry = _common(name, "image", value, _IMAGE_KEYS, "image")
    user, platform = _docker(name, "image", entry.get("docker"), "image")
    return ImageSpec(
        name=str(entry["name"]),
        entrypoint=_strings(name, "image", "entrypoint", entry.get("entrypoint"), "image"),
        pull_policy=_pull_policy(name, "image", entry.get("pull_policy"), "image"),
        user=user,
        platform=platform,
    )


def _service_variables(name: str, where: str, value: object) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise _error(name, where, "variables config should be a hash of key value pairs", "services")
    out: list[tuple[str, str]] = []
    for key, given in value.items():
        if isinstance(given, Mapping):
            given = given.get("value", "")
        if isinstance(given, (list, Mapping)):
            raise _error(name, where, "variables config should be a hash of key value pairs", "services")
        text = "" if given is None else ("true" if given is True else "false" if given is False else str(given))
        out.append((str(key), text))
    return tuple(out)


def parse_services(name: str, value: object) -> tuple[ServiceSpec, ...]:
    """Job ``name``'s ``services:`` (empty without the keyword)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _error(name, "services", "config should be a array", "services")
    found: list[ServiceSpec] = []
    for index, item in enumerate(value):
        where = f"services:service[{index}]" if len(value) > 1 else "services:service"
        entry = _common(name, where, item, _SERVICE_KEYS, "services")
        alias = entry.get("alias")
        if alias is not None and not isinstance(alias, str):
            raise _error(name, where, "alias should be a string", "services")
        user, platform = _docker(name, where, entry.get("docker"), "services")
        found.append(
            ServiceSpec(
                name=str(entry["name"]),
                alias=alias,
                entrypoint=_strings(name, where, "entrypoint", entry.get("entrypoint"), "services"),
                command=_strings(name, where, "command", entry.get("command"), "services"),
                variables=_service_variables(name, where, entry.get("variables")),
                pull_policy=_pull_policy(name, where, entry.get("pull_policy"), "services"),
                user=user,
                platform=platform,
            )
        )
    return tuple(found)
