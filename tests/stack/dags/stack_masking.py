"""DAG of the stack tests (tests/stack/test_log_masking.py): every way a masked value can leak.

Copied into the real deployment's dags folder with stack_settings.yml beside it. The tasks are
independent; several fail on purpose, so the run ends ``failed``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG

from airflow_ci_vars.jobs import JobSpec
from airflow_ci_vars.operators import CIJobOperator

SETTINGS = Path(__file__).parent / "stack_settings.yml"
DAG_ID = "ci_stack_masking"

# Percent-encodes its argument like Python's urllib.parse.quote(s, safe="").
URLENCODE = (
    'urlencode() { local s="$1" o="" c i; for ((i = 0; i < ${#s}; i++)); do c="${s:i:1}"; '
    'case "$c" in [A-Za-z0-9._~-]) o+="$c" ;; *) printf -v c \'%%%02X\' "\'$c"; o+="$c" ;; esac; '
    "done; printf '%s' \"$o\"; }"
)

JOBS: dict[str, dict[str, Any]] = {
    # Prints the secret in every form the masker must catch; each output line has a label.
    "echo_secret": {
        "script": [
            'echo "plain: $PLAIN_VALUE"',
            'echo "direct: $ACME_CREDENTIAL"',
            'echo "stderr: $ACME_CREDENTIAL" >&2',
            # Printed in two writes 0.3 s apart: the masker must hold the first part back.
            "printf 'split: '; printf '%s' \"${ACME_CREDENTIAL:0:4}\"; sleep 0.3; "
            "printf '%s\\n' \"${ACME_CREDENTIAL:4}\"",
            "printf 'base64: '; printf '%s' \"$ACME_CREDENTIAL\" | base64",
            URLENCODE,
            'echo "url: https://deploy.example.com/hook?token=$(urlencode "$ACME_CREDENTIAL")&x=1"',
            'echo "userinfo: https://ci:$(urlencode "$ACME_CREDENTIAL")@deploy.example.com/"',
            "env | grep '^ACME_CREDENTIAL='",
            "printf 'carriage-return: %s\\r\\n' \"$ACME_CREDENTIAL\"",
            'echo "end-of-job"',
            # The job's last output has no newline.
            "printf 'no-newline: %s' \"$ACME_CREDENTIAL\"",
        ],
        "after_script": ['echo "after_script: $ACME_CREDENTIAL"'],
    },
    # Fails on a command whose error message holds the secret.
    "fail_after_secret": {
        "script": [
            'echo "about to fail: $ACME_CREDENTIAL"',
            'ls "/nonexistent/$ACME_CREDENTIAL"',
            'echo "never printed"',
        ],
    },
    # dotenv reports holding the secret, or its base64 form, must be refused (no XCom).
    "dotenv_secret": {
        "script": ['echo "LEAK=$ACME_CREDENTIAL" > leak.env'],
        "artifacts": {"reports": {"dotenv": "leak.env"}},
    },
    "dotenv_base64": {
        "script": ['echo "LEAK_B64=$(printf %s "$ACME_CREDENTIAL" | base64)" > leak.env'],
        "artifacts": {"reports": {"dotenv": "leak.env"}},
    },
    # Killed by its execution_timeout while the secret, printed without a newline, is still buffered.
    "timeout_secret": {
        "script": ["printf 'partial: %s' \"$ACME_CREDENTIAL\"", "sleep 60"],
    },
    # Control: a clean dotenv report is handed on.
    "dotenv_clean": {
        "script": ['echo "BUILD_VERSION=1.2.3" > build.env'],
        "artifacts": {"reports": {"dotenv": "build.env"}},
    },
}

TASK_KWARGS: dict[str, dict[str, Any]] = {"timeout_secret": {"execution_timeout": timedelta(seconds=4)}}

with DAG(DAG_ID, schedule=None, catchup=False, tags=["stack-test"]) as dag:
    for name, spec in JOBS.items():
        CIJobOperator(
            task_id=name, job=JobSpec.from_yaml(name, spec), settings_file=SETTINGS, **TASK_KWARGS.get(name, {})
        )
