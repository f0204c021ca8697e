"""Many REST-triggered runs at once on an :class:`~airflow_stack.AirflowStack`, and how they ended.

Used by tests/stack/test_rest_load.py (isolation under load) and bench/bench_rest.py (runs per
minute). :func:`trigger_concurrently` sends one ``POST /api/v2/dags/{dag_id}/dagRuns`` per conf
from its own thread and HTTP connection, all released together by a barrier, as independent
clients would; :func:`wait_for_runs` polls the DAG's run list until every run has ended;
:func:`summarize` turns both into runs per minute and trigger-to-finish latencies.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from airflow_stack import TERMINAL_RUN_STATES, AirflowStack, StackError

__all__ = ["LoadSummary", "TriggeredRun", "summarize", "trigger_concurrently", "wait_for_runs"]

# GET .../dagRuns pages ([api] maximum_page_limit is 100 by default).
_PAGE = 100


@dataclass(frozen=True, slots=True)
class TriggeredRun:
    """One run created over REST: its conf, its id and when the request was sent (epoch seconds)."""

    index: int
    conf: Mapping[str, Any]
    run_id: str
    sent_at: float


@dataclass(frozen=True, slots=True)
class LoadSummary:
    """What a batch of runs achieved, from the first request sent to the last run's ``end_date``."""

    runs: int
    succeeded: int
    span_seconds: float
    runs_per_minute: float
    median_latency: float
    max_latency: float


def trigger_concurrently(
    stack: AirflowStack, dag_id: str, confs: Sequence[Mapping[str, Any]], *, user: str | None = None
) -> list[TriggeredRun]:
    """Trigger one run per conf, all at once; raise ``StackError`` unless every answer is HTTP 200."""
    stack.wait_for_dag(dag_id)
    headers = {"Authorization": f"Bearer {stack.token(user)}"}
    barrier = threading.Barrier(len(confs))

    def trigger(index: int) -> TriggeredRun:
        conf = confs[index]
        with httpx.Client(base_url=stack.base_url, headers=headers, timeout=120) as client:
            barrier.wait(timeout=60)
            sent_at = time.time()
            resp = client.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": dict(conf)})
        if resp.status_code != 200:
            raise StackError(f"trigger {dag_id} #{index}: HTTP {resp.status_code}: {resp.text[:500]}")
        return TriggeredRun(index, conf, str(resp.json()["dag_run_id"]), sent_at)

    with ThreadPoolExecutor(max_workers=len(confs)) as pool:
        return list(pool.map(trigger, range(len(confs))))


def _runs_of(stack: AirflowStack, dag_id: str) -> dict[str, dict[str, Any]]:
    runs: dict[str, dict[str, Any]] = {}
    offset = 0
    while True:
        page = stack.get_json(f"/dags/{dag_id}/dagRuns", params={"limit": _PAGE, "offset": offset})
        for run in page["dag_runs"]:
            runs[str(run["dag_run_id"])] = run
        offset += _PAGE
        if offset >= int(page["total_entries"]):
            return runs


def wait_for_runs(
    stack: AirflowStack, dag_id: str, run_ids: Sequence[str], *, timeout: float = 600.0, poll: float = 2.0
) -> dict[str, dict[str, Any]]:
    """Wait until every run has ended (``success`` or ``failed``); their REST records by run id."""
    deadline = time.monotonic() + timeout
    while True:
        stack.check_alive()
        runs = _runs_of(stack, dag_id)
        missing = [run_id for run_id in run_ids if run_id not in runs]
        if missing:
            raise StackError(f"{len(missing)} run(s) of {dag_id} are not listed, e.g. {missing[0]!r}")
        mine = {run_id: runs[run_id] for run_id in run_ids}
        if all(run["state"] in TERMINAL_RUN_STATES for run in mine.values()):
            return mine
        if time.monotonic() > deadline:
            counts: dict[str, int] = {}
            for run in mine.values():
                counts[run["state"]] = counts.get(run["state"], 0) + 1
            raise StackError(f"runs of {dag_id} not finished after {timeout:g} s: {counts}")
        time.sleep(poll)


def _epoch(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def summarize(triggered: Sequence[TriggeredRun], runs: Mapping[str, Mapping[str, Any]]) -> LoadSummary:
    """Runs per minute over the whole batch and each run's latency: its ``end_date`` (server)
    minus the moment its request was sent (client; same machine, so the same clock)."""
    latencies = [_epoch(runs[t.run_id]["end_date"]) - t.sent_at for t in triggered]
    span = max(_epoch(runs[t.run_id]["end_date"]) for t in triggered) - min(t.sent_at for t in triggered)
    return LoadSummary(
        runs=len(triggered),
        succeeded=sum(1 for t in triggered if runs[t.run_id]["state"] == "success"),
        span_seconds=span,
        runs_per_minute=len(triggered) / span * 60,
        median_latency=statistics.median(latencies),
        max_latency=max(latencies),
    )
