"""Artifacts (``artifacts:paths``) and masked values, on a real deployment.

A job writes a file whose *name* holds the masked ``ACME_CREDENTIAL`` (its content too, which
GitLab keeps in clear as well: artifacts are the job's own files) and hands ``dist/`` on to the
next job. The logs must stay masked, and the 'artifacts' XCom (only the storage location; the
file list stays in the artifact storage) must not hold the secret either. When the module ends its run is
deleted (XComs go with it) and its artifact files removed, so the deployment-wide scans of
test_log_masking.py, which run afterwards, find nothing of it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from airflow_stack import AirflowStack
from leak_checks import assert_no_secret, messages

pytestmark = pytest.mark.stack

DAG_ID = "ci_stack_artifacts"


@dataclass
class ArtifactsRun:
    stack: AirflowStack
    run_id: str
    state: str

    def ti_path(self, task_id: str) -> str:
        return f"/dags/{DAG_ID}/dagRuns/{self.run_id}/taskInstances/{task_id}"


@pytest.fixture(scope="module")
def artifacts_run(airflow_stack: AirflowStack) -> Iterator[ArtifactsRun]:
    run_id = airflow_stack.trigger(DAG_ID)
    state = airflow_stack.wait(DAG_ID, run_id, timeout=120)
    yield ArtifactsRun(airflow_stack, run_id, state)
    resp = airflow_stack.api("DELETE", f"/dags/{DAG_ID}/dagRuns/{run_id}")
    assert resp.status_code == 204, resp.text
    shutil.rmtree(airflow_stack.home / "ci-artifacts" / DAG_ID, ignore_errors=True)


def test_artifacts_are_handed_on_and_logs_stay_masked(artifacts_run: ArtifactsRun) -> None:
    assert artifacts_run.state == "success"
    for task_id in ("make", "use"):
        text = artifacts_run.stack.task_log_text(DAG_ID, artifacts_run.run_id, task_id)
        assert "dist/a-[MASKED].txt" in messages(text), messages(text)
        assert_no_secret(text, f"{task_id}'s log file")
    use = messages(artifacts_run.stack.task_log_text(DAG_ID, artifacts_run.run_id, "use"))
    assert "content: [MASKED]" in use  # the restored file's content, printed by the next job


def test_artifact_manifest_xcom_holds_no_secret(artifacts_run: ArtifactsRun) -> None:
    resp = artifacts_run.stack.api("GET", f"{artifacts_run.ti_path('make')}/xcomEntries/artifacts")
    assert resp.status_code == 200, resp.text
    assert_no_secret(json.dumps(resp.json()), "the 'artifacts' XCom of make")
