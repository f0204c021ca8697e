"""The isolation probe of docs/security.md: what a job's script can reach of the worker.

One job, ordinary user code as in any CI system, tries every route of issue 11 and prints one
``PROBE <route> <verdict>`` line each: the worker's environment through ``/proc``, the processes
it sees, ``/``, ``AIRFLOW_HOME``, this DAG file, the variable store (kept inside the project
folder on purpose), the artifact store, and another run's workspace (``PROBE_OTHER``, passed in
the run's conf by the test that plants it). tests/security/test_isolation_probe.py runs it on a
real deployment in every ``[ci_vars] isolation`` mode and asserts what each mode promises.
"""

from __future__ import annotations

import os
from pathlib import Path

from airflow.sdk import DAG

from airflow_ci_vars.jobs import JobSpec
from airflow_ci_vars.operators import CIJobOperator

PROJECT = Path(__file__).resolve().parent / "probe_project"
SETTINGS = PROJECT / "probe-settings.yml"
HOME = os.environ.get("AIRFLOW_HOME", "")

# exposed: the path can be listed (a folder) or read (a file); hidden otherwise.
REACH = (
    'reach() { if { [ -d "$2" ] && ls "$2"; } >/dev/null 2>&1 || cat "$2" >/dev/null 2>&1; '
    'then echo "PROBE $1 exposed"; else echo "PROBE $1 hidden"; fi; }'
)

probe = JobSpec.from_yaml(
    "probe",
    {
        "variables": {
            "PROBE_AIRFLOW_HOME": HOME,
            "PROBE_DAG_FILE": str(Path(__file__).resolve()),
            "PROBE_SETTINGS": str(SETTINGS),
            "PROBE_ARTIFACTS": os.path.join(HOME, "ci-artifacts"),
        },
        "script": [
            'echo "PROBE user $(id -un)"',
            "n=$(cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c '^AIRFLOW' || true); "
            'echo "PROBE worker_environment_variables $n"',
            'echo "PROBE processes $(ls -d /proc/[0-9]* | wc -l)"',
            "echo \"PROBE root $(ls / | tr '\\n' ' ')\"",
            REACH,
            'reach airflow_home "$PROBE_AIRFLOW_HOME"',
            'reach dag_file "$PROBE_DAG_FILE"',
            'reach settings_file "$PROBE_SETTINGS"',
            'reach artifact_store "$PROBE_ARTIFACTS"',
            'reach other_workspace "$PROBE_OTHER"',
            'if [ -e probe-settings.yml ]; then echo "PROBE settings_in_workspace exposed"; '
            'else echo "PROBE settings_in_workspace hidden"; fi',
            'if ls -A "$CI_PROJECT_DIR" | grep -q README.txt; then echo "PROBE project_copy present"; fi',
            'echo "PROBE done"',
        ],
    },
)

with DAG("ci_security_probe", schedule=None, tags=["airflow-ci-vars"]) as dag:
    CIJobOperator(task_id="probe", job=probe, project_dir=PROJECT, settings_file=SETTINGS, project="acme/probe")
