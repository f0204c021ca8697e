"""``when: delayed`` on the real deployment: the task defers to the triggerer for ``start_in``.

``ci_stack_delayed`` (tests/stack/dags/stack_delayed.py) has one job, ``wait``, delayed 60 s by
its rule (``rules: [{when: delayed, start_in: 60 seconds}]``). Every task of both DAGs is in a
pool of one slot. While ``wait`` waits, its task instance is ``deferred`` and holds no slot: the
job of another DAG in the same pool runs and succeeds meanwhile. Then ``wait`` runs, after its
``start_in``, and succeeds.
"""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from airflow_stack import AirflowStack

pytestmark = pytest.mark.stack

DAG_ID = "ci_stack_delayed"
OTHER_DAG_ID = "ci_stack_delayed_other"
POOL = "ci_stack_one_slot"
START_IN = 60.0


def state_of(stack: AirflowStack, dag_id: str, run_id: str, task_id: str) -> str | None:
    for ti in stack.task_instances(dag_id, run_id):
        if ti["task_id"] == task_id:
            return ti["state"]
    return None


def wait_for_state(stack: AirflowStack, dag_id: str, run_id: str, task_id: str, wanted: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (state := state_of(stack, dag_id, run_id, task_id)) != wanted:
        stack.check_alive()
        assert time.monotonic() < deadline, f"{dag_id}/{task_id} is {state!r}, not {wanted!r}, after {timeout:g} s"
        time.sleep(0.5)


def when(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_a_delayed_job_frees_its_slot_while_it_waits(airflow_stack: AirflowStack) -> None:
    stack = airflow_stack
    reply = stack.api("POST", "/pools", json={"name": POOL, "slots": 1, "include_deferred": False})
    assert reply.status_code in (200, 201, 409), reply.text
    run_id = stack.trigger(DAG_ID)
    wait_for_state(stack, DAG_ID, run_id, "wait", "deferred", timeout=START_IN)
    deferred_at = time.time()
    assert "Delayed job 'wait' starts in 60 seconds" in stack.task_log_text(DAG_ID, run_id, "wait")

    # The pool's only slot is free: another DAG's job runs while `wait` is deferred.
    other_run = stack.trigger(OTHER_DAG_ID)
    wait_for_state(stack, OTHER_DAG_ID, other_run, "meanwhile", "success", timeout=START_IN - 15)
    assert state_of(stack, DAG_ID, run_id, "wait") == "deferred"

    assert stack.wait(DAG_ID, run_id, timeout=START_IN + 90) == "success"
    finished = {ti["task_id"]: ti for ti in stack.task_instances(DAG_ID, run_id)}["wait"]
    assert finished["state"] == "success"
    assert when(finished["end_date"]) >= deferred_at + START_IN - 5  # the moment was set just before
    assert "ran after the delay" in stack.task_log_text(DAG_ID, run_id, "wait")
    assert stack.wait(OTHER_DAG_ID, other_run, timeout=60) == "success"
