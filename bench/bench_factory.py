"""Benchmark: building a DAG from a generated .gitlab-ci.yml against a hand-written DAG of the same shape.

Run: ``.venv/bin/python bench/bench_factory.py`` (not a test). Pipelines: 2,000 jobs in 100 stages
and 500 jobs in 25 stages, every job with a two-line script and every fifth job with ``needs`` on
a job of the previous stage. The hand-written reference builds the same tasks and edges with
``CIJobOperator``, one EmptyOperator gate per stage and the final pipeline status task after
every job. Issue 5 target: the factory's cold build within 1.5x the hand-written DAG. Also
reports the time to load and validate the YAML alone.

Then the parse cache (``[ci_vars] parse_cache_dir``): ``gitlab_ci_dag`` with an empty cache
directory (cold: load, validate, store) against one holding the entry (cached: re-hash the files,
unpickle), and the pipeline step alone (``ParseCache.load``) both ways.

Then astronomer's ``dag-factory`` (installed into this venv with pip when missing; never a
dependency of the package) on an equivalent YAML: the same tasks and edges as the factory's DAG,
a ``BashOperator`` per job running its two commands, an ``EmptyOperator`` gate per stage after
the previous stage's jobs, ``needs`` as direct edges, and a final task after every job (the
factory's ``pipeline`` status task). Issue 5 target: the factory at least 10x faster.
Every figure is the median CPU time of several runs in one process, after one warm-up run.
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-factory-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
# dag-factory would send usage telemetry on every DAG it builds.
os.environ["AIRFLOW__DAG_FACTORY__ENABLE_TELEMETRY"] = "False"
os.environ["DO_NOT_TRACK"] = "1"

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

from airflow_ci_vars.dag_factory import PipelineStatusOperator, gitlab_ci_dag
from airflow_ci_vars.jobs import JobSpec, Need
from airflow_ci_vars.operators import CIJobOperator
from airflow_ci_vars.pipeline.cache import ParseCache
from airflow_ci_vars.pipeline.config import load_config
from airflow_ci_vars.pipeline.model import build_pipeline
from airflow_ci_vars.pipeline.seed import seed_variables

#: The latest dag-factory release, which supports Airflow 3 (``load_yaml_dags``).
DAG_FACTORY = "dag-factory==1.1.0"


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
        # GitLab's pipeline status, as the factory adds it: one task after every job.
        PipelineStatusOperator(task_id="pipeline", job_task_ids=[t.task_id for t in tasks]).set_upstream(tasks)
    return dag


def bare_dag(jobs: int, stages: int) -> DAG:
    """The factory's DAG shape with ``EmptyOperator`` everywhere: what Airflow alone costs for it."""
    per_stage = jobs // stages
    with DAG(f"bare_{jobs}", schedule=None) as dag:
        tasks: list[EmptyOperator] = []
        previous: list[EmptyOperator] = []
        for stage in range(stages):
            gate = EmptyOperator(task_id=f"stage_s{stage}", trigger_rule="all_done") if previous else None
            if gate is not None:
                gate.set_upstream(previous)
            current = [EmptyOperator(task_id=f"job_{i}") for i in range(stage * per_stage, (stage + 1) * per_stage)]
            for offset, task in enumerate(current):
                i = stage * per_stage + offset
                if i % 5 == 0 and stage > 0:
                    task.set_upstream(tasks[i - per_stage])
            if gate is not None:
                gate.set_downstream([t for o, t in enumerate(current) if (stage * per_stage + o) % 5 != 0])
            tasks += current
            previous = current
        EmptyOperator(task_id="pipeline", trigger_rule="all_done").set_upstream(tasks)
    return dag


def write_dag_factory_yaml(path: Path, dag_id: str, jobs: int, stages: int) -> None:
    """dag-factory's YAML for the DAG the factory builds from ``write_pipeline(jobs, stages)``."""
    per_stage = jobs // stages
    bash = "airflow.providers.standard.operators.bash.BashOperator"
    empty = "airflow.providers.standard.operators.empty.EmptyOperator"
    lines = [f"{dag_id}:", "  schedule: null", "  catchup: false", "  tasks:"]
    for stage in range(stages):
        if stage:
            previous = ", ".join(f"job_{i}" for i in range((stage - 1) * per_stage, stage * per_stage))
            lines += [
                f"    stage_s{stage}:",
                f"      operator: {empty}",
                "      trigger_rule: all_done",
                f"      dependencies: [{previous}]",
            ]
        for i in range(stage * per_stage, (stage + 1) * per_stage):
            lines += [f"    job_{i}:", f"      operator: {bash}", f'      bash_command: "echo job {i}; echo done"']
            if i % 5 == 0 and stage > 0:
                lines.append(f"      dependencies: [job_{i - per_stage}]")
            elif stage > 0:
                lines.append(f"      dependencies: [stage_s{stage}]")
    every = ", ".join(f"job_{i}" for i in range(jobs))
    lines += [
        "    pipeline:",
        f"      operator: {empty}",
        "      trigger_rule: all_done",
        f"      dependencies: [{every}]",
    ]
    path.write_text("\n".join(lines) + "\n")


