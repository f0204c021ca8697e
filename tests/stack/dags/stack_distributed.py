"""DAG of tests/stack/test_distributed.py: a dotenv handoff between jobs pinned to two workers."""

from __future__ import annotations

from pathlib import Path

from airflow_ci_vars.dag_factory import gitlab_ci_dag

HERE = Path(__file__).parent / "distributed"

dag = gitlab_ci_dag(
    HERE / ".gitlab-ci.yml", project="acme/distributed", dag_id="ci_stack_distributed", settings=HERE / "settings.yml"
)
