"""Validation of stored variables (instance, group, project): GitLab's rules on save.

R: ``app/models/concerns/ci/has_variable.rb`` (key), ``ci/maskable.rb`` (masked values),
``ci/hidable_variable.rb`` (hidden requires masked), ``lib/gitlab/regex.rb`` (environment scope),
``app/models/ci/pipeline_variable_item.rb`` and the instance-variable limit (value sizes).
"""

from __future__ import annotations

import dataclasses

from airflow_ci_vars.errors import VariableValidationError
from airflow_ci_vars.masking import validate_maskable
from airflow_ci_vars.variables.keys import validate_environment_scope, validate_key
from airflow_ci_vars.variables.model import Layer, Variable

__all__ = ["INSTANCE_VALUE_LIMIT", "VALUE_LIMIT", "validate_variable"]

INSTANCE_VALUE_LIMIT = 10_000
VALUE_LIMIT = 500_000_000
_VARIABLE_TYPES = ("env_var", "file")


def validate_variable(variable: Variable, *, layer: Layer | None = None) -> Variable:
    """Check a variable as GitLab does when it is saved; return it with key and scope stripped.

    Raises ``VariableValidationError`` (or its subclasses ``KeyValidationError``,
    ``MaskabilityError``) naming the key and the field, never the value.
    """
    key = validate_key(variable.key)
    if not isinstance(variable.value, str):
        raise VariableValidationError(f"Validation failed: Value of '{key}' must be a string", key=key, field="value")
    if variable.variable_type not in _VARIABLE_TYPES:
        raise VariableValidationError(
            f"Validation failed: Variable type of '{key}' is not included in the list (env_var, file)",
            key=key,
            field="variable_type",
        )
    limit = INSTANCE_VALUE_LIMIT if (layer or _layer(variable)) is Layer.INSTANCE else VALUE_LIMIT
    if len(variable.value) > limit:
        raise VariableValidationError(
            f"Validation failed: Value of '{key}' is too long (maximum is {limit} characters)", key=key, field="value"
        )
    if variable.hidden and not variable.masked:
        raise VariableValidationError(
            f"Validation failed: Masked of '{key}' should be true when variable is hidden", key=key, field="hidden"
        )
    if variable.masked:
        validate_maskable(variable.value, raw=variable.raw, key=key)
    scope = validate_environment_scope(variable.environment_scope, key=key)
    if key != variable.key or scope != variable.environment_scope:
        return dataclasses.replace(variable, key=key, environment_scope=scope)
    return variable


def _layer(variable: Variable) -> Layer | None:
    return variable.source.layer if variable.source is not None else None
