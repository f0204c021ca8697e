"""A factory DAG whose pipeline has ``spec:inputs`` and prefilled variables (the trigger form)."""

from __future__ import annotations

from pathlib import Path

from airflow_ci_vars.dag_factory import gitlab_ci_dag

HERE = Path(__file__).parent

run_form = gitlab_ci_dag(
    HERE / "pipelines/run_form/.gitlab-ci.yml",
    project="acme/data/etl",
    dag_id="factory_run_form",
    settings=HERE / "settings.yml",
    inputs={"release": "v1"},  # `release` has no default: the DAG is built with this value
)
