"""The etl pipeline as a DAG (one line; one loader file per pipeline keeps failures apart)."""

from pathlib import Path

from airflow_ci_vars import gitlab_ci_dag

HERE = Path(__file__).parent / "pipelines"

dag = gitlab_ci_dag(HERE / "etl/.gitlab-ci.yml", project="acme/data/etl", settings=HERE / "etl/settings.yml")
