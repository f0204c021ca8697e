"""DAG of tests/stack/test_rest.py: shows what a REST-triggered run's conf became."""

from __future__ import annotations

from pathlib import Path

from airflow_ci_vars.dag_factory import gitlab_ci_dag

HERE = Path(__file__).parent / "rest" / "params"

dag = gitlab_ci_dag(
    HERE / ".gitlab-ci.yml", project="acme/rest", dag_id="ci_stack_rest", settings=HERE / "settings.yml"
)
