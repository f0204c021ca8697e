"""Pure variable core: records, keys, scopes, expansion, predefined variables, resolution.

Nothing in this package imports Airflow.
"""

from airflow_ci_vars.variables.expansion import expand_value, runner_expand, sort_and_expand
from airflow_ci_vars.variables.keys import validate_environment_scope, validate_key, validate_parameter_name
from airflow_ci_vars.variables.model import Layer, Variable, VariableSource
from airflow_ci_vars.variables.predefined import (
    RunContext,
    environment_slug,
    predefined_variables,
    ref_slug,
)
from airflow_ci_vars.variables.resolve import (
    Definition,
    JobEnvironment,
    Provenance,
    VariableFile,
    VariableLayers,
    group_chain,
    resolve,
)
from airflow_ci_vars.variables.scopes import matches_environment_scope, ref_is_protected

__all__ = [
    "Definition",
    "JobEnvironment",
    "Layer",
    "Provenance",
    "RunContext",
    "Variable",
    "VariableFile",
    "VariableLayers",
    "VariableSource",
    "environment_slug",
    "expand_value",
    "group_chain",
    "matches_environment_scope",
    "predefined_variables",
    "ref_is_protected",
    "ref_slug",
    "resolve",
    "runner_expand",
    "sort_and_expand",
    "validate_environment_scope",
    "validate_key",
    "validate_parameter_name",
]
