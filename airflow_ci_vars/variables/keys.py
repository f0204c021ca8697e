"""Key and name rules: stored/pipeline variable keys (GitLab) and REST parameter names (CircleCI)."""

from __future__ import annotations

import re

from airflow_ci_vars.errors import KeyValidationError, VariableValidationError

__all__ = [
    "MAX_KEY_LENGTH",
    "ruby_strip",
    "validate_environment_scope",
    "validate_key",
    "validate_parameter_name",
]

MAX_KEY_LENGTH = 255
# R: app/models/concerns/ci/has_variable.rb -- /\A[a-zA-Z0-9_]+\z/, max 255, stripped first.
_KEY_RE = re.compile(r"[A-Za-z0-9_]+", re.ASCII)
# CircleCI build_parameters: ASCII letters, digits, '_', not starting with a digit, non-empty.
_PARAMETER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
# R: lib/gitlab/regex.rb environment_scope_regex
_SCOPE_RE = re.compile(r"[a-zA-Z0-9_/${}. *-]+", re.ASCII)

KEY_CHARSET_MESSAGE = "Validation failed: Key can contain only letters, digits and '_'."
_RUBY_STRIP_CHARS = "\t\n\x0b\x0c\r \x00"


def ruby_strip(text: str) -> str:
    """Strip like Ruby ``String#strip``: ASCII whitespace and NUL, not Unicode spaces."""
    return text.strip(_RUBY_STRIP_CHARS)


def validate_key(key: str) -> str:
    """Validate a stored, pipeline or dotenv variable key as GitLab does; return it stripped.

    Raises ``KeyValidationError`` with GitLab's message: ``Key can't be blank``,
    ``Key is too long (maximum is 255 characters)`` or
    ``Validation failed: Key can contain only letters, digits and '_'.``
    """
    if not isinstance(key, str):
        raise KeyValidationError(f"Key must be a string, not {type(key).__name__}", field="key")
    stripped = ruby_strip(key)
    if not stripped:
        raise KeyValidationError("Validation failed: Key can't be blank", key=key, field="key")
    if len(stripped) > MAX_KEY_LENGTH:
        raise KeyValidationError(
            f"Validation failed: Key is too long (maximum is {MAX_KEY_LENGTH} characters)",
            key=stripped[:40] + "...",
            field="key",
        )
    if not _KEY_RE.fullmatch(stripped):
        raise KeyValidationError(KEY_CHARSET_MESSAGE, key=stripped, field="key")
    return stripped


def parameter_name_problem(name: object) -> str | None:
    """Return why ``name`` is not a valid CircleCI build parameter name, or None if it is."""
    if not isinstance(name, str):
        return "must be a string"
    if not name:
        return "must contain at least one character"
    if name[0].isdigit():
        return "must not begin with a number"
    if not _PARAMETER_RE.fullmatch(name):
        return "must contain only ASCII letters, digits and the underscore character"
    return None


def validate_parameter_name(name: str) -> str:
    """Validate a REST/CircleCI parameter name; raise ``KeyValidationError`` naming it."""
    problem = parameter_name_problem(name)
    if problem:
        raise KeyValidationError(f"Parameter name {name!r} {problem}", key=str(name), field="key")
    return name


def validate_environment_scope(scope: str, *, key: str | None = None) -> str:
    """Validate an environment scope as GitLab does; return it stripped."""
    stripped = ruby_strip(scope) if isinstance(scope, str) else ""
    if not stripped:
        raise VariableValidationError(
            "Validation failed: Environment scope can't be blank", key=key, field="environment_scope"
        )
    if not _SCOPE_RE.fullmatch(stripped):
        raise VariableValidationError(
            "Validation failed: Environment scope can contain only letters, digits, "
            "'-', '_', '/', '$', '{', '}', '.', '*' and spaces",
            key=key,
            field="environment_scope",
        )
    return stripped
