"""Test DAGs of the run-time decision (``pipeline.decision``): rules:needs, rules:start_in, a
rule on the pipeline source. Built by the DAG factory."""

from __future__ import annotations

from pathlib import Path

from airflow_ci_vars.dag_factory import gitlab_ci_dag

HERE = Path(__file__).parent
SETTINGS = HERE / "settings.yml"

needs = gitlab_ci_dag(HERE / "pipelines/decision_needs/.gitlab-ci.yml", dag_id="decision_needs", settings=SETTINGS)
delayed = gitlab_ci_dag(
    HERE / "pipelines/decision_delayed/.gitlab-ci.yml", dag_id="decision_delayed", settings=SETTINGS
)
source = gitlab_ci_dag(HERE / "pipelines/decision_source/.gitlab-ci.yml", dag_id="decision_source", settings=SETTINGS)
