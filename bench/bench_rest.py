"""Benchmark: 50 pipelines triggered at once over REST, on LocalExecutor and on CeleryExecutor.

Run with ``.venv/bin/python bench/bench_rest.py [--runs 50] [--executors local,celery]`` (not a
test). It needs what the stack tests need: the local PostgreSQL server (127.0.0.1:5432, trust
auth), ``asyncpg``, and for Celery the Redis server (127.0.0.1:6379) and the Celery provider.

Each executor gets its own deployment (scripts/airflow_stack.py: api-server, scheduler,
dag-processor, triggerer, a fresh PostgreSQL database; Celery: two workers, ``--concurrency``
slots each) running the pipeline of tests/stack/test_rest_load.py (tests/stack/dags/rest/load):
``produce`` (``tags: [worker-1]``) writes a dotenv value derived from the run's ``RUN_TAG``
build parameter, ``consume`` (``tags: [worker-2]``) prints both; with the factory's pipeline
status task that is three task processes per run. After one warm-up run, ``--runs`` runs are
triggered at once (one thread and connection each, released together, logged in as ``admin``
with a JWT from ``POST /auth/token``) with distinct build parameters, then awaited.

* **runs/min**: ``--runs`` divided by the time from the first request sent to the last run's
  ``end_date``;
* **latency**: per run, its ``end_date`` (server) minus the moment its request was sent (client,
  same machine clock); the median and the maximum are printed.

Every run must succeed and every ``consume`` must have printed its own run's values, else the
benchmark fails. The load average is printed too: the machine may be shared.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from airflow_stack import AirflowStack  # noqa: E402
from rest_load import LoadSummary, summarize, trigger_concurrently, wait_for_runs  # noqa: E402

DAGS = ROOT / "tests" / "stack" / "dags"
DAG_ID = "ci_stack_rest_load"


def _stack(executor: str, concurrency: int, parallelism: int, keep: bool) -> AirflowStack:
    stack = AirflowStack(
        [DAGS / "stack_rest_load.py"],
        executor=executor,
        workers=2,
        worker_concurrency=concurrency,
        parallelism=parallelism,
        all_admins=False,
        # Parsed once: re-parsing every few seconds would compete with the tasks for CPU.
        min_file_process_interval=300,
        keep=keep,
    )
    shutil.copytree(DAGS / "rest" / "load", stack.dags_folder / "rest" / "load")
    return stack


def _check(stack: AirflowStack, run_id: str, tag: str) -> None:
    derived = hashlib.sha256(tag.encode()).hexdigest()[:16]
    events = stack.rest_log_events(DAG_ID, run_id, "consume")
    expected = f"consume saw RUN_TAG=<{tag}> DERIVED=<{derived}>"
    if expected not in [str(e.get("event", "")) for e in events]:
        raise RuntimeError(f"run {run_id}: consume did not print {expected!r}")


def measure(executor: str, runs: int, concurrency: int, parallelism: int, keep: bool) -> LoadSummary:
    """Start a deployment, warm it up, trigger ``runs`` runs at once; their summary."""
    stack = _stack(executor, concurrency, parallelism, keep)
    try:
        stack.start()
        stack.wait_for_dag(DAG_ID, timeout=120)
        warm = stack.trigger(DAG_ID, conf={"build_parameters": {"RUN_TAG": "warm-up"}})
        if stack.wait(DAG_ID, warm, timeout=300) != "success":
            raise RuntimeError(f"the warm-up run {warm} failed")
        slots = f"{2 * concurrency} Celery slots" if executor == "celery" else f"parallelism {parallelism}"
        print(
            f"{executor}: up in {stack.startup_seconds:.1f} s ({slots}); load average "
            f"{os.getloadavg()[0]:.1f}; triggering {runs} runs at once",
            flush=True,
        )
        confs = [{"build_parameters": {"RUN_TAG": f"bench-{i:03d}"}} for i in range(runs)]
        started = time.monotonic()
        triggered = trigger_concurrently(stack, DAG_ID, confs)
        sent = time.monotonic() - started
        records = wait_for_runs(stack, DAG_ID, [t.run_id for t in triggered], timeout=1800, poll=1.0)
        summary = summarize(triggered, records)
        if summary.succeeded != runs:
            raise RuntimeError(f"{executor}: only {summary.succeeded} of {runs} runs succeeded")
        for t in triggered:
            _check(stack, t.run_id, str(t.conf["build_parameters"]["RUN_TAG"]))
        print(
            f"{executor}: {runs} requests sent in {sent:.1f} s; all succeeded in {summary.span_seconds:.1f} s; "
            f"load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        return summary
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="runs triggered at once (default 50)")
    parser.add_argument("--executors", default="local,celery", help="comma-separated: local, celery")
    parser.add_argument("--concurrency", type=int, default=8, help="task slots per Celery worker (default 8)")
    parser.add_argument("--parallelism", type=int, default=32, help="[core] parallelism (default 32)")
    parser.add_argument("--keep", action="store_true", help="keep the deployments' temp dirs (logs)")
    args = parser.parse_args()

    results = {
        executor: measure(executor, args.runs, args.concurrency, args.parallelism, args.keep)
        for executor in args.executors.split(",")
    }
    print()
    header = f"{'executor':<9} {'runs':>5} {'span s':>8} {'runs/min':>9} {'median latency s':>17} {'max latency s':>14}"
    print(header)
    print("-" * len(header))
    for executor, s in results.items():
        print(
            f"{executor:<9} {s.runs:>5} {s.span_seconds:>8.1f} {s.runs_per_minute:>9.1f} "
            f"{s.median_latency:>17.1f} {s.max_latency:>14.1f}"
        )


if __name__ == "__main__":
    main()
