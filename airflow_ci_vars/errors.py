"""Typed errors of airflow-ci-vars. Every error says what was wrong and where.

Messages copy GitLab's wording where GitLab has one (quoted in ``docs/variables.md``).
Error texts never contain a variable *value*: only keys, file names, lines and columns.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AccessDeniedError",
    "ArtifactPathError",
    "CIVarsError",
    "ContainerError",
    "DotenvError",
    "EnvironmentSizeError",
    "ExpansionError",
    "IncludeSourceError",
    "IsolationError",
    "JobConfigError",
    "JobFailedError",
    "KeyValidationError",
    "MaskabilityError",
    "ParameterError",
    "PipelineError",
    "RuleSyntaxError",
    "ScriptTimeoutError",
    "SecretInClearTextError",
    "SettingsError",
    "VariableValidationError",
    "VaultError",
]


class CIVarsError(Exception):
    """Base class of every error raised by airflow-ci-vars."""


class VariableValidationError(CIVarsError, ValueError):
    """A variable record is invalid (bad key, bad scope, hidden without masked...).

    ``key`` names the offending variable; ``field`` the attribute that was refused.
    """

    def __init__(self, message: str, *, key: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.key = key
        self.field = field


class KeyValidationError(VariableValidationError):
    """A variable key breaks GitLab's key rules."""


class MaskabilityError(VariableValidationError):
    """A value cannot be masked (too short, forbidden characters); ``reason`` says why."""

    def __init__(self, message: str, *, key: str | None = None, reason: str = "") -> None:
        super().__init__(message, key=key, field="masked")
        self.reason = reason


