"""DAG of tests/stack/test_artifact_masking.py: a file named after a masked value, handed on as an artifact.

The settings file is the one of stack_masking.py (stack_settings.yml, copied beside it).
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import DAG

from airflow_ci_vars.jobs import JobSpec
from airflow_ci_vars.operators import CIJobOperator

SETTINGS = Path(__file__).parent / "stack_settings.yml"
DAG_ID = "ci_stack_artifacts"

MAKE = {
    "stage": "build",
    "script": [
        # ACME_CREDENTIAL holds a '/': the part before it becomes a directory.
        'mkdir -p "dist/a-${ACME_CREDENTIAL%%/*}"',
        'echo "content: $ACME_CREDENTIAL" > "dist/a-$ACME_CREDENTIAL.txt"',
        "find dist -type f",
    ],
    "artifacts": {"paths": ["dist/"]},
}
USE = {"stage": "test", "script": ["find dist -type f", "cat dist/a-*/*.txt"]}

with DAG(DAG_ID, schedule=None, catchup=False, tags=["stack-test"]) as dag:
    make = CIJobOperator(task_id="make", job=JobSpec.from_yaml("make", MAKE), settings_file=SETTINGS)
    use = CIJobOperator(task_id="use", job=JobSpec.from_yaml("use", USE), settings_file=SETTINGS)
    make >> use
