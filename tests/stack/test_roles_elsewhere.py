"""An auth manager whose roles workers cannot read (FAB, Keycloak): roles reach jobs through the stamp.

The stack runs ``tests/stack/auth/roles_elsewhere.py``: the Simple auth manager under another
name, so jobs cannot read users' roles from the configuration. The api-server plugin stamps the
roles the auth manager gave each request into the run's conf and into manual jobs' answers; jobs
use them. A run without a stamp (``airflow dags trigger`` from the command line) acts for a user
with no known role, and has no rights.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow_stack import BIN, AirflowStack
from test_permissions_matrix import FEATURE, MANUAL, PERM, answer, job_log, states, trigger, wait_for_request

pytestmark = pytest.mark.stack

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    dags = tmp_path_factory.mktemp("dags")
    shutil.copy(HERE / "dags/stack_permissions.py", dags)
    shutil.copytree(HERE / "dags/permissions", dags / "permissions")
    extra = {
        "PYTHONPATH": str(HERE / "auth"),
        "AIRFLOW__CORE__AUTH_MANAGER": "roles_elsewhere.RolesElsewhereAuthManager",
    }
    with AirflowStack.running([dags], all_admins=False, users={"bob": "user", "olga": "op"}, extra_env=extra) as s:
        yield s


def test_jobs_take_the_roles_the_api_server_stamped(stack: AirflowStack) -> None:
    runs = {user: trigger(stack, user, PERM, conf) for user, conf in [("bob", FEATURE), ("olga", {})]}
    for user, resp in runs.items():
        assert resp.status_code == 200, resp.text
        assert resp.json()["conf"]["ci_trigger"]["roles"] == [{"bob": "user", "olga": "op"}[user]]
    for resp in runs.values():
        stack.wait(PERM, resp.json()["dag_run_id"], timeout=180)
    bob, olga = (runs[u].json()["dag_run_id"] for u in ("bob", "olga"))
    assert states(stack, PERM, bob)["build"] == "success"  # a developer, from the stamp
    assert states(stack, PERM, bob)["deploy"] == "failed"  # not a deployer of production
    olga_states = states(stack, PERM, olga)
    assert olga_states["build"] == olga_states["deploy"] == "success"  # a maintainer, from the stamp
    assert "token_len=16" in job_log(stack, PERM, olga, "build")


def test_a_run_without_a_stamp_has_no_rights(stack: AirflowStack) -> None:
    stack.wait_for_dag(PERM)
    run_id = "from_the_command_line"
    proc = subprocess.run(
        [str(BIN / "airflow"), "dags", "trigger", PERM, "-c", json.dumps(FEATURE), "-r", run_id],
        env=stack.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    stack.wait(PERM, run_id, timeout=180)
    log = job_log(stack, PERM, run_id, "build")
    assert "Insufficient permissions to create a new pipeline" in log and "has no role" in log
    assert "build-ran" not in log


def test_a_manual_job_is_played_with_the_roles_stamped_into_the_answer(stack: AirflowStack) -> None:
    resp = trigger(stack, "bob", MANUAL, FEATURE)
    assert resp.status_code == 200, resp.text
    run_id = resp.json()["dag_run_id"]
    wait_for_request(stack, run_id, "release")
    assert answer(stack, "bob", run_id, "release", "Run").status_code == 403
    assert answer(stack, "olga", run_id, "release", "Run").status_code == 200
    wait_for_request(stack, run_id, "notes")
    assert answer(stack, "olga", run_id, "notes", "Skip").status_code == 200
    stack.wait(MANUAL, run_id, timeout=180)
    assert states(stack, MANUAL, run_id)["release"] == "success"
    assert "release-ran-42 secret_len=16" in job_log(stack, MANUAL, run_id, "release")