class ExpansionError(CIVarsError):
    """Variable expansion failed, e.g. ``circular variable reference detected: ["A", "B"]``.

    ``cycles`` holds the keys of each cyclic group, in GitLab's order. For a value past a size
    limit (``variables/limits.py``), ``key`` names the variable and ``limit`` the bound, in characters.
    """

    def __init__(
        self,
        message: str,
        *,
        cycles: Sequence[Sequence[str]] = (),
        key: str | None = None,
        limit: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.cycles = tuple(tuple(c) for c in cycles)
        self.key = key
        self.limit = limit

    def __reduce__(self) -> tuple[object, ...]:
        return (_expansion_error, (self.message, self.cycles, self.key, self.limit))


def _expansion_error(
    message: str, cycles: Sequence[Sequence[str]], key: str | None, limit: int | None
) -> ExpansionError:
    return ExpansionError(message, cycles=cycles, key=key, limit=limit)


class EnvironmentSizeError(CIVarsError):
    """A job's environment is larger than Linux lets ``execve`` pass (it would fail with ``E2BIG``).

    ``keys`` names the offending variables (the largest ones when only the total is too large),
    ``limit`` the bound in bytes. The message names keys and sizes, never a value.
    """

    def __init__(self, message: str, *, keys: Sequence[str] = (), limit: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.keys = tuple(keys)
        self.limit = limit

    def __reduce__(self) -> tuple[object, ...]:
        return (_environment_size_error, (self.message, self.keys, self.limit))


def _environment_size_error(message: str, keys: Sequence[str], limit: int) -> EnvironmentSizeError:
    return EnvironmentSizeError(message, keys=keys, limit=limit)


class DotenvError(CIVarsError, ValueError):
    """A dotenv report is invalid. ``line`` is 1-based (None for whole-file errors)."""

    def __init__(self, message: str, *, line: int | None = None, file: str | None = None) -> None:
        self.message = message
        self.line = line
        self.file = file
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.file or ""
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        return f"{where}: {self.message}" if where else self.message

    def with_file(self, file: str) -> DotenvError:
        """Return the same error located in ``file``."""
        return DotenvError(self.message, line=self.line, file=file)


class ArtifactPathError(CIVarsError, ValueError):
    """A report or artifact path leaves the job's working directory, or is not a regular file.

    ``path`` is the path as the job gave it; the message is gitlab-runner's
    (``commands/helpers/file_archiver.go``, ``helpers/archives/gzip_create.go``).
    """

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def __reduce__(self) -> tuple[object, ...]:
        return (_artifact_path_error, (self.message, self.path))


def _artifact_path_error(message: str, path: str) -> ArtifactPathError:
    return ArtifactPathError(message, path=path)


class SecretInClearTextError(CIVarsError, ValueError):
    """Something about to be written in clear (XCom, an Asset event, a run's conf) holds a masked value.

    ``where`` locates it (``FILE:LINE``, a conf field) and is all the message says of it: never
    the value, nor a key (a key may itself be the secret).
    """

    def __init__(self, where: str, *, written_to: str) -> None:
        self.where = where
        self.written_to = written_to
        self.message = (
            f"{where}: holds a masked value; {written_to} is stored and shown in clear, so it is not handed on"
        )
        super().__init__(self.message)

    def __reduce__(self) -> tuple[object, ...]:
        return (_secret_in_clear_text, (self.where, self.written_to))


def _secret_in_clear_text(where: str, written_to: str) -> SecretInClearTextError:
    return SecretInClearTextError(where, written_to=written_to)


class ParameterError(CIVarsError, ValueError):
    """Pipeline parameters from a REST ``conf`` are invalid.

    ``names`` lists every offending parameter name (all of them, not just the first).
    """

    def __init__(self, message: str, *, names: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.names = tuple(names)


class SettingsError(CIVarsError, ValueError):
    """A settings file is invalid. Renders as ``FILE:LINE: message`` (GitLab-style location first).

    ``line`` and ``column`` are 1-based (None when unknown); ``key`` names the offending variable
    key or setting, ``field`` the refused attribute. When a file has several problems, the
    attributes describe the first one, ``errors`` holds every one of them (each a
    ``SettingsError``) and ``message`` continues with one located line per further problem.
    Messages never contain a variable value.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        key: str | None = None,
        field: str | None = None,
        errors: Sequence[SettingsError] = (),
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.key = key
        self.field = field
        self._errors = tuple(errors)
        super().__init__(self._render())

    @property
    def errors(self) -> tuple[SettingsError, ...]:
        """Every problem found, in file order (just ``self`` for a single problem)."""
        return self._errors or (self,)

    @property
    def location(self) -> str:
        """``FILE:LINE`` (or whichever part is known)."""
        where = self.file or ""
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        return where

    def _render(self) -> str:
        where = self.location
        return f"{where}: {self.message}" if where else self.message


class JobFailedError(CIVarsError):
    """A job failed: its scripts exited non-zero without ``allow_failure``, or it could not run
    (its variables did not resolve). The message names the job, never a value."""


class ScriptTimeoutError(CIVarsError):
    """A job script ran longer than its ``timeout`` (seconds); its whole process group was killed."""

    def __init__(self, timeout: float) -> None:
        # args hold the timeout alone, so the error pickles and unpickles unchanged.
        super().__init__(timeout)
        self.timeout = timeout
        self.message = f"script timed out after {timeout:g} seconds"

    def __str__(self) -> str:
        return self.message


class VaultError(CIVarsError):
    """A Vault request failed (after retries), was refused, or a secret or field is missing.

    ``mount``, ``path`` and ``field`` locate the secret; the message names them and never holds a
    secret value or a credential. Renders as ``vault MOUNT/PATH (field FIELD): message``.
    """

    def __init__(
        self, message: str, *, mount: str | None = None, path: str | None = None, field: str | None = None
    ) -> None:
        self.message = message
        self.mount = mount
        self.path = path
        self.field = field
        super().__init__(self._render())

    @property
    def location(self) -> str:
        """``vault MOUNT/PATH (field FIELD)`` (or whichever part is known)."""
        secret = "/".join(part for part in (self.mount, self.path) if part)
        where = f"vault {secret}" if secret else ""
        if self.field:
            where = f"{where} (field {self.field})" if where else f"field {self.field}"
        return where

    def _render(self) -> str:
        where = self.location
        return f"{where}: {self.message}" if where else self.message

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword attributes survive pickling (e.g. across Airflow's process boundaries).
        return (_vault_error, (self.message, self.mount, self.path, self.field))


def _vault_error(message: str, mount: str | None, path: str | None, field: str | None) -> VaultError:
    return VaultError(message, mount=mount, path=path, field=field)


class RuleSyntaxError(CIVarsError, ValueError):
    """A ``rules:if`` expression is malformed (GitLab: ``invalid expression syntax``).

    ``message`` is GitLab's text (``Unknown lexeme found!``, ``Unmatched parenthesis``...),
    ``expression`` the whole expression and ``position`` the 0-based character offset of the
    offending token (None when the error concerns the whole expression). Renders as
    ``invalid expression `EXPRESSION`: MESSAGE (at character N)``.
    """

    def __init__(self, message: str, expression: str = "", position: int | None = None) -> None:
        self.message = message
        self.expression = expression
        self.position = position
        super().__init__(self._render())

    def _render(self) -> str:
        where = f" (at character {self.position})" if self.position is not None else ""
        return f"invalid expression `{self.expression}`: {self.message}{where}"

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.message, self.expression, self.position))


class PipelineError(CIVarsError, ValueError):
    """A ``.gitlab-ci.yml`` (or a file it includes) is invalid. Renders as ``FILE:LINE:COL: message``.

    ``line`` and ``column`` are 1-based (None when unknown); ``job`` names the job (or top-level
    key) concerned and ``key`` the keyword. Messages copy GitLab's wording where GitLab has one.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        job: str | None = None,
        key: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.job = job
        self.key = key
        super().__init__(self._render())

    @property
    def location(self) -> str:
        """``FILE:LINE:COL`` (or whichever part is known)."""
        parts = [self.file] if self.file else []
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def _render(self) -> str:
        where = self.location
        return f"{where}: {self.message}" if where else self.message


class JobConfigError(PipelineError):
    """A job keyword is invalid (``script``, ``needs``, ``artifacts``...): GitLab's message.

    ``job`` names the job and ``key`` (also ``field``) the keyword, which locates the error at
    ``jobs:JOB:KEYWORD``; raised by the keyword entries of ``airflow_ci_vars/pipeline/entries/``.
    """

    def __init__(self, message: str, *, job: str | None = None, key: str | None = None) -> None:
        super().__init__(message, job=job, key=key)

    @property
    def field(self) -> str | None:
        """The keyword refused (same as ``key``)."""
        return self.key

    def __reduce__(self) -> tuple[object, ...]:
        return (_job_config_error, (self.message, self.job, self.key))


def _job_config_error(message: str, job: str | None, key: str | None) -> JobConfigError:
    return JobConfigError(message, job=job, key=key)


class AccessDeniedError(CIVarsError, PermissionError):
    """Someone may not do what a run, a manual job's play or a cross-project read asks.

    The message starts with GitLab's own text where GitLab has one, then says who, what and which
    setting decided. ``reason`` is GitLab's failure reason where it has one
    (``protected_environment_failure``, ``insufficient_bridge_permissions``...), else a short name
    of the rule (``protected_ref``, ``pipeline_variables``, ``job_token_scope``...).
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason

    def __reduce__(self) -> tuple[object, ...]:
        return (_access_denied, (type(self), self.message, self.reason))


def _access_denied(cls: type[AccessDeniedError], message: str, reason: str) -> AccessDeniedError:
    return cls(message, reason=reason)


class IsolationError(CIVarsError):
    """The job isolation asked for (``[ci_vars] isolation``) cannot be provided on this worker."""


class ContainerError(IsolationError):
    """A container job cannot run as asked: an image or pull policy the deployment does not allow,
    no image, an unreachable Docker daemon, an image that cannot be found or pulled. The message
    names the job, the image as written and the ``[ci_vars]`` setting concerned, never a secret."""


class IncludeSourceError(CIVarsError):
    """An include source (a git repository, an HTTP server, the templates folder) cannot give a file.

    ``source`` names the repository, URL or setting concerned, never with credentials (userinfo
    and tokens are removed before an error is built); ``offline`` is True when the source was
    not reached because the load was offline (``lint --offline``) and nothing was cached.
    """

    def __init__(self, message: str, *, source: str | None = None, offline: bool = False) -> None:
        self.message = message
        self.source = source
        self.offline = offline
        super().__init__(message)

    def __reduce__(self) -> tuple[object, ...]:  # keyword arguments survive pickling (multiprocessing)
        return (_include_source_error, (type(self), self.message, self.source, self.offline))


def _include_source_error(
    kind: type[IncludeSourceError], message: str, source: str | None, offline: bool
) -> IncludeSourceError:
    error = Exception.__new__(kind)
    IncludeSourceError.__init__(error, message, source=source, offline=offline)
    return error
