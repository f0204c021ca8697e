"""Benchmark: building a DAG from a generated .gitlab-ci.yml against a hand-written DAG of the same shape.

Run: ``.venv/bin/python bench/bench_factory.py`` (not a test). Pipelines: 2,000 jobs in 100 stages
and 500 jobs in 25 stages, every job with a two-line script and every fifth job with ``needs`` on
a job of the previous stage. The hand-written reference builds the same tasks with
``CIJobOperator`` and one EmptyOperator gate per stage. Issue 5 target: the factory's cold build
within 1.5x the hand-written DAG. Also reports the time to load and validate the YAML alone.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-factory-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

from airflow_ci_vars.dag_factory import gitlab_ci_dag
from airflow_ci_vars.jobs import JobSpec, Need
from airflow_ci_vars.operators import CIJobOperator
from airflow_ci_vars.pipeline.config import load_config
from airflow_ci_vars.pipeline.model import build_pipeline


def write_pipeline(path: Path, jobs: int, stages: int) -> None:
    per_stage = jobs // stages
    lines = ["stages: [" + ", ".join(f"s{i}" for i in range(stages)) + "]", ""]
    for i in range(jobs):
        stage = i // per_stage
        lines += [f"job_{i}:", f"  stage: s{stage}", "  script:", f"    - echo job {i}", "    - echo done"]
        if i % 5 == 0 and stage > 0:
            lines.append(f"  needs: [job_{i - per_stage}]")
    path.write_text("\n".join(lines) + "\n")


def hand_written(jobs: int, stages: int) -> DAG:
    per_stage = jobs // stages
    with DAG(f"hand_{jobs}", schedule=None) as dag:
        tasks = []
        gate = None
        previous: list[CIJobOperator] = []
        for stage in range(stages):
            if previous:
                gate = EmptyOperator(task_id=f"stage_s{stage}", trigger_rule="all_done")
                previous >> gate
            current = []
            for i in range(stage * per_stage, (stage + 1) * per_stage):
                needs = (Need(f"job_{i - per_stage}"),) if i % 5 == 0 and stage > 0 else None
                spec = JobSpec(f"job_{i}", (f"echo job {i}", "echo done"), stage=f"s{stage}", needs=needs)
                task = CIJobOperator(task_id=f"job_{i}", job=spec)
                if needs:
                    tasks[i - per_stage] >> task
                tasks.append(task)
                current.append(task)
            if gate is not None:
                gate >> [
                    t
                    for t, i in zip(current, range(stage * per_stage, (stage + 1) * per_stage), strict=True)
                    if not (i % 5 == 0 and stage > 0)
                ]
            previous = current
    return dag


def timed(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-pipelines-"))
    print("DAG build (median): factory vs hand-written CIJobOperator DAG with stage gates")
    print(f"{'jobs':>6} {'stages':>6} {'load+validate':>14} {'factory':>10} {'hand-written':>13} {'ratio':>7}")
    for jobs, stages, repeats in ((500, 25, 5), (2000, 100, 3)):
        path = tmp / f"p{jobs}" / ".gitlab-ci.yml"
        path.parent.mkdir()
        write_pipeline(path, jobs, stages)

        def load(path: Path = path) -> None:
            c = load_config(path)
            build_pipeline(file=str(path), stages=c.stages, variables=c.variables, jobs=c.jobs)

        t_load = timed(load, repeats)
        t_factory = timed(lambda path=path, jobs=jobs: gitlab_ci_dag(path, dag_id=f"f_{jobs}"), repeats)
        t_hand = timed(lambda jobs=jobs, stages=stages: hand_written(jobs, stages), repeats)
        print(
            f"{jobs:>6} {stages:>6} {t_load * 1000:>12.0f}ms {t_factory * 1000:>8.0f}ms "
            f"{t_hand * 1000:>11.0f}ms {t_factory / t_hand:>6.2f}x"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
