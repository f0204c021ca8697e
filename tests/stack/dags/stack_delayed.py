"""DAGs of tests/stack/test_delayed_jobs.py: a delayed job and another job, sharing a pool of one slot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow_ci_vars.dag_factory import gitlab_ci_dag

HERE = Path(__file__).parent / "delayed"
POOL = "ci_stack_one_slot"  # created by the test (one slot, deferred tasks not counted)


def in_the_pool(file: str, dag_id: str) -> Any:
    """The DAG of ``delayed/<file>``, every task in the one-slot pool."""
    return gitlab_ci_dag(
        HERE / file, project="acme/delayed", dag_id=dag_id, settings=HERE / "settings.yml", default_args={"pool": POOL}
    )


delayed = in_the_pool(".gitlab-ci.yml", "ci_stack_delayed")
other = in_the_pool("other.yml", "ci_stack_delayed_other")