def ensure_dag_factory() -> None:
    """Install dag-factory into this interpreter's environment (the venv) when it is missing."""
    if importlib.util.find_spec("dagfactory") is None:
        print(f"installing {DAG_FACTORY} into {sys.prefix} (benchmark only)", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", DAG_FACTORY], check=True)


def timed(fn: Callable[[], object], repeats: int, *, before: Callable[[], object] | None = None) -> float:
    """Median CPU time of ``fn`` over ``repeats`` runs after one warm-up; ``before`` runs untimed first.

    CPU time of this process, not wall time: the 2-core machine is shared, and wall times of the
    same build varied by half from run to run while CPU times did not (files read are page-cached).
    """
    samples = []
    for run in range(repeats + 1):
        if before is not None:
            before()
        start = time.process_time()
        fn()
        if run:
            samples.append(time.process_time() - start)
    return statistics.median(samples)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f}ms"


def build_once(kind: str, jobs: int, stages: int, source: Path) -> None:
    """Build one DAG the way a fresh parse would and print its CPU time in ms (``--once``)."""
    # Imported before timing: Airflow's dag-processor pre-imports what a DAG file imports.
    import airflow.providers.standard.operators.bash  # noqa: F401

    import airflow_ci_vars.operators.child_pipeline  # noqa: F401

    builders: dict[str, Callable[[], object]] = {
        "hand-written": lambda: hand_written(jobs, stages),
        "factory": lambda: gitlab_ci_dag(source, dag_id=f"f_{jobs}"),
        "EmptyOperator": lambda: bare_dag(jobs, stages),
    }
    if kind == "dag-factory":
        from dagfactory import load_yaml_dags

        builders[kind] = lambda: load_yaml_dags(globals_dict={}, config_filepath=str(source))
    start = time.process_time()
    builders[kind]()
    print(f"{(time.process_time() - start) * 1000:.1f}")


def fresh_process(kind: str, jobs: int, stages: int, source: Path, repeats: int, cache: Path | None = None) -> float:
    """Median CPU time of building the DAG in a new Python process each time (as every parse is).

    ``cache``: the parse cache directory (a new empty one for each run when None).
    """
    samples = []
    for run in range(repeats):
        directory = cache if cache is not None else source.parent / f"fresh-cache-{kind}-{run}"
        env = {**os.environ, "AIRFLOW__CI_VARS__PARSE_CACHE_DIR": str(directory)}
        command = [sys.executable, __file__, "--once", kind, str(jobs), str(stages), str(source)]
        out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
        samples.append(float(out.split()[-1]) / 1000)
    return statistics.median(samples)


