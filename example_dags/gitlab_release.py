"""A release pipeline with Vault secrets: and a manual deploy (needs CIVaultBackend configured)."""

from pathlib import Path

from airflow_ci_vars import gitlab_ci_dag

dag = gitlab_ci_dag(Path(__file__).parent / "pipelines/release/.gitlab-ci.yml", project="acme/data/release")
