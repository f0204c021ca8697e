"""A manual job played the instant its Human-in-the-loop request exists, on the real deployment.

Each run of ``ci_stack_manual_race`` (tests/stack/dags/stack_manual_race.py) has one optional
manual job, ``play``. A thread per run sends the answer (``PATCH .../hitlDetails``, **Run**) as
soon as Airflow accepts it, i.e. as soon as the task has written its request: a REST client
polling for open requests, or a person who has the task open and clicks at once. That is before
the task parks in ``awaiting_input``, or while it does.

On Airflow 3.3.2's own LocalExecutor most of these runs failed: Airflow moved the answered task
back to ``scheduled`` while its first process was still exiting, the scheduler queued and
started the resumed task, then read the executor's event of that first process (same try
number) and marked the resumed task failed ("finished with state success, but the task
instance's state attribute is queued" or "running"). The stack runs
``airflow_ci_vars.executors.LocalExecutor``, which holds the resumed task back until the first
process has ended. Every run must succeed, and the job's script must run exactly once per run.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from typing import Any

import httpx
import pytest
from airflow_stack import AirflowStack

pytestmark = pytest.mark.stack

DAG_ID = "ci_stack_manual_race"
TASK_ID = "play"
# Measured on the 2-core machine with Airflow's LocalExecutor: 10 of 12 runs failed (26 of 30
# answered just after parking); with the project's executor none did. 12 runs at once take
# about 10 s once the stack is up (30 s with its start).
RUNS = 12
ANSWER_TIMEOUT = 60.0
FINISH_TIMEOUT = 60.0


def play_at_once(client: httpx.Client, run_id: str, answered: dict[str, float], errors: list[str]) -> None:
    """PATCH "Run" until Airflow has the request (404 before), with no pause in between."""
    path = f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{TASK_ID}/-1/hitlDetails"
    started = time.monotonic()
    while time.monotonic() - started < ANSWER_TIMEOUT:
        reply = client.patch(path, json={"chosen_options": ["Run"], "params_input": {"variables": ""}})
        if reply.status_code == 200:
            answered[run_id] = time.monotonic() - started
            return
        if reply.status_code != 404:
            errors.append(f"{run_id}: PATCH answered HTTP {reply.status_code}: {reply.text[:300]}")
            return
    errors.append(f"{run_id}: no Human-in-the-loop request after {ANSWER_TIMEOUT:g} s")


def final_states(stack: AirflowStack, run_ids: list[str]) -> dict[str, tuple[str, str | None]]:
    """(run state, ``play`` state) of every run once all are done; raises with the states if not."""
    deadline = time.monotonic() + FINISH_TIMEOUT
    while True:
        stack.check_alive()
        states: dict[str, tuple[str, Any]] = {}
        for run_id in run_ids:
            run = stack.get_json(f"/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
            ti = stack.get_json(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{TASK_ID}")["state"]
            states[run_id] = (run, ti)
        if all(run in ("success", "failed") for run, _ in states.values()):
            return states
        if time.monotonic() > deadline:
            raise AssertionError(f"runs not finished after {FINISH_TIMEOUT:g} s (run, {TASK_ID}): {states}")
        time.sleep(0.5)


def times_played(stack: AirflowStack, run_id: str) -> int:
    """How many times the job's script printed ``PLAYED <run>``, over every attempt's log."""
    tries = max(int(ti.get("try_number") or 1) for ti in stack.task_instances(DAG_ID, run_id))
    count = 0
    for attempt in range(1, tries + 1):
        with contextlib.suppress(FileNotFoundError):
            for line in stack.task_log_text(DAG_ID, run_id, TASK_ID, attempt, timeout=2).splitlines():
                with contextlib.suppress(ValueError, AttributeError):
                    count += json.loads(line).get("event") == f"PLAYED {run_id}"
    return count


def test_manual_job_played_at_once_runs_exactly_once(airflow_stack: AirflowStack) -> None:
    stack = airflow_stack
    stack.wait_for_dag(DAG_ID)
    token = stack.token()
    run_ids = [f"race_{i:02d}" for i in range(RUNS)]
    answered: dict[str, float] = {}
    errors: list[str] = []
    threads = []
    for run_id in run_ids:
        client = httpx.Client(
            base_url=f"{stack.base_url}/api/v2", headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        stack.trigger(DAG_ID, {"variables": {"RUN": run_id}}, run_id=run_id)
        thread = threading.Thread(target=play_at_once, args=(client, run_id, answered, errors), daemon=True)
        thread.start()
        threads.append((thread, client))
    for thread, client in threads:
        thread.join(ANSWER_TIMEOUT + 30)
        client.close()
    assert not errors, errors
    assert sorted(answered) == run_ids

    states = final_states(stack, run_ids)
    played = {run_id: times_played(stack, run_id) for run_id in run_ids}
    bad = {
        run_id: {"run": run, TASK_ID: ti, "script ran": played[run_id]}
        for run_id, (run, ti) in states.items()
        if (run, ti) != ("success", "success") or played[run_id] != 1
    }
    if bad:
        scheduler = stack.component_log("scheduler").read_text(errors="replace").splitlines()
        mismatches = [line for line in scheduler if "finished with state" in line and DAG_ID in line]
        raise AssertionError(
            f"{len(bad)} of {RUNS} manual jobs played at once did not run exactly once and succeed: {bad}\n"
            "scheduler:\n" + "\n".join(mismatches[:10])
        )