def main() -> None:
    ensure_dag_factory()
    from dagfactory import load_yaml_dags

    tmp = Path(tempfile.mkdtemp(prefix="bench-pipelines-"))
    sizes = ((500, 25, 5), (2000, 100, 5))
    cache_dirs = iter(tmp / f"cache-{n}" for n in range(1_000_000))

    def use_cache(directory: Path) -> None:
        os.environ["AIRFLOW__CI_VARS__PARSE_CACHE_DIR"] = str(directory)

    print("DAG build (median CPU time): factory vs hand-written CIJobOperator DAG with stage gates")
    print(f"{'jobs':>6} {'stages':>6} {'load+validate':>14} {'factory':>10} {'hand-written':>13} {'ratio':>7}")
    rows = []
    for jobs, stages, repeats in sizes:
        path = tmp / f"p{jobs}" / ".gitlab-ci.yml"
        path.parent.mkdir()
        write_pipeline(path, jobs, stages)

        def load(path: Path = path) -> None:
            c = load_config(path)
            build_pipeline(file=str(path), stages=c.stages, variables=c.variables, jobs=c.jobs)

        t_load = timed(load, repeats)
        # Cold: every build finds an empty cache directory (loads, validates and stores the pipeline).
        t_cold = timed(
            lambda path=path, jobs=jobs: gitlab_ci_dag(path, dag_id=f"f_{jobs}"),
            repeats,
            before=lambda: use_cache(next(cache_dirs)),
        )
        assert len(hand_written(jobs, stages).tasks) == len(gitlab_ci_dag(path, dag_id="shape").tasks) == jobs + stages
        t_hand = timed(lambda jobs=jobs, stages=stages: hand_written(jobs, stages), repeats)
        print(f"{jobs:>6} {stages:>6} {ms(t_load):>14} {ms(t_cold):>10} {ms(t_hand):>13} {t_cold / t_hand:>6.2f}x")
        rows.append((jobs, stages, repeats, path, t_cold, t_hand))
    sys.stdout.flush()

    print("\nParse cache (median CPU time): gitlab_ci_dag cold (empty cache) vs cached; the pipeline step alone")
    print(
        f"{'jobs':>6} {'DAG cold':>10} {'DAG cached':>11} {'saved':>8} {'cached/hand':>12} "
        f"{'pipeline cold':>14} {'pipeline cached':>16}"
    )
    cached_times = {}
    seed = seed_variables(ref="main", project=None)
    for jobs, _stages, repeats, path, t_cold, t_hand in rows:
        warm = next(cache_dirs)
        use_cache(warm)
        gitlab_ci_dag(path, dag_id=f"f_{jobs}")  # stores the entry
        t_cached = timed(lambda path=path, jobs=jobs: gitlab_ci_dag(path, dag_id=f"f_{jobs}"), repeats)
        empty = [warm]  # the cold runs' directory, a new one before each run

        def new_directory(empty: list[Path] = empty) -> None:
            empty[0] = next(cache_dirs)

        resolved = path.resolve()
        t_pipe_cold = timed(
            lambda p=resolved, e=empty: ParseCache(e[0]).load(p, seed=seed), repeats, before=new_directory
        )
        t_pipe_cached = timed(lambda p=resolved, w=warm: ParseCache(w).load(p, seed=seed), repeats)
        cached_times[jobs] = t_cached
        print(
            f"{jobs:>6} {ms(t_cold):>10} {ms(t_cached):>11} {ms(t_cold - t_cached):>8} {t_cached / t_hand:>11.2f}x "
            f"{ms(t_pipe_cold):>14} {ms(t_pipe_cached):>16}"
        )
    sys.stdout.flush()

    print("\nastronomer dag-factory (median CPU time) on an equivalent YAML (BashOperator tasks, stage gates);")
    print("'EmptyOperator DAG': the same shape, hand-written with EmptyOperator only (Airflow's own cost)")
    print(
        f"{'jobs':>6} {'dag-factory':>12} {'ours cold':>10} {'ours cached':>12} {'x cold':>7} {'x cached':>9} "
        f"{'EmptyOperator DAG':>18}"
    )
    for jobs, stages, repeats, _path, t_cold, _hand in rows:
        yaml_path = tmp / f"dagfactory_{jobs}.yml"
        write_dag_factory_yaml(yaml_path, f"df_{jobs}", jobs, stages)
        namespace: dict[str, object] = {}
        load_yaml_dags(globals_dict=namespace, config_filepath=str(yaml_path))
        built = namespace[f"df_{jobs}"]
        assert len(built.tasks) == jobs + stages, len(built.tasks)  # type: ignore[attr-defined]
        t_df = timed(lambda p=yaml_path: load_yaml_dags(globals_dict={}, config_filepath=str(p)), repeats)
        t_cached = cached_times[jobs]
        bare = bare_dag(jobs, stages)
        assert len(bare.tasks) == jobs + stages
        t_bare = timed(lambda jobs=jobs, stages=stages: bare_dag(jobs, stages), repeats)
        print(
            f"{jobs:>6} {ms(t_df):>12} {ms(t_cold):>10} {ms(t_cached):>12} "
            f"{t_df / t_cold:>6.1f}x {t_df / t_cached:>8.1f}x {ms(t_bare):>18}"
        )
    sys.stdout.flush()

    print("\nIn a fresh process per build, as Airflow parses (median CPU time; imports done before timing)")
    print(
        f"{'jobs':>6} {'hand-written':>13} {'ours cold':>10} {'ours cached':>12} {'dag-factory':>12} "
        f"{'EmptyOperator':>14} {'cold/hand':>10} {'cached/hand':>12} {'df/cold':>8} {'df/cached':>10}"
    )
    for jobs, stages, repeats, path, _cold, _hand in rows:
        warm = next(cache_dirs)
        fresh_process("factory", jobs, stages, path, 1, warm)  # stores the entry
        hand = fresh_process("hand-written", jobs, stages, path, repeats)
        cold = fresh_process("factory", jobs, stages, path, repeats)
        cached = fresh_process("factory", jobs, stages, path, repeats, warm)
        df = fresh_process("dag-factory", jobs, stages, tmp / f"dagfactory_{jobs}.yml", repeats)
        bare = fresh_process("EmptyOperator", jobs, stages, path, repeats)
        print(
            f"{jobs:>6} {ms(hand):>13} {ms(cold):>10} {ms(cached):>12} {ms(df):>12} {ms(bare):>14} "
            f"{cold / hand:>9.2f}x {cached / hand:>11.2f}x {df / cold:>7.1f}x {df / cached:>9.1f}x"
        )
        sys.stdout.flush()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--once"]:
        build_once(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5]))
    else:
        main()
