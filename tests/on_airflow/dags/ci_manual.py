"""Test DAG of manual jobs (``when: manual``), built by the DAG factory."""

from __future__ import annotations

from pathlib import Path

from airflow_ci_vars.dag_factory import gitlab_ci_dag

HERE = Path(__file__).parent

manual = gitlab_ci_dag(
    HERE / "pipelines/manual/.gitlab-ci.yml", dag_id="factory_manual", settings=HERE / "settings.yml"
)
