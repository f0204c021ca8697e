"""DAG of tests/stack/test_rest_load.py: a 2-job dotenv handoff, triggered 50 times at once."""

from __future__ import annotations

from pathlib import Path

from airflow_ci_vars.dag_factory import gitlab_ci_dag

HERE = Path(__file__).parent / "rest" / "load"

dag = gitlab_ci_dag(
    HERE / ".gitlab-ci.yml",
    project="acme/load",
    dag_id="ci_stack_rest_load",
    settings=HERE / "settings.yml",
    # All 50 runs may be active at once (default 16); [core] parallelism still bounds the tasks.
    max_active_runs=50,
)
