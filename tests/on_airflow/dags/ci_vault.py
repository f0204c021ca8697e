"""Test DAG: a job reading its variables and `secrets:` from Vault (tests/vault)."""

from __future__ import annotations

import yaml
from airflow.sdk import DAG

from airflow_ci_vars.jobs import JobSpec
from airflow_ci_vars.operators import CIJobOperator

JOB = yaml.safe_load(
    """
script:
  - cat "$DB_PASSWORD" > "$OUT/secret_file.txt"
  - echo "$DB_PASSWORD" > "$OUT/secret_path.txt"
  - echo "$API_KEY" > "$OUT/api_key.txt"
  - echo "$LEVEL" > "$OUT/level.txt"
  - 'echo "in the log: $(cat "$DB_PASSWORD") and $API_KEY"'
secrets:
  DB_PASSWORD:
    vault: production/db/password@secret
  API_KEY:
    vault: {engine: {name: kv-v2, path: secret}, path: production/api, field: key}
    file: false
"""
)

with DAG("ci_vault", schedule=None) as dag:
    CIJobOperator(task_id="deploy", job=JobSpec.from_yaml("deploy", JOB), project="acme/data/etl")
