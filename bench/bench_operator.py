"""Benchmark: CIJobOperator against BashOperator on a real Airflow deployment (LocalExecutor).

Run with ``.venv/bin/python bench/bench_operator.py [--reps 3] [--tasks 20]`` (not a test). It
needs what the stack tests need: the local PostgreSQL server (127.0.0.1:5432, trust auth) and
``asyncpg``. The deployment is the one of scripts/airflow_stack.py (api-server, scheduler with
LocalExecutor, dag-processor, a fresh PostgreSQL database), started once for both operators.

The DAG: ``--tasks`` (default 20) *independent* tasks, each running ``echo hello; sleep 0.2``:

* ``bench_bash``: ``BashOperator(bash_command="echo hello; sleep 0.2")`` (providers-standard);
* ``bench_cijob``: ``CIJobOperator`` with ``script: [echo hello, sleep 0.2]`` and a small settings
  file (three project variables, one of them masked), so each task does the operator's real
  work: load settings, resolve GitLab's variables, register masks, make a fresh workspace, run
  bash with ``$ command`` echoes and masked streaming output.

By default both DAGs let all their tasks run at once (``max_active_tasks``; ``[core] parallelism``
is 32); on a small machine the per-task figures then mostly measure CPU contention between 20
task processes, so ``--max-active-tasks 2`` (one per core here) is worth running too. Runs are
triggered over REST (``POST /api/v2/dags/{id}/dagRuns``), alternating operators (the order
flips every repetition), after one discarded warm-up run of each. Per run:

* **wall**: from the trigger request to the first poll (every 0.1 s) that sees ``success``;
* **per task**: the mean of ``end_date - start_date`` over the run's task instances
  (``GET .../taskInstances``); the task process's whole life as Airflow records it (DAG file
  parse in the worker, execute, XCom/state calls), without the queueing before it;
* **sum**: the sum of those task durations.

The printed ratio is CIJob/Bash of the means. Issue target: per task at most 1.2x.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from airflow_stack import AirflowStack  # noqa: E402

DAG_FILE = '''
"""Benchmark DAGs written by bench/bench_operator.py."""
from pathlib import Path

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

from airflow_ci_vars.jobs import JobSpec
from airflow_ci_vars.operators import CIJobOperator

N = {tasks}
SETTINGS = Path(__file__).parent / "bench_settings.yml"

with DAG("bench_bash", schedule=None, catchup=False, max_active_tasks={max_active}):
    for i in range(N):
        BashOperator(task_id=f"t{{i:02d}}", bash_command="echo hello; sleep {sleep}")

with DAG("bench_cijob", schedule=None, catchup=False, max_active_tasks={max_active}):
    for i in range(N):
        CIJobOperator(
            task_id=f"t{{i:02d}}",
            job=JobSpec.from_yaml(f"t{{i:02d}}", {{"script": ["echo hello", "sleep {sleep}"]}}),
            settings_file=SETTINGS,
        )
'''

SETTINGS_FILE = """\
project: acme/bench
default_branch: main
projects:
  acme/bench:
    variables:
      - {key: DEPLOY_TOKEN, value: "bench-token-8f3Kq2zX", masked: true}
      - {key: REGION, value: eu-west-1}
      - {key: APP_NAME, value: bench-app}
"""

DAGS = {"bash": "bench_bash", "cijob": "bench_cijob"}


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def one_run(stack: AirflowStack, dag_id: str, timeout: float) -> dict[str, float]:
    started = time.monotonic()
    run_id = stack.trigger(dag_id)
    state = stack.wait(dag_id, run_id, timeout=timeout, poll=0.1)
    wall = time.monotonic() - started
    if state != "success":
        raise RuntimeError(f"{dag_id} run {run_id} ended {state}")
    tis = stack.task_instances(dag_id, run_id)
    durations = [(_ts(ti["end_date"]) - _ts(ti["start_date"])).total_seconds() for ti in tis]
    run = stack.get_json(f"/dags/{dag_id}/dagRuns/{run_id}")
    return {
        "wall": wall,
        "run": (_ts(run["end_date"]) - _ts(run["start_date"])).total_seconds(),
        "sum": sum(durations),
        "per_task": statistics.fmean(durations),
        "max_task": max(durations),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="measured runs per operator (after 1 warm-up)")
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--sleep", type=float, default=0.2)
    parser.add_argument(
        "--max-active-tasks", type=int, default=0, help="tasks of one run at once (default: all of them)"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="per run")
    parser.add_argument("--keep", action="store_true", help="keep the deployment's temp dir (logs)")
    args = parser.parse_args()

    # Parse once, then rarely: re-parsing every few seconds would compete with the tasks for CPU.
    with AirflowStack.running(refresh_interval=2, min_file_process_interval=120, keep=args.keep) as stack:
        (stack.dags_folder / "bench_settings.yml").write_text(SETTINGS_FILE)
        (stack.dags_folder / "bench_dags.py").write_text(
            DAG_FILE.format(tasks=args.tasks, sleep=args.sleep, max_active=args.max_active_tasks or args.tasks)
        )
        for dag_id in DAGS.values():
            stack.wait_for_dag(dag_id, timeout=120)
        print(
            f"stack up in {stack.startup_seconds:.1f} s ({stack.root}); {args.tasks} tasks per run, "
            f"{args.max_active_tasks or args.tasks} at once",
            flush=True,
        )
        for name, dag_id in DAGS.items():
            warm = one_run(stack, dag_id, args.timeout)
            print(f"warm-up {name}: wall {warm['wall']:.2f} s", flush=True)

        results: dict[str, list[dict[str, float]]] = {name: [] for name in DAGS}
        header = (
            f"{'operator':<8} {'rep':>3} {'wall s':>8} {'run s':>8} "
            f"{'sum task s':>11} {'per task s':>11} {'max task s':>11}"
        )
        print(header)
        print("-" * len(header))
        for rep in range(1, args.reps + 1):
            order = list(DAGS.items()) if rep % 2 else list(DAGS.items())[::-1]
            for name, dag_id in order:
                r = one_run(stack, dag_id, args.timeout)
                results[name].append(r)
                print(
                    f"{name:<8} {rep:>3} {r['wall']:>8.2f} {r['run']:>8.2f} {r['sum']:>11.2f} "
                    f"{r['per_task']:>11.2f} {r['max_task']:>11.2f}",
                    flush=True,
                )

    print()
    print(f"{'mean':<8} {'':>3} {'wall s':>8} {'run s':>8} {'sum task s':>11} {'per task s':>11}")
    means = {
        name: {k: statistics.fmean(r[k] for r in runs) for k in ("wall", "run", "sum", "per_task")}
        for name, runs in results.items()
    }
    for name, m in means.items():
        print(f"{name:<8} {'':>3} {m['wall']:>8.2f} {m['run']:>8.2f} {m['sum']:>11.2f} {m['per_task']:>11.2f}")
    ratio = {k: means["cijob"][k] / means["bash"][k] for k in ("wall", "run", "per_task")}
    print()
    print(
        f"ratio CIJob/Bash: wall per run {ratio['wall']:.2f}x, run (server) {ratio['run']:.2f}x, "
        f"per task {ratio['per_task']:.2f}x (target <= 1.20x per task: "
        f"{'met' if ratio['per_task'] <= 1.2 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
