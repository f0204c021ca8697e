"""GitLab's ``secrets:`` keyword for HashiCorp Vault / OpenBao KV v2: parsing and resolution.

Short form, split as GitLab does (``rpartition('@')`` for the engine mount, default ``kv-v2``,
then ``rpartition('/')`` for the field)::

    DATABASE_PASSWORD:
      vault: production/db/password@ops      # mount ops, path production/db, field password

Long form (``engine`` is required, as in GitLab)::

    DATABASE_PASSWORD:
      vault: {engine: {name: kv-v2, path: ops}, path: production/db, field: password}
      file: false                            # default true: a file-type variable
      token: $VAULT_ID_TOKEN                 # an id_tokens variable; recorded for JWT login

Resolved secrets are masked and raw, as gitlab-runner creates them, and belong to
``Layer.SECRETS``, which nothing a user defines overrides. Only the ``kv-v2`` engine is
supported. Errors (``SecretsError`` for the keyword, ``VaultError`` for a missing field) name the
job, the secret, the mount, path and field; never a value.
Nothing here imports Airflow.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import cast

from airflow_ci_vars.errors import CIVarsError, VariableValidationError, VaultError
from airflow_ci_vars.variables.keys import validate_key
from airflow_ci_vars.variables.model import ENV_VAR, FILE, Layer, Variable, VariableSource

__all__ = [
    "DEFAULT_MOUNT",
    "SUPPORTED_ENGINES",
    "SecretSpec",
    "SecretsError",
    "parse_secrets",
    "resolve_secrets",
]

DEFAULT_MOUNT = "kv-v2"
"""GitLab's engine path when the short form has no ``@mount``."""
SUPPORTED_ENGINES: tuple[str, ...] = ("kv-v2",)
_SECRET_KEYS = ("vault", "file", "token")
_VAULT_KEYS = ("engine", "path", "field")
_ENGINE_KEYS = ("name", "path")
# Other providers of GitLab's `secrets:` keyword: recognised, to say they are not supported.
_OTHER_PROVIDERS = (
    "azure_key_vault",
    "gcp_secret_manager",
    "aws_secrets_manager",
    "akeyless",
    "gitlab_secrets_manager",
)
_TOKEN_RE = re.compile(r"\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\})", re.ASCII)

ReadSecret = Callable[[str, str], Mapping[str, object]]
"""``read(mount, path)``: the key/value data of one KV v2 secret."""


