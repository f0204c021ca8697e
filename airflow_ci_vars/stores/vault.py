"""Vault (or OpenBao) KV v2 as the variable store, and the reads behind the ``secrets:`` keyword.

Layout in a KV v2 mount (default ``ci``), one secret per stored layer, in the settings file's shape::

    instance                      {"variables": [{"key": "K", "value": "v", "masked": false, ...}]}
    groups/<full/group/path>      {"variables": [...]}
    projects/<full/project/path>  {"variables": [...], "default_branch": "main", "protected_refs": ["main"], ...}

Costs and resilience:

- One authenticated client per process and configuration (url + auth + transport settings), built
  by the hashicorp provider's ``_VaultClient`` (its auth types, its login code). Vault answering 403
  means one new login and one retry; 5xx answers, connection errors and timeouts are retried with
  exponential backoff (``RetryPolicy``), then fail with ``VaultError`` naming mount, path and field.
- A ``VaultStore`` reads each secret at most once (``load`` costs one request per existing or
  missing layer; ``read_secret`` one per distinct path). With ``cache_ttl`` > 0, reads are also
  shared for that many seconds by every store of the same configuration in the process.
- Records read from Vault are checked like the settings file, with the same save rules
  (``variables.validation``, whose JSON adapter reads them); errors name the mount, path and key,
  never a value.

Importing this module imports hvac, not Airflow: the provider's client module (which imports
Airflow) is loaded at the first request.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from hvac import exceptions as hvac_errors  # type: ignore[import-untyped]

from airflow_ci_vars.errors import SettingsError, VaultError
from airflow_ci_vars.permissions.access import ACCESS_FIELDS, ProjectAccess, access_document, parse_access
from airflow_ci_vars.settings import Settings
from airflow_ci_vars.stores.base import LayerRef
from airflow_ci_vars.variables.keys import ruby_strip
from airflow_ci_vars.variables.model import Variable, VariableSource
from airflow_ci_vars.variables.resolve import group_chain
from airflow_ci_vars.variables.validation import (
    check_save,
    json_raw,
    layer_limit_problem,
    read_variable,
    record_identity,
    unique_in_layer,
    variable_label,
)

__all__ = [
    "BACKEND_ONLY_KEYS",
    "CI_OPTION_KEYS",
    "DEFAULT_MOUNT_POINT",
    "RetryPolicy",
    "VaultConnection",
    "VaultRecordError",
    "VaultStore",
    "clear_vault_cache",
    "reset_vault_clients",
    "split_backend_kwargs",
    "vault_connection",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_MOUNT_POINT = "ci"
# ``VaultBackend`` keys that only concern Airflow's own lookups (not the CI store's client).
BACKEND_ONLY_KEYS = frozenset(
    {
        "connections_path",
        "variables_path",
        "config_path",
        "use_team_secrets_path",
        "global_secrets_path",
        "mount_point",
        "kv_engine_version",
    }
)
CI_OPTION_KEYS = ("ci_mount_point", "ci_cache_ttl", "ci_retry_attempts", "ci_retry_delay", "ci_retry_max_delay")
# Credentials among the client keyword arguments: hashed into the registry key, scrubbed from errors.
_CREDENTIAL_KEYS = ("token", "secret_id", "password", "jwt_token", "radius_secret", "key_id")
_RETRYABLE: tuple[type[BaseException], ...] = (
    hvac_errors.InternalServerError,
    hvac_errors.VaultDown,
    hvac_errors.BadGateway,
    hvac_errors.UnexpectedError,
    hvac_errors.RateLimitExceeded,
    hvac_errors.PreconditionFailed,
    requests.ConnectionError,
    requests.Timeout,
)
_CAS_ATTEMPTS = 5
_SEGMENT_RE = re.compile(r"[A-Za-z0-9_.-]+", re.ASCII)
_LAYER_KEYS = {
    "instance": ("variables",),
    "group": ("variables",),
    "project": ("variables", *ACCESS_FIELDS),
}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of 5xx answers, connection errors and timeouts: ``attempts`` tries in all, waiting
    ``delay`` seconds after the first failure, doubling each time up to ``max_delay``."""

    attempts: int = 5
    delay: float = 0.2
    max_delay: float = 5.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.delay < 0 or self.max_delay < 0:
            raise ValueError("RetryPolicy needs attempts >= 1 and non-negative delays")

    def backoff(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failed attempt (1-based)."""
        return float(min(self.delay * 2 ** (failures - 1), self.max_delay))


# -- the process-wide client registry ----------------------------------------------------------


class VaultConnection:
    """One authenticated hvac client for one configuration, shared by the whole process.

    The login is done by the hashicorp provider's ``_VaultClient`` on first use. ``run`` wraps
    each request: one new login and one retry on 403, backoff retries on 5xx and connection
    errors, and ``VaultError`` (naming mount, path and field, never a value) when it gives up.
    """

    def __init__(self, key: str, client_kwargs: Mapping[str, Any]) -> None:
        self.key = key
        self.url = str(client_kwargs.get("url") or os.environ.get("VAULT_ADDR") or "")
        self.auth_type = str(client_kwargs.get("auth_type") or "token")
        self._kwargs = dict(client_kwargs)
        self._credentials = tuple(
            str(value)
            for name in _CREDENTIAL_KEYS
            if (value := client_kwargs.get(name)) is not None and len(str(value)) >= 4
        )
        self._lock = threading.RLock()
        self._vault_client: Any = None
        self._client: Any = None
        self._generation = 0
        self.logins = 0

    def __repr__(self) -> str:  # never the token
        return f"VaultConnection(url={self.url!r}, auth_type={self.auth_type!r})"

    def _new_vault_client(self) -> Any:
        from airflow.providers.hashicorp._internal_client.vault_client import _VaultClient

        session = requests.Session()  # no urllib3 retries: ``run`` retries, with backoff
        for name in ("verify", "cert", "proxies"):
            if self._kwargs.get(name) is not None:
                setattr(session, name, self._kwargs[name])
        try:
            return _VaultClient(**{**self._kwargs, "session": session})
        except hvac_errors.VaultError as exc:
            raise VaultError(f"invalid Vault configuration: {self.scrub(str(exc.args[0]))}") from None

    def client(self) -> tuple[Any, int]:
        """The authenticated ``hvac.Client`` (logging in if needed) and its login generation."""
        with self._lock:
            if self._client is None:
                if self._vault_client is None:
                    self._vault_client = self._new_vault_client()
                self._client = self._vault_client.client
                self.logins += 1
                log.debug("Logged in to Vault at %s (auth type %s)", self.url, self.auth_type)
            return self._client, self._generation

    def invalidate(self, generation: int | None = None) -> None:
        """Drop the client of ``generation`` (default: the current one); the next request logs in."""
        with self._lock:
            if generation in (None, self._generation) and self._client is not None:
                self._vault_client._invalidate_client()
                self._client = None
                self._generation += 1

    def scrub(self, text: str) -> str:
        """``text`` without any configured credential."""
        for secret in self._credentials:
            text = text.replace(secret, "***")
        return text

    def run(
        self,
        operation: Callable[[Any], T],
        *,
        retry: RetryPolicy,
        mount: str | None = None,
        path: str | None = None,
        field: str | None = None,
        passthrough: tuple[type[BaseException], ...] = (hvac_errors.InvalidPath,),
    ) -> T:
        """Run one request with re-login on 403 and retries; exceptions in ``passthrough`` propagate."""
        relogged = False
        failures = 0
        while True:
            phase = "login"
            try:
                client, generation = self.client()
                phase = "request"
                return operation(client)
            except Exception as exc:
                if phase == "request" and isinstance(exc, passthrough):
                    raise
                if isinstance(exc, VaultError):  # a configuration error found before the login
                    raise VaultError(exc.message, mount=mount, path=path, field=field) from None
                if isinstance(exc, hvac_errors.Forbidden):
                    if phase == "request" and not relogged:
                        relogged = True
                        log.info("Vault refused the token for %s/%s: logging in again, retrying once", mount, path)
                        self.invalidate(generation)
                        continue
                    what = "permission denied after logging in again" if relogged else f"{self.auth_type} login refused"
                    raise VaultError(f"{what} ({self.reason(exc)})", mount=mount, path=path, field=field) from None
                if isinstance(exc, _RETRYABLE):
                    failures += 1
                    if failures >= retry.attempts:
                        raise VaultError(
                            f"Vault unavailable after {failures} attempts ({self.reason(exc)})",
                            mount=mount,
                            path=path,
                            field=field,
                        ) from None
                    delay = retry.backoff(failures)
                    log.warning(
                        "Vault %s for %s/%s failed (%s), attempt %d of %d; retrying in %.2fs",
                        phase,
                        mount,
                        path,
                        type(exc).__name__,
                        failures,
                        retry.attempts,
                        delay,
                    )
                    time.sleep(delay)
                    continue
                if isinstance(exc, hvac_errors.VaultError):
                    what = f"{self.auth_type} login failed" if phase == "login" else "request failed"
                    raise VaultError(f"{what} ({self.reason(exc)})", mount=mount, path=path, field=field) from None
                raise

    def reason(self, exc: BaseException) -> str:
        """The error class and Vault's own message (never a response body), credentials scrubbed."""
        if isinstance(exc, hvac_errors.VaultError):
            detail = str(exc.args[0]) if exc.args and exc.args[0] else ""
        else:
            detail = str(exc)
        detail = self.scrub(detail)
        if len(detail) > 300:
            detail = detail[:300] + "..."
        return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


_REGISTRY: dict[str, VaultConnection] = {}
_REGISTRY_LOCK = threading.Lock()
_CACHE: dict[tuple[str, str, str], tuple[float, dict[str, Any] | None]] = {}
_CACHE_LOCK = threading.Lock()


def _config_key(client_kwargs: Mapping[str, Any]) -> str:
    """A digest of url, auth and transport settings (credentials are only hashed, never kept)."""
    material = dict(client_kwargs)
    if material.get("auth_type", "token") == "token" and not material.get("token") and not material.get("token_path"):
        material["token"] = os.environ.get("VAULT_TOKEN")
    text = json.dumps(material, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def vault_connection(client_kwargs: Mapping[str, Any]) -> VaultConnection:
    """The process-wide connection for these ``_VaultClient`` keyword arguments."""
    key = _config_key(client_kwargs)
    with _REGISTRY_LOCK:
        connection = _REGISTRY.get(key)
        if connection is None:
            connection = _REGISTRY[key] = VaultConnection(key, client_kwargs)
        return connection


def clear_vault_cache() -> None:
    """Forget every read shared through the TTL cache."""
    with _CACHE_LOCK:
        _CACHE.clear()


def reset_vault_clients() -> None:
    """Forget every authenticated client (the next request logs in again) and the TTL cache."""
    with _REGISTRY_LOCK:
        _REGISTRY.clear()
    clear_vault_cache()


def _after_fork() -> None:
    # A forked child must not share the parent's sockets or inherit a held lock.
    global _REGISTRY_LOCK, _CACHE_LOCK
    _REGISTRY_LOCK = threading.Lock()
    _CACHE_LOCK = threading.Lock()
    _REGISTRY.clear()


os.register_at_fork(after_in_child=_after_fork)


def split_backend_kwargs(kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``backend_kwargs`` into ``VaultBackend``'s keywords and the ``ci_*`` options."""
    backend = {k: v for k, v in kwargs.items() if not k.startswith("ci_")}
    ci = {k: v for k, v in kwargs.items() if k.startswith("ci_")}
    unknown = sorted(set(ci) - set(CI_OPTION_KEYS))
    if unknown:
        raise ValueError(f"unknown backend_kwargs {', '.join(unknown)} (known: {', '.join(CI_OPTION_KEYS)})")
    return backend, ci


# -- records ------------------------------------------------------------------------------------


class VaultRecordError(SettingsError):
    """Records stored in Vault are invalid. ``file`` is ``vault:MOUNT/PATH``; ``mount`` and ``path``
    locate the secret, ``key`` and ``field`` the record. Never holds a value."""

    def __init__(self, message: str, *, mount: str, path: str, **kwargs: Any) -> None:
        self.mount = mount
        self.path = path
        super().__init__(message, file=f"vault:{mount}/{path}", **kwargs)


class _Records:
    """Checks the records of one secret, collecting every problem (as the settings parser does)."""

    def __init__(self, mount: str, path: str) -> None:
        self.mount = mount
        self.path = path
        self.problems: list[VaultRecordError] = []

    def error(self, message: str, *, key: str | None = None, field: str | None = None) -> None:
        self.problems.append(VaultRecordError(message, mount=self.mount, path=self.path, key=key, field=field))

    def raise_problems(self) -> None:
        if not self.problems:
            return
        first = self.problems[0]
        message = "\n".join([first.message, *(str(e) for e in self.problems[1:])])
        raise VaultRecordError(
            message,
            mount=self.mount,
            path=self.path,
            key=first.key,
            field=first.field,
            errors=self.problems if len(self.problems) > 1 else (),
        )

    def document(self, data: object, kind: str) -> dict[str, Any]:
        """The secret's data as a mapping with only the keys of its layer kind."""
        if not isinstance(data, Mapping):
            self.error("the secret must be a mapping with a 'variables' list")
            return {}
        allowed = _LAYER_KEYS[kind]
        for name in data:
            if name not in allowed:
                self.error(f"unknown key '{name}' (allowed: {', '.join(allowed)})", key=str(name))
        return {k: v for k, v in data.items() if k in allowed}

    def raw_variables(self, doc: Mapping[str, Any]) -> list[Any]:
        found = doc.get("variables")
        if found is None:
            return []
        if not isinstance(found, list):
            self.error("'variables' must be a list of variables", field="variables")
            return []
        return found

    def layer(self, doc: Mapping[str, Any], source: VariableSource) -> tuple[Variable, ...]:
        """The layer's records, each read with the save rules (the JSON adapter of ``read_variable``)."""
        items = self.raw_variables(doc)
        if problem := layer_limit_problem(source.layer, len(items)):
            self.error(problem, field="variables")

        def duplicate(variable: Variable, message: str, where: int, first: int) -> None:
            self.error(f"{variable_label('', variable.key, where)}: {message}", key=variable.key, field="key")

        read = ((self.variable(item, source, index), index) for index, item in enumerate(items, start=1))
        return unique_in_layer(((v, index) for v, index in read if v is not None), duplicate)

    def variable(self, item: object, source: VariableSource, index: int) -> Variable | None:
        if not isinstance(item, Mapping):
            self.error(f"variable #{index} must be a mapping")
            return None
        fields = {str(name): json_raw(value) for name, value in item.items()}
        variable, problems = read_variable(fields, source=source, where="", index=index)
        for problem in problems:
            self.error(str(problem), key=problem.key, field=problem.field)
        return variable

    def access(self, doc: Mapping[str, Any]) -> ProjectAccess:
        """The project's access settings (``permissions.access``, the settings file's rules)."""

        def report(message: str, path: tuple[str | int, ...]) -> None:
            self.error(message, key=str(path[0]) if path else None)

        return parse_access(doc, report)


def _record(variable: Variable) -> dict[str, Any]:
    """A variable as stored (the settings file's fields, every flag written out)."""
    record: dict[str, Any] = {
        "key": variable.key,
        "value": variable.value,
        "variable_type": variable.variable_type,
        "masked": variable.masked,
        "hidden": variable.hidden,
        "protected": variable.protected,
        "raw": variable.raw,
        "environment_scope": variable.environment_scope,
    }
    if variable.description is not None:
        record["description"] = variable.description
    return record


def _clean_path(path: str, what: str) -> str:
    """A secret path of ``[A-Za-z0-9_.-]`` segments (no ``.`` or ``..``), slashes trimmed."""
    text = path.strip().strip("/")
    segments = text.split("/")
    if not text or any(not _SEGMENT_RE.fullmatch(s) or s in (".", "..") for s in segments):
        raise VaultError(f"invalid {what} {path!r}: use segments of letters, digits, '_', '-' and '.'")
    return text


def _layer_path(ref: LayerRef) -> str:
    if ref.kind == "instance":
        return "instance"
    if ref.path is None:
        raise VaultError(f"layer {ref.kind} needs a path")
    return f"{ref.kind}s/{_clean_path(ref.path, f'{ref.kind} path')}"


def _source(ref: LayerRef) -> VariableSource:
    return VariableSource(ref.layer, ref.path.strip("/") if ref.path else None)


# -- the store ----------------------------------------------------------------------------------


class VaultStore:
    """The variable store in a Vault KV v2 mount (see the module docstring for the layout).

    ``client_kwargs`` are the hashicorp provider's ``_VaultClient`` keywords (``url``,
    ``auth_type``, ``token``, ``role_id``, ``secret_id``, ``jwt_role``, ``jwt_token``, ...,
    ``verify``, ``timeout``, ``namespace``). A store is meant to live for one task attempt or one
    CLI command: it reads each secret at most once and remembers its own writes.
    """

    def __init__(
        self,
        *,
        mount_point: str = DEFAULT_MOUNT_POINT,
        cache_ttl: float = 0.0,
        retry: RetryPolicy | None = None,
        **client_kwargs: Any,
    ) -> None:
        self.mount_point = _clean_path(mount_point, "mount point")
        self.cache_ttl = float(cache_ttl)
        if self.cache_ttl < 0:
            raise ValueError("cache_ttl must be >= 0")
        self.retry = retry or RetryPolicy()
        self.connection = vault_connection(client_kwargs)
        self._memo: dict[tuple[str, str], dict[str, Any] | None] = {}

    def __repr__(self) -> str:
        return f"VaultStore(mount_point={self.mount_point!r}, connection={self.connection!r})"

    @classmethod
    def from_backend_kwargs(cls, kwargs: Mapping[str, Any]) -> VaultStore:
        """A store from ``[secrets] backend_kwargs``: ``VaultBackend``'s keys plus ``ci_mount_point``
        (default ``ci``), ``ci_cache_ttl`` (seconds, default 0 = off) and ``ci_retry_attempts``,
        ``ci_retry_delay``, ``ci_retry_max_delay``. Airflow's own paths and mount are ignored."""
        backend, ci = split_backend_kwargs(kwargs)
        client_kwargs = {k: v for k, v in backend.items() if k not in BACKEND_ONLY_KEYS}
        default = RetryPolicy()
        retry = RetryPolicy(
            attempts=int(ci.get("ci_retry_attempts", default.attempts)),
            delay=float(ci.get("ci_retry_delay", default.delay)),
            max_delay=float(ci.get("ci_retry_max_delay", default.max_delay)),
        )
        return cls(
            mount_point=str(ci.get("ci_mount_point") or DEFAULT_MOUNT_POINT),
            cache_ttl=float(ci.get("ci_cache_ttl") or 0),
            retry=retry,
            **client_kwargs,
        )

    # -- reads --------------------------------------------------------------------------------

    def _fetch(self, mount: str, path: str) -> tuple[dict[str, Any] | None, int]:
        """One KV v2 read: the data (None when missing or deleted) and the current version (0: none)."""

        def read(client: Any) -> Any:
            return client.secrets.kv.v2.read_secret_version(
                path=path, mount_point=mount, raise_on_deleted_version=False
            )

        try:
            response = self.connection.run(read, retry=self.retry, mount=mount, path=path)
        except hvac_errors.InvalidPath:
            return None, 0
        body = response.get("data") if isinstance(response, Mapping) else None
        if not isinstance(body, Mapping):
            raise VaultError("unexpected answer: not a KV version 2 secret", mount=mount, path=path)
        metadata = body.get("metadata")
        version = metadata.get("version", 0) if isinstance(metadata, Mapping) else 0
        data = body.get("data")
        if data is None:  # the latest version is deleted
            return None, int(version or 0)
        if not isinstance(data, dict):
            raise VaultError("unexpected answer: not a KV version 2 secret", mount=mount, path=path)
        return data, int(version or 0)

    def _read(self, mount: str, path: str) -> dict[str, Any] | None:
        """A secret's data, read at most once per store (and shared through the TTL cache)."""
        ident = (mount, path)
        if ident in self._memo:
            return self._memo[ident]
        cache_key = (self.connection.key, mount, path)
        if self.cache_ttl > 0:
            with _CACHE_LOCK:
                entry = _CACHE.get(cache_key)
            if entry is not None and entry[0] > time.monotonic():
                self._memo[ident] = entry[1]
                return entry[1]
        data, _ = self._fetch(mount, path)
        if self.cache_ttl > 0:
            with _CACHE_LOCK:
                _CACHE[cache_key] = (time.monotonic() + self.cache_ttl, data)
        self._memo[ident] = data
        return data

    def _remember(self, path: str, data: dict[str, Any]) -> None:
        self._memo[(self.mount_point, path)] = data
        with _CACHE_LOCK:
            _CACHE.pop((self.connection.key, self.mount_point, path), None)

    def read_secret(self, mount: str, path: str) -> dict[str, object]:
        """The KV v2 data at ``mount``/``path`` (for ``secrets:``), read at most once per store.

        Raises ``VaultError`` naming mount and path when the secret does not exist.
        """
        mount = _clean_path(mount, "mount point")
        path = _clean_path(path, "secret path")
        data = self._read(mount, path)
        if data is None:
            raise VaultError("secret not found", mount=mount, path=path)
        return copy.deepcopy(data)

    def secret_field(self, mount: str, path: str, field: str) -> str:
        """One field of a secret as text (non-strings as JSON); ``VaultError`` names a missing field."""
        data = self.read_secret(mount, path)
        if field not in data:
            where = {"mount": _clean_path(mount, "mount point"), "path": _clean_path(path, "secret path")}
            raise VaultError("field not found in the secret", field=field, **where)
        value = data[field]
        return value if isinstance(value, str) else json.dumps(value)

    def _layer(self, ref: LayerRef) -> tuple[tuple[Variable, ...], dict[str, Any] | None, _Records]:
        path = _layer_path(ref)
        data = self._read(self.mount_point, path)
        records = _Records(self.mount_point, path)
        if data is None:
            return (), None, records
        doc = records.document(data, ref.kind)
        variables = records.layer(doc, _source(ref))
        return variables, doc, records

    def list_variables(self, ref: LayerRef) -> tuple[Variable, ...]:
        """The variables stored in one layer (empty when its secret does not exist)."""
        variables, _, records = self._layer(ref)
        records.raise_problems()
        return variables

    def load(self, project: str | None = None) -> Settings:
        """The instance layer, the project's existing groups (root first) and the project.

        One request per layer (instance, each group of the chain, the project), at most once per
        store; a missing secret is an empty layer. Without a project, only the instance layer.
        """
        instance = self.list_variables(LayerRef("instance"))
        if project is None or not project.strip("/"):
            return Settings(instance=instance)
        project = _clean_path(project, "project path")
        groups: dict[str, tuple[Variable, ...]] = {}
        for group in group_chain(project):
            variables, doc, records = self._layer(LayerRef("group", group))
            records.raise_problems()
            if doc is not None:
                groups[group] = variables
        variables, doc, records = self._layer(LayerRef("project", project))
        access = records.access(doc or {})
        records.raise_problems()
        projects = {project: variables} if doc is not None else {}
        return Settings(project, instance, groups, projects, access_defaults=access)

    # -- writes -------------------------------------------------------------------------------

    def _write(self, path: str, data: dict[str, Any], *, cas: int | None) -> bool:
        """Write a secret; False when ``cas`` no longer matches the current version."""

        def write(client: Any) -> Any:
            return client.secrets.kv.v2.create_or_update_secret(
                path=path, secret=data, cas=cas, mount_point=self.mount_point
            )

        try:
            self.connection.run(
                write,
                retry=self.retry,
                mount=self.mount_point,
                path=path,
                passthrough=(hvac_errors.InvalidRequest,),
            )
        except hvac_errors.InvalidRequest as exc:
            if cas is not None and any("check-and-set" in str(e) for e in exc.errors or ()):
                return False
            reason = self.connection.reason(exc)
            raise VaultError(f"write refused ({reason})", mount=self.mount_point, path=path) from None
        self._remember(path, data)
        return True

    def _modify(self, ref: LayerRef, change: Callable[[list[Any]], tuple[T, bool]]) -> T:
        """Read-modify-write of one layer with check-and-set, retried on concurrent updates.

        ``change`` edits the raw records in place and returns its result and whether to write.
        """
        path = _layer_path(ref)
        for _ in range(_CAS_ATTEMPTS):
            data, version = self._fetch(self.mount_point, path)
            records = _Records(self.mount_point, path)
            doc = records.document(data or {}, ref.kind)
            items = list(records.raw_variables(doc))
            records.raise_problems()
            result, changed = change(items)
            if not changed:
                self._memo[(self.mount_point, path)] = data
                return result
            if self._write(path, {**(data or {}), "variables": items}, cas=version):
                return result
        raise VaultError(
            f"gave up after {_CAS_ATTEMPTS} concurrent updates of the secret", mount=self.mount_point, path=path
        )

    def set_variable(self, ref: LayerRef, variable: Variable) -> None:
        """Create or update (same key and environment scope) a variable, checked with the save rules
        (``variables.validation.check_save``), as the settings file is: GitLab's rules on create
        and on update, and the layer's limit. Other records of the layer are kept as stored.
        """
        candidate = dataclasses.replace(variable, source=_source(ref))

        def change(items: list[Any]) -> tuple[None, bool]:
            # The stored records as far as the rules need them (identity, masked, hidden), even invalid ones.
            current = [_stored(item) for item in items]
            checked, index = check_save(candidate, layer=ref.layer, current=current)
            if index is None:
                items.append(_record(checked))
            else:
                items[index] = _record(checked)
            return None, True

        self._modify(ref, change)

    def unset_variable(self, ref: LayerRef, key: str, environment_scope: str = "*") -> bool:
        """Delete the variable ``key`` of ``environment_scope``; False when there was none."""
        ident = (ruby_strip(key), ruby_strip(environment_scope))

        def change(items: list[Any]) -> tuple[bool, bool]:
            kept = [i for i in items if not (isinstance(i, Mapping) and record_identity(i) == ident)]
            found = len(kept) != len(items)
            items[:] = kept
            return found, found

        return self._modify(ref, change)

    def import_settings(self, settings: Settings) -> tuple[str, ...]:
        """Copy every layer of a settings file into the mount; return the secret paths written.

        Each layer's secret is replaced. Each project's access settings (``permissions.access``:
        the file's top-level ones, with the project's own over them) go to its secret, which is
        written for ``settings.project`` even without variables.
        """
        layers: list[tuple[str, Iterable[Variable], dict[str, Any]]] = [("instance", settings.instance, {})]
        layers += [(f"groups/{_clean_path(g, 'group path')}", vs, {}) for g, vs in settings.groups.items()]
        projects: dict[str, Iterable[Variable]] = dict(settings.projects)
        if settings.project is not None:
            projects.setdefault(settings.project, ())
        for project, variables in projects.items():
            path = f"projects/{_clean_path(project, 'project path')}"
            layers.append((path, variables, access_document(settings.access(project))))
        written = []
        for path, variables, extra in layers:
            self._write(path, {"variables": [_record(v) for v in variables], **extra}, cas=None)
            written.append(path)
        return tuple(written)


def _stored(item: object) -> Variable:
    """A stored record (perhaps invalid) as the save rules see the variable it replaces."""
    if not isinstance(item, Mapping):
        return Variable("", "", environment_scope="")  # never the same key and scope as a variable
    key, scope = record_identity(item)
    return Variable(
        key, "", masked=item.get("masked") is True, hidden=item.get("hidden") is True, environment_scope=scope
    )
