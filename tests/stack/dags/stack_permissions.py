"""DAGs of tests/stack/test_permissions_matrix.py: one project with protected refs and environments,
restricted pipeline variables and a job token allowlist, and the projects around it."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from airflow_ci_vars.dag_factory import dotenv_asset, gitlab_ci_dag

HERE = Path(__file__).parent / "permissions"
SETTINGS = HERE / "settings.yml"
PAST = datetime(2026, 1, 1, tzinfo=timezone.utc)

perm = gitlab_ci_dag(HERE / "perm/.gitlab-ci.yml", project="acme/perm", settings=SETTINGS)
manual = gitlab_ci_dag(
    HERE / "manual/.gitlab-ci.yml", project="acme/perm-manual", dag_id="acme_perm_manual", settings=SETTINGS
)
upstream = gitlab_ci_dag(
    HERE / "upstream/.gitlab-ci.yml", project="acme/perm-up", dag_id="acme_perm_up", settings=SETTINGS
)
stray_upstream = gitlab_ci_dag(
    HERE / "upstream/.gitlab-ci.yml", project="acme/perm-stray", dag_id="acme_perm_stray_up", settings=SETTINGS
)
reader = gitlab_ci_dag(
    HERE / "reader/.gitlab-ci.yml", project="acme/perm-reader", dag_id="acme_perm_reader", settings=SETTINGS
)
stray_reader = gitlab_ci_dag(
    HERE / "reader/.gitlab-ci.yml", project="acme/perm-stray", dag_id="acme_perm_stray_reader", settings=SETTINGS
)
# Scheduled once as soon as the DAG is parsed: a developer's schedule, and one without an owner.
sched_owned = gitlab_ci_dag(
    HERE / "perm/.gitlab-ci.yml",
    project="acme/perm-sched-owned",
    dag_id="acme_perm_sched_owned",
    settings=SETTINGS,
    schedule="@once",
    start_date=PAST,
)
sched = gitlab_ci_dag(
    HERE / "perm/.gitlab-ci.yml",
    project="acme/perm-sched",
    dag_id="acme_perm_sched",
    settings=SETTINGS,
    schedule="@once",
    start_date=PAST,
)
# Pipelines started by acme/perm's publish job: one of a project on its allowlist, one not.
publish = gitlab_ci_dag(
    HERE / "publish/.gitlab-ci.yml", project="acme/perm", dag_id="acme_perm_publish", settings=SETTINGS
)
listener = gitlab_ci_dag(
    HERE / "listener/.gitlab-ci.yml",
    project="acme/perm-reader",
    dag_id="acme_perm_listener",
    settings=SETTINGS,
    schedule=[dotenv_asset("acme/perm", "publish")],
)
stray_listener = gitlab_ci_dag(
    HERE / "listener/.gitlab-ci.yml",
    project="acme/perm-stray",
    dag_id="acme_perm_stray_listener",
    settings=SETTINGS,
    schedule=[dotenv_asset("acme/perm", "publish")],
)
