"""A parallel:matrix pipeline as a DAG."""

from pathlib import Path

from airflow_ci_vars import gitlab_ci_dag

dag = gitlab_ci_dag(Path(__file__).parent / "pipelines/matrix/.gitlab-ci.yml", project="acme/data/matrix")
