"""Airflow operators of airflow-ci-vars."""

from airflow_ci_vars.operators.ci_job import CIJobOperator, EnvironmentLink

__all__ = ["CIJobOperator", "EnvironmentLink"]
