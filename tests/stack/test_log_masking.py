"""Masked variables never leave a CIJobOperator task in clear, on a real deployment.

One run of tests/stack/dags/stack_masking.py goes through the real api-server, scheduler and
LocalExecutor (task processes under Airflow's supervisor, which writes the log file). The masked
project variable ``ACME_CREDENTIAL`` (stack_settings.yml) is printed plainly, on stderr, split
across two writes, base64-encoded and URL-encoded; a job fails on a command whose error holds
it; two jobs try to hand it on through a dotenv report. Then the real task log files, the REST
API (task instances, rendered fields, XComs, logs), every file the deployment wrote and a dump
of its metadata database are searched for the secret and its encoded forms.

The scans of files and of the database run after test_artifact_masking.py (alphabetical order),
whose leaking run is deleted when that module ends: they also check that nothing of it is left.
(Pipeline variables from the run's conf are not masked in GitLab either: not tested here.)
"""

from __future__ import annotations

import json
import subprocess

import pytest
from airflow_stack import AirflowStack
from leak_checks import B64, FORBIDDEN, KEY, PLAIN, SECRET, assert_no_secret, exceptions, log_events, messages

pytestmark = pytest.mark.stack

DAG_ID = "ci_stack_masking"
EXPECTED_STATES = {
    "echo_secret": "success",
    "fail_after_secret": "failed",
    "dotenv_secret": "failed",
    "dotenv_base64": "failed",
    "timeout_secret": "failed",
    "dotenv_clean": "success",
}


def test_secret_fixture_is_meaningful() -> None:
    """The forms differ from each other, so each check below tests something."""
    assert len(SECRET) >= 8
    assert FORBIDDEN["url-encoded"] != SECRET
    assert B64.endswith("=")
    assert "+" in B64  # so its urlsafe form differs
    assert len(set(FORBIDDEN.values())) == len(FORBIDDEN)


class Run:
    def __init__(self, stack: AirflowStack, run_id: str, state: str) -> None:
        self.stack = stack
        self.run_id = run_id
        self.state = state

    def log(self, task_id: str) -> str:
        return self.stack.task_log_text(DAG_ID, self.run_id, task_id)

    def ti_path(self, task_id: str) -> str:
        return f"/dags/{DAG_ID}/dagRuns/{self.run_id}/taskInstances/{task_id}"


@pytest.fixture(scope="module")
def masking_run(airflow_stack: AirflowStack) -> Run:
    run_id = airflow_stack.trigger(DAG_ID, conf={})
    state = airflow_stack.wait(DAG_ID, run_id, timeout=120)
    return Run(airflow_stack, run_id, state)


def test_tasks_end_as_expected(masking_run: Run) -> None:
    states = {ti["task_id"]: ti["state"] for ti in masking_run.stack.task_instances(DAG_ID, masking_run.run_id)}
    assert states == EXPECTED_STATES
    assert masking_run.state == "failed"  # some jobs fail on purpose


def test_log_file_masks_every_form_of_the_secret(masking_run: Run) -> None:
    text = masking_run.log("echo_secret")
    lines = messages(text)
    # The positive side: commands are echoed unexpanded, plain variables are shown, and every
    # printed form of the secret was replaced by the operator's own "[MASKED]" (not Airflow's "***").
    assert '$ echo "direct: $ACME_CREDENTIAL"' in lines
    assert f"plain: {PLAIN}" in lines
    for expected in (
        "direct: [MASKED]",
        "stderr: [MASKED]",
        "split: [MASKED]",
        "base64: [MASKED]",
        "url: https://deploy.example.com/hook?token=[MASKED]&x=1",
        "userinfo: https://ci:[MASKED]@deploy.example.com/",
        f"{KEY}=[MASKED]",
        "carriage-return: [MASKED]",
        "end-of-job",
        "no-newline: [MASKED]",
        "after_script: [MASKED]",
    ):
        assert expected in lines, f"{expected!r} not in the task log: {lines}"
    assert_no_secret(text, "the task log file")
    assert_no_secret("\n".join(lines), "the task log file (decoded)")


def test_failing_job_exception_holds_no_secret(masking_run: Run) -> None:
    text = masking_run.log("fail_after_secret")
    lines = messages(text)
    assert "about to fail: [MASKED]" in lines
    assert "ls: cannot access '/nonexistent/[MASKED]': No such file or directory" in lines
    assert "never printed" not in lines
    errors = [e for e in log_events(text) if e.get("level") == "error"]
    details = exceptions(text)
    assert details, f"no exception was logged: {errors}"
    assert details[0]["exc_type"] == "AirflowException"
    assert details[0]["exc_value"] == "Job 'fail_after_secret' failed: exit code 2"
    assert_no_secret(json.dumps(errors), "the logged exception")
    assert_no_secret(text, "the failing job's log file")