class SecretsError(CIVarsError, ValueError):
    """A ``secrets:`` entry is invalid. Never holds a value.

    ``problems`` lists every problem found (``message`` joins them, one per line).
    """

    def __init__(
        self,
        message: str,
        *,
        job: str | None = None,
        name: str | None = None,
        problems: Iterable[str] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.job = job
        self.name = name
        self.problems = tuple(problems) or (message,)


@dataclass(frozen=True, slots=True)
class SecretSpec:
    """One ``secrets:`` entry: variable ``name`` from ``field`` of the KV v2 secret ``mount``/``path``."""

    name: str
    mount: str
    path: str
    field: str
    engine: str = "kv-v2"
    file: bool = True
    token_variable: str | None = None

    @property
    def location(self) -> str:
        """``<path>/<field>@<mount>``, the short form (no value)."""
        return f"{self.path}/{self.field}@{self.mount}"


def _where(job: str, name: str) -> str:
    return f"jobs:{job}:secrets:{name}" if job else f"secrets:{name}"


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a hash"
    if isinstance(value, (list, tuple)):
        return "an array"
    return type(value).__name__


class _SecretParser:
    """Collects every problem of one job's ``secrets:``, each located as GitLab does."""

    def __init__(self, job: str) -> None:
        self.job = job
        self.problems: list[str] = []
        self.first_name: str | None = None

    def error(self, name: str, suffix: str, message: str) -> None:
        self.first_name = self.first_name or name
        self.problems.append(f"{_where(self.job, name)}{suffix} {message}")

    def unknown(self, name: str, suffix: str, config: Mapping[object, object], allowed: tuple[str, ...]) -> None:
        extra = [str(k) for k in config if k not in allowed]
        if extra:
            self.error(
                name, suffix, f"config contains unknown keys: {', '.join(extra)} (allowed: {', '.join(allowed)})"
            )

    def missing(self, name: str, suffix: str, config: Mapping[object, object], required: tuple[str, ...]) -> None:
        absent = [k for k in required if k not in config]
        if absent:
            self.error(name, suffix, f"config missing required keys: {', '.join(absent)}")

    def text(self, name: str, suffix: str, what: str, value: object) -> str | None:
        """A non-empty string without surrounding slashes (mount, path, field)."""
        if not isinstance(value, str):
            self.error(name, suffix, f"{what} should be a string, not {_type_name(value)}")
            return None
        cleaned = value.strip("/") if what != "field" else value
        if not cleaned.strip():
            self.error(name, suffix, f"{what} can't be blank")
            return None
        return cleaned

    def spec(self, name: str, config: object) -> SecretSpec | None:
        if not isinstance(config, Mapping):
            self.error(name, "", f"config should be a hash, not {_type_name(config)}")
            return None
        providers = [p for p in _OTHER_PROVIDERS if p in config]
        if providers:
            self.error(name, "", f"uses {', '.join(providers)}, which is not supported: only vault (KV v2) secrets are")
            return None
        before = len(self.problems)
        self.unknown(name, "", config, _SECRET_KEYS)
        self.missing(name, "", config, ("vault",))
        file = config.get("file", True)
        if not isinstance(file, bool):
            self.error(name, ":file", f"config should be a boolean value, not {_type_name(file)}")
        token = self.token(name, config.get("token"))
        if len(self.problems) > before or not isinstance(file, bool):
            return None
        vault = config["vault"]
        if isinstance(vault, str):
            parts = self.short_form(name, vault)
        elif isinstance(vault, Mapping):
            parts = self.long_form(name, vault)
        else:
            self.error(name, ":vault", f"config should be a hash or a string, not {_type_name(vault)}")
            return None
        if parts is None:
            return None
        mount, path, field = parts
        return SecretSpec(name, mount, path, field, file=file, token_variable=token)

    def token(self, name: str, token: object) -> str | None:
        """The variable named by ``token: $VAR`` (None without a token or after an error)."""
        if token is None:
            return None
        if not isinstance(token, str):
            self.error(name, ":token", f"should be a string, not {_type_name(token)}")
            return None
        match = _TOKEN_RE.fullmatch(token.strip())
        if match is None:
            self.error(name, ":token", "must reference an id_tokens variable, such as $VAULT_ID_TOKEN")
            return None
        return match.group(1) or match.group(2)

    def short_form(self, name: str, vault: str) -> tuple[str, str, str] | None:
        """``path/to/secret/field@mount`` split as GitLab does."""
        if not vault.strip():
            self.error(name, ":vault", "can't be blank")
            return None
        secret, at, mount = vault.rpartition("@")
        if not at:
            secret, mount = vault, DEFAULT_MOUNT
        path, _, field = secret.rpartition("/")
        if not mount.strip("/").strip():
            self.error(name, ":vault", "engine path after '@' can't be blank (path/to/secret/field@mount)")
            return None
        if not field.strip():
            self.error(name, ":vault", "field can't be blank: the last segment names it (path/to/secret/field)")
            return None
        if not path.strip("/").strip():
            self.error(name, ":vault", "path can't be blank: use path/to/secret/field[@mount]")
            return None
        return mount.strip("/"), path.strip("/"), field

    def long_form(self, name: str, vault: Mapping[object, object]) -> tuple[str, str, str] | None:
        """``{engine: {name, path}, path, field}``."""
        before = len(self.problems)
        self.unknown(name, ":vault", vault, _VAULT_KEYS)
        self.missing(name, ":vault", vault, _VAULT_KEYS)
        if len(self.problems) > before:
            return None
        path = self.text(name, ":vault", "path", vault["path"])
        field = self.text(name, ":vault", "field", vault["field"])
        engine = vault["engine"]
        if not isinstance(engine, Mapping):
            self.error(name, ":vault:engine", f"config should be a hash, not {_type_name(engine)}")
            return None
        self.unknown(name, ":vault:engine", engine, _ENGINE_KEYS)
        self.missing(name, ":vault:engine", engine, _ENGINE_KEYS)
        if len(self.problems) > before:
            return None
        engine_name = self.text(name, ":vault:engine", "name", engine["name"])
        mount = self.text(name, ":vault:engine", "path", engine["path"])
        if engine_name is not None and engine_name not in SUPPORTED_ENGINES:
            supported = ", ".join(SUPPORTED_ENGINES)
            self.error(name, ":vault:engine", f"name '{engine_name}' is not supported (supported engines: {supported})")
        if path is None or field is None or mount is None or engine_name not in SUPPORTED_ENGINES:
            return None
        return mount, path, field


def parse_secrets(secrets: Mapping[str, object], *, job: str = "") -> tuple[SecretSpec, ...]:
    """Parse a job's ``secrets:`` mapping into specs, in order.

    Raises ``SecretsError`` listing every problem, each located as
    ``jobs:<job>:secrets:<NAME>[:vault[:engine]]``. Secret names follow GitLab's variable key
    rules (letters, digits, ``_``).
    """
    parser = _SecretParser(job)
    if not isinstance(cast(object, secrets), Mapping):  # YAML data: check at run time
        where = f"jobs:{job}:secrets" if job else "secrets"
        raise SecretsError(f"{where} config should be a hash, not {_type_name(secrets)}", job=job or None)
    specs: list[SecretSpec] = []
    for raw_name, config in secrets.items():
        name = str(raw_name)
        try:
            validate_key(name)
        except VariableValidationError as exc:
            parser.error(name, "", f"is not a valid variable name: {exc.message}")
            continue
        spec = parser.spec(name, config)
        if spec is not None:
            specs.append(spec)
    if parser.problems:
        raise SecretsError(
            "\n".join(parser.problems), job=job or None, name=parser.first_name, problems=parser.problems
        )
    return tuple(specs)


def resolve_secrets(specs: Iterable[SecretSpec], read: ReadSecret, *, job: str = "") -> list[Variable]:
    """Read the secrets, each distinct (mount, path) once, into masked raw variables.

    ``read(mount, path)`` returns a KV v2 secret's data. A field's string value is used as is;
    any other value is JSON-encoded (compact). Variables are file-type unless ``file: false``,
    with source ``secrets vault:<path>/<field>@<mount>``. A missing field raises ``VaultError``
    (as ``VaultStore.secret_field`` does) naming mount, path and field, plus the job and secret.
    The reader's own errors (a missing secret, an outage) propagate unchanged.
    """
    cache: dict[tuple[str, str], Mapping[str, object]] = {}
    out: list[Variable] = []
    for spec in specs:
        ident = (spec.mount, spec.path)
        data = cache.get(ident)
        if data is None:
            data = cache[ident] = read(spec.mount, spec.path)
        where = _where(job, spec.name)
        if spec.field not in data:
            raise VaultError(
                f"field not found in the secret ({where})", mount=spec.mount, path=spec.path, field=spec.field
            )
        value = data[spec.field]
        if isinstance(value, str):
            text = value
        else:
            try:
                text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
            except (TypeError, ValueError):
                raise VaultError(
                    f"the field holds {type(value).__name__}, which cannot be turned into text ({where})",
                    mount=spec.mount,
                    path=spec.path,
                    field=spec.field,
                ) from None
        out.append(
            Variable(
                spec.name,
                text,
                variable_type=FILE if spec.file else ENV_VAR,
                masked=True,
                raw=True,
                source=VariableSource(Layer.SECRETS, f"vault:{spec.location}"),
            )
        )
    return out
