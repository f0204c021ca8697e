"""50 runs triggered at once over REST stay isolated from each other, on both executors.

Each run of tests/stack/dags/rest/load gets its own ``RUN_TAG`` build parameter. ``produce``
(``tags: [worker-1]``) prints it and hands on ``DERIVED`` (the first 16 hex digits of its
SHA-256) in a dotenv report; ``consume`` (``tags: [worker-2]``, so another Celery worker) prints
both. All 50 requests are released together (scripts/rest_load.py), from 50 connections. Every
run must succeed, and every job must have seen its own run's parameter and its own upstream's
report only, read back through the REST API (logs and XComs) as a user would.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from airflow_stack import AirflowStack
from rest_load import TriggeredRun, trigger_concurrently, wait_for_runs

pytestmark = pytest.mark.stack

DAG_ID = "ci_stack_rest_load"
RUNS = 50
# The lines each job prints about what it saw (any run's values, so that a leak shows up).
PRODUCE_LINE = re.compile(r"^produce saw RUN_TAG=<(.*)>$")
CONSUME_LINE = re.compile(r"^consume saw RUN_TAG=<(.*)> DERIVED=<(.*)>$")


def derived(tag: str) -> str:
    """What ``produce`` writes to its dotenv report for ``tag``."""
    return hashlib.sha256(tag.encode()).hexdigest()[:16]


@dataclass
class Load:
    stack: AirflowStack
    triggered: list[TriggeredRun]
    runs: dict[str, dict[str, Any]]

    def tag(self, run: TriggeredRun) -> str:
        return str(run.conf["build_parameters"]["RUN_TAG"])

    def log_lines(self, run: TriggeredRun, task_id: str) -> list[str]:
        return [str(e.get("event", "")) for e in self.stack.rest_log_events(DAG_ID, run.run_id, task_id)]

    def task_instances(self, run: TriggeredRun) -> dict[str, dict[str, Any]]:
        return {ti["task_id"]: ti for ti in self.stack.task_instances(DAG_ID, run.run_id)}


@pytest.fixture(scope="module")
def load(executor_stack: AirflowStack) -> Load:
    # Distinct, and no tag is a prefix of another one (run-07 vs run-07x): a leak cannot hide.
    confs = [{"build_parameters": {"RUN_TAG": f"run-{i:02d}-{executor_stack.executor}"}} for i in range(RUNS)]
    triggered = trigger_concurrently(executor_stack, DAG_ID, confs)
    runs = wait_for_runs(executor_stack, DAG_ID, [t.run_id for t in triggered], timeout=900)
    return Load(executor_stack, triggered, runs)


def test_every_run_succeeds(load: Load) -> None:
    assert len({t.run_id for t in load.triggered}) == RUNS
    states = {t.run_id: load.runs[t.run_id]["state"] for t in load.triggered}
    assert [run_id for run_id, state in states.items() if state != "success"] == []


def test_each_producer_saw_only_its_own_parameter(load: Load) -> None:
    for run in load.triggered:
        seen = [m.group(1) for line in load.log_lines(run, "produce") if (m := PRODUCE_LINE.match(line))]
        assert seen == [load.tag(run)], f"run {run.run_id}"


def test_each_dotenv_report_is_derived_from_its_own_parameter(load: Load) -> None:
    for run in load.triggered:
        path = f"/dags/{DAG_ID}/dagRuns/{run.run_id}/taskInstances/produce/xcomEntries/dotenv"
        value = load.stack.get_json(path)["value"]
        report = json.loads(value) if isinstance(value, str) else value
        assert report == {"DERIVED": derived(load.tag(run))}, f"run {run.run_id}"


def test_each_consumer_saw_its_own_parameter_and_its_own_upstream_report(load: Load) -> None:
    for run in load.triggered:
        seen = [m.groups() for line in load.log_lines(run, "consume") if (m := CONSUME_LINE.match(line))]
        assert seen == [(load.tag(run), derived(load.tag(run)))], f"run {run.run_id}"


def test_jobs_ran_where_their_tags_send_them(load: Load) -> None:
    """On Celery the producer and the consumer of every run ran on different workers."""
    for run in load.triggered:
        tis = load.task_instances(run)
        assert (tis["produce"]["queue"], tis["consume"]["queue"]) == ("worker-1", "worker-2")
        if load.stack.executor == "celery":
            assert (tis["produce"]["hostname"], tis["consume"]["hostname"]) == ("worker-1", "worker-2")
