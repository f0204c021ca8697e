"""DAG of tests/stack/test_manual_race.py: a manual job answered as soon as it asks."""

from __future__ import annotations

from pathlib import Path

from airflow_ci_vars.dag_factory import gitlab_ci_dag

HERE = Path(__file__).parent / "manual_race"

dag = gitlab_ci_dag(
    HERE / ".gitlab-ci.yml",
    project="acme/manual-race",
    dag_id="ci_stack_manual_race",
    settings=HERE / "settings.yml",
    # Every run of the test may be active at once (default 16).
    max_active_runs=50,
)
