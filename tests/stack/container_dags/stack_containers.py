"""DAG of tests/stack/test_container_jobs.py: container jobs pinned to two Celery workers.

Only the container deployment of that test (``[ci_vars] isolation = docker``) has this folder as
its dags folder: the session's deployments (tests/stack/dags) never see it.
"""

from __future__ import annotations

from pathlib import Path

from airflow_ci_vars.dag_factory import gitlab_ci_dag

HERE = Path(__file__).parent / "containers"

dag = gitlab_ci_dag(
    HERE / ".gitlab-ci.yml", project="acme/containers", dag_id="ci_stack_containers", settings=HERE / "settings.yml"
)
