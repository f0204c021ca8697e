"""airflow-ci-vars: GitLab CI / CircleCI variable semantics for Apache Airflow 3.

This package is imported by Airflow's dag-processor on every parse, so importing it must stay
cheap and must not import Airflow: the public API below is the pure core only. The Airflow-facing
parts (operators, secrets backend, DAG factory) live in their own subpackages.
"""

from airflow_ci_vars.dotenv import parse_dotenv
from airflow_ci_vars.errors import (
    CIVarsError,
    DotenvError,
    ExpansionError,
    JobConfigError,
    KeyValidationError,
    MaskabilityError,
    ParameterError,
    PipelineError,
    RuleSyntaxError,
    VariableValidationError,
)
from airflow_ci_vars.masking import Masker, is_maskable
from airflow_ci_vars.parameters import pipeline_variables
from airflow_ci_vars.pipeline.expressions import evaluate_rule
from airflow_ci_vars.provider_info import get_provider_info
from airflow_ci_vars.variables import (
    JobEnvironment,
    Layer,
    Provenance,
    RunContext,
    Variable,
    VariableLayers,
    VariableSource,
    environment_slug,
    expand_value,
    matches_environment_scope,
    ref_slug,
    resolve,
    runner_expand,
    sort_and_expand,
)

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # The DAG factory imports Airflow: load it only when asked for, so that importing this
    # package stays cheap for the dag-processor and works where Airflow is not installed.
    if name == "gitlab_ci_dag":
        from airflow_ci_vars.dag_factory import gitlab_ci_dag

        return gitlab_ci_dag
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CIVarsError",
    "DotenvError",
    "ExpansionError",
    "JobConfigError",
    "JobEnvironment",
    "KeyValidationError",
    "Layer",
    "MaskabilityError",
    "Masker",
    "ParameterError",
    "PipelineError",
    "Provenance",
    "RuleSyntaxError",
    "RunContext",
    "Variable",
    "VariableLayers",
    "VariableSource",
    "VariableValidationError",
    "__version__",
    "environment_slug",
    "evaluate_rule",
    "expand_value",
    "get_provider_info",
    "gitlab_ci_dag",
    "is_maskable",
    "matches_environment_scope",
    "parse_dotenv",
    "pipeline_variables",
    "ref_slug",
    "resolve",
    "runner_expand",
    "sort_and_expand",
]
