"""Jobs pinned to different workers hand values on through Airflow only (tests/stack/dags/distributed).

The pipeline's ``produce`` job (``tags: [worker-1]``) reads a file variable and writes a dotenv
report; ``consume`` (``tags: [worker-2]``, ``needs: [produce]``) receives the report's values
and reads its own, masked, file variable; both print a masked project variable. On
CeleryExecutor the two jobs run on two workers (their own queues); on LocalExecutor the queues
are ignored and both run in the scheduler's processes. The logs are read from the REST API, as
a user would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from airflow_stack import AirflowStack

pytestmark = pytest.mark.stack

DAG_ID = "ci_stack_distributed"
SETTINGS = Path(__file__).parent / "dags" / "distributed" / "settings.yml"
_STORE = yaml.safe_load(SETTINGS.read_text())["projects"]["acme/distributed"]["variables"]
_VARIABLES = {v["key"]: v["value"] for v in _STORE}
TOKEN = _VARIABLES["DIST_TOKEN"]
CONSUMER_KEY = _VARIABLES["CONSUMER_KEY"]


@dataclass
class DistributedRun:
    stack: AirflowStack
    run_id: str
    state: str
    task_instances: dict[str, dict[str, Any]]

    def log(self, task_id: str) -> list[str]:
        """The messages of the task's log, from ``GET .../logs/1``."""
        return [str(e.get("event", "")) for e in self.stack.rest_log_events(DAG_ID, self.run_id, task_id)]

    def raw_log(self, task_id: str) -> str:
        return json.dumps(self.stack.rest_log_events(DAG_ID, self.run_id, task_id))

    def dotenv(self, task_id: str) -> dict[str, str]:
        path = f"/dags/{DAG_ID}/dagRuns/{self.run_id}/taskInstances/{task_id}/xcomEntries/dotenv"
        value = self.stack.get_json(path)["value"]
        return dict(json.loads(value) if isinstance(value, str) else value)


@pytest.fixture(scope="module")
def distributed_run(executor_stack: AirflowStack) -> DistributedRun:
    run_id = executor_stack.trigger(DAG_ID)
    state = executor_stack.wait(DAG_ID, run_id, timeout=180)
    tis = {ti["task_id"]: ti for ti in executor_stack.task_instances(DAG_ID, run_id)}
    return DistributedRun(executor_stack, run_id, state, tis)


def test_pipeline_succeeds(distributed_run: DistributedRun) -> None:
    states = {task_id: distributed_run.task_instances[task_id]["state"] for task_id in ("produce", "consume")}
    assert (distributed_run.state, states) == ("success", {"produce": "success", "consume": "success"})


def test_each_job_runs_on_the_worker_its_tag_names(distributed_run: DistributedRun) -> None:
    produce, consume = distributed_run.task_instances["produce"], distributed_run.task_instances["consume"]
    assert (produce["queue"], consume["queue"]) == ("worker-1", "worker-2")
    if distributed_run.stack.executor == "celery":
        # The hostname is reported by the process that ran the task: each worker has its own.
        assert (produce["hostname"], consume["hostname"]) == ("worker-1", "worker-2")
    else:
        # LocalExecutor ignores queues: both ran on this machine.
        assert produce["hostname"] == consume["hostname"] not in ("", None, "worker-1", "worker-2")


def test_dotenv_values_reach_the_consumer(distributed_run: DistributedRun) -> None:
    report = distributed_run.dotenv("produce")
    assert report["REGION"] == "eu-west-3"  # read from the producer's file variable
    assert report["BUILD_VERSION"].startswith("2.4.") and report["BUILD_VERSION"] != "2.4."
    assert f"received BUILD_VERSION={report['BUILD_VERSION']} REGION=eu-west-3" in distributed_run.log("consume")


def test_file_variables_are_files_on_each_worker(distributed_run: DistributedRun) -> None:
    produce, consume = distributed_run.log("produce"), distributed_run.log("consume")
    assert "producer config is a file" in produce
    assert "producer config: region=eu-west-3" in produce
    assert "consumer key is a file" in consume
    assert "consumer key: [MASKED]" in consume  # a masked file variable: its content is masked


def test_masked_values_are_masked_on_both_workers(distributed_run: DistributedRun) -> None:
    assert "token on producer: [MASKED]" in distributed_run.log("produce")
    assert "token on consumer: [MASKED]" in distributed_run.log("consume")
    for task_id in ("produce", "consume"):
        raw = distributed_run.raw_log(task_id)
        assert TOKEN not in raw, f"{task_id}'s log holds DIST_TOKEN"
        assert CONSUMER_KEY not in raw, f"{task_id}'s log holds the content of CONSUMER_KEY"
