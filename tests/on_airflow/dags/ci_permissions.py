"""A pipeline of a project with protected environments and restricted pipeline variables."""

from __future__ import annotations

from pathlib import Path

from airflow_ci_vars.dag_factory import gitlab_ci_dag

HERE = Path(__file__).parent

restricted = gitlab_ci_dag(
    HERE / "pipelines/permissions/.gitlab-ci.yml",
    project="acme/restricted",
    dag_id="factory_restricted",
    settings=HERE / "settings_restricted.yml",
)
open_project = gitlab_ci_dag(
    HERE / "pipelines/permissions/.gitlab-ci.yml",
    project="acme/open",
    dag_id="factory_open",
    settings=HERE / "settings_restricted.yml",
)
