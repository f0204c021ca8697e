"""Airflow operators of airflow-ci-vars.

``CIJobOperator`` and ``EnvironmentLink`` import Airflow: they are loaded when asked for, so that
the Airflow-free modules of this package (``job_execution`` and what it uses) serve
``airflow-ci-vars run``'s direct engine without Airflow's import.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CIJobOperator", "EnvironmentLink"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from airflow_ci_vars.operators import ci_job

        return getattr(ci_job, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