def test_job_killed_by_timeout_leaks_nothing(masking_run: Run) -> None:
    """The secret was printed without a newline just before the job hung and was killed."""
    text = masking_run.log("timeout_secret")
    lines = messages(text)
    # As in GitLab, the next command's echo continues the unfinished line.
    assert any(line.startswith("partial: [MASKED]") for line in lines), lines
    assert [d["exc_type"] for d in exceptions(text)] == ["AirflowTaskTimeout"]
    assert_no_secret(text, "the timed-out job's log file")


@pytest.mark.parametrize("task_id", ["dotenv_secret", "dotenv_base64"])
def test_dotenv_report_with_secret_is_refused(masking_run: Run, task_id: str) -> None:
    ti = masking_run.stack.get_json(masking_run.ti_path(task_id))
    assert ti["state"] == "failed"
    resp = masking_run.stack.api("GET", f"{masking_run.ti_path(task_id)}/xcomEntries/dotenv")
    assert resp.status_code == 404, resp.text
    text = masking_run.log(task_id)
    errors = [d["exc_value"] for d in exceptions(text)]
    assert any("holds a masked value" in err for err in errors), errors
    assert_no_secret(text, f"{task_id}'s log file")


def test_clean_dotenv_report_is_handed_on(masking_run: Run) -> None:
    """Control for the 404 above: the same endpoint finds a clean report."""
    resp = masking_run.stack.api("GET", f"{masking_run.ti_path('dotenv_clean')}/xcomEntries/dotenv")
    assert resp.status_code == 200, resp.text
    value = resp.json()["value"]
    value = json.loads(value) if isinstance(value, str) else value
    assert value == {"BUILD_VERSION": "1.2.3"}


def test_rendered_fields_and_task_instances_hold_no_secret(masking_run: Run) -> None:
    for task_id in EXPECTED_STATES:
        ti = masking_run.stack.get_json(masking_run.ti_path(task_id))
        assert "rendered_fields" in ti
        assert_no_secret(json.dumps(ti["rendered_fields"]), f"{task_id}'s rendered fields")
        assert_no_secret(json.dumps(ti), f"{task_id}'s task instance")
        tries = masking_run.stack.get_json(f"{masking_run.ti_path(task_id)}/tries")
        assert_no_secret(json.dumps(tries), f"{task_id}'s tries")
    tasks = masking_run.stack.get_json(f"/dags/{DAG_ID}/tasks")
    assert_no_secret(json.dumps(tasks), "the DAG's tasks")


def test_no_xcom_of_the_run_holds_the_secret(masking_run: Run) -> None:
    entries = masking_run.stack.xcom_entries(DAG_ID, masking_run.run_id)
    assert ("dotenv_clean", "dotenv") in {(e["task_id"], e["key"]) for e in entries}
    for entry in entries:
        path = f"{masking_run.ti_path(entry['task_id'])}/xcomEntries/{entry['key']}"
        for params in ({}, {"deserialize": "true"}, {"stringify": "true"}):
            value = masking_run.stack.get_json(path, params=params)
            assert_no_secret(json.dumps(value), f"XCom {entry['task_id']}/{entry['key']}")


def test_rest_task_logs_hold_no_secret(masking_run: Run) -> None:
    for task_id in EXPECTED_STATES:
        resp = masking_run.stack.api(
            "GET", f"{masking_run.ti_path(task_id)}/logs/1", headers={"Accept": "application/json"}
        )
        assert resp.status_code == 200, resp.text
        assert_no_secret(resp.text, f"the REST log of {task_id}")
        if task_id == "echo_secret":
            assert "direct: [MASKED]" in resp.text


def test_no_file_of_the_deployment_holds_the_secret(masking_run: Run) -> None:
    """Task logs, dag-processor logs, component logs (names and contents): all but the dags folder."""
    stack = masking_run.stack
    checked = 0
    for path in stack.root.rglob("*"):
        if stack.dags_folder == path or stack.dags_folder in path.parents:
            continue
        assert_no_secret(str(path.relative_to(stack.root)), f"the name of {path}")
        if not path.is_file():
            continue
        data = path.read_bytes()
        checked += 1
        for form, value in FORBIDDEN.items():
            assert value.encode() not in data, f"{path} holds the {form} of {KEY}"
    assert checked >= len(EXPECTED_STATES)


def test_metadata_database_holds_no_secret(masking_run: Run) -> None:
    dump = subprocess.run(
        ["pg_dump", "--data-only", "-h", "127.0.0.1", "-U", "postgres", masking_run.stack.db_name],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert dump.returncode == 0, dump.stderr
    assert "ci_stack_masking" in dump.stdout
    assert_no_secret(dump.stdout, "the metadata database")
