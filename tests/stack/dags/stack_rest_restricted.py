"""DAG of tests/stack/test_rest.py: pipeline variables restricted to maintainers."""

from __future__ import annotations

from pathlib import Path

from airflow_ci_vars.dag_factory import gitlab_ci_dag

HERE = Path(__file__).parent / "rest" / "restricted"

dag = gitlab_ci_dag(
    HERE / ".gitlab-ci.yml",
    project="acme/restricted",
    dag_id="ci_stack_rest_restricted",
    settings=HERE / "settings.yml",
)
