"""``variables`` of a job and ``inherit:variables``. R: ``config/entry/variables.rb``, ``entry/inherit/variables.rb``.

Each variable is read by ``variables/yaml_values.py`` (GitLab's ``SimpleVariable``/``ComplexVariable``),
whose ``VariableValidationError`` names the variable.
"""

from __future__ import annotations

from collections.abc import Mapping

from airflow_ci_vars.errors import JobConfigError
from airflow_ci_vars.variables.model import Layer, Variable
from airflow_ci_vars.variables.yaml_values import Inherit, yaml_variables


def job_variables(name: str, value: object) -> tuple[Variable, ...] | None:
    """The job's ``variables:`` (None without the keyword, ``()`` for ``variables: {}``)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise JobConfigError("variables config should be a hash", job=name, key="variables")
    return tuple(yaml_variables(value, layer=Layer.JOB))


def default_variables(value: Mapping[str, object] | None) -> tuple[Variable, ...]:
    """The pipeline's top-level ``variables:`` as the job's default layer."""
    return tuple(yaml_variables(value, layer=Layer.DEFAULT)) if value else ()


def inherit(job: Mapping[str, object]) -> Inherit:
    """``inherit:variables``: True (all), False (none) or the names inherited."""
    value = job.get("inherit") or {}
    chosen = value.get("variables", True) if isinstance(value, Mapping) else True
    return chosen if isinstance(chosen, bool) else tuple(chosen)
