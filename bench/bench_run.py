"""Benchmark: ``airflow-ci-vars run`` against gitlab-ci-local, whole shell pipelines side by side.

Run with ``.venv/bin/python bench/bench_run.py [--rounds 5] [--runners default,airflow,gcl]``
(not a test; about 5 minutes with the default rounds on 2 cores, nearly all of it the airflow
engine, plus a one-off ``npm install`` of about 4 minutes: gitlab-ci-local 4.60.0 into
``~/.cache/airflow-ci-vars-bench/gcl``, see ``bench/gcl.py``). No Docker: every job runs on the
host. Not in ``bench/run_all.py`` (``make bench``) because it needs npm and the network the first
time; figures go to docs/benchmarks.md.

Two pipelines, no ``image:`` anywhere, written into a temporary folder (a git repository):

- 2 jobs: ``build`` writes ``BUILD_VERSION=1.2.3`` into ``build.env`` (``artifacts: reports:
  dotenv:``), ``test`` echoes ``version $BUILD_VERSION`` and exits 1 unless it is 1.2.3;
- 20 jobs in 5 stages: the same dotenv handoff (``version`` then ``test``) and a second one
  (``package`` then ``checksum``/``deploy-*``), two ``parallel: matrix:`` jobs (4 and 3
  instances), jobs ordered by their stage and jobs with ``needs:`` (also ``needs: []``).

Runners, each a fresh process per run of a pipeline:

- **default**: ``airflow-ci-vars run FILE`` (its default engine);
- **airflow**: ``airflow-ci-vars run --engine airflow FILE`` (Airflow's task runner through
  ``dag.test()``, one task at a time). A CLI without ``--engine`` (its ``run --help``) has only
  that engine: then the plain ``airflow-ci-vars run FILE`` is the one runner, labelled airflow;
- **gcl**: gitlab-ci-local 4.60.0 with its shell executor, as ``cd DIR && gitlab-ci-local --home
  DIR/.gcl-home --no-artifacts-to-source --no-color`` and its default concurrency (every job
  whose stage or needs allow it at once, no limit) and no ``--shell-isolation`` (its default: the
  jobs run in the project folder itself; ``--gcl-shell-isolation`` gives each job a copy).

Both airflow-ci-vars runners get ``[ci_vars] isolation`` from ``--isolation`` (default ``auto``:
the bubblewrap sandbox if it works on this machine, else none; the one used is reported) and a
private ``AIRFLOW_HOME`` in the temporary folder (an SQLite metadata DB, migrated in the warm-up).

Timing: one warm-up run of every (runner, pipeline), then ``--rounds`` rounds, each running every
(runner, pipeline) once, the order reversed every other round. A run counts only if it exits 0,
reports every job a success (``JOB: success`` lines of ``airflow-ci-vars run``, ``PASS`` lines of
gitlab-ci-local) and the output of the ``test`` job shows ``version 1.2.3``. A runner whose
warm-up fails is dropped and reported with the reason; a timed run that fails is not counted and
is listed. Prints a markdown table per runner and pipeline: median, min and max wall time and the
ratio of the median to gitlab-ci-local's.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from gcl import (
    CI_VARS_SUCCESS,
    CLI,
    GCL_BIN,
    GCL_SUCCESS,
    GCL_VERSION,
    ROOT,
    Runner,
    Timings,
    ensure_gitlab_ci_local,
    make_project,
    time_pipelines,
)

sys.path.insert(0, str(ROOT))

from airflow_ci_vars.isolation import choose_isolation

TWO_JOBS = """\
stages: [build, test]
build:
  stage: build
  script:
    - echo BUILD_VERSION=1.2.3 > build.env
  artifacts:
    reports:
      dotenv: build.env
test:
  stage: test
  script:
    - echo "version $BUILD_VERSION"
    - if [ "$BUILD_VERSION" != 1.2.3 ]; then exit 1; fi
"""

# 20 job instances: 2 + 4 + 1 (build), 1 + 3 + 2 (test), 3 (package), 4 (deploy).
TWENTY_JOBS = """\
stages: [prepare, build, test, package, deploy]
variables:
  APP: bench
version:
  stage: prepare
  script:
    - echo BUILD_VERSION=1.2.3 > version.env
  artifacts:
    reports:
      dotenv: version.env
lint:
  stage: prepare
  needs: []
  script:
    - echo "lint $APP"
    - test "$APP" = bench
compile:
  stage: build
  parallel:
    matrix:
      - OS: [linux, mac]
        ARCH: [amd64, arm64]
  script:
    - echo "compile $OS/$ARCH $BUILD_VERSION"
    - test "$BUILD_VERSION" = 1.2.3
docs:
  stage: build
  needs: [version]
  script:
    - echo "docs $BUILD_VERSION"
    - test "$BUILD_VERSION" = 1.2.3
test:
  stage: test
  needs: [version]
  script:
    - echo "version $BUILD_VERSION"
    - if [ "$BUILD_VERSION" != 1.2.3 ]; then exit 1; fi
unit:
  stage: test
  parallel:
    matrix:
      - SUITE: [core, api, cli]
  script:
    - echo "unit $SUITE"
    - test -n "$SUITE"
integration:
  stage: test
  needs: [version, docs]
  script:
    - echo "integration $BUILD_VERSION"
    - test "$BUILD_VERSION" = 1.2.3
smoke:
  stage: test
  script:
    - echo "smoke $APP $BUILD_VERSION"
    - test "$BUILD_VERSION" = 1.2.3
package:
  stage: package
  needs: [version, test]
  script:
    - echo "PACKAGE=$APP-$BUILD_VERSION.tar" > package.env
  artifacts:
    reports:
      dotenv: package.env
publish-docs:
  stage: package
  needs: [docs]
  script:
    - echo "publish docs"
coverage:
  stage: package
  script:
    - echo "coverage of $APP"
checksum:
  stage: deploy
  needs: [package]
  script:
    - echo "checksum $PACKAGE"
    - test "$PACKAGE" = bench-1.2.3.tar
deploy-staging:
  stage: deploy
  needs: [package]
  script:
    - echo "deploy $PACKAGE to staging"
    - test "$PACKAGE" = bench-1.2.3.tar
deploy-production:
  stage: deploy
  needs: [package, integration]
  script:
    - echo "deploy $PACKAGE to production"
    - test "$PACKAGE" = bench-1.2.3.tar
notify:
  stage: deploy
  script:
    - echo "done $PACKAGE"
    - test "$PACKAGE" = bench-1.2.3.tar
"""

PIPELINES = {2: TWO_JOBS, 20: TWENTY_JOBS}
# The test job's output line: `test > version 1.2.3` (gitlab-ci-local pads the job name).
VERSION_SHOWN = re.compile(r"^test\s*> version 1\.2\.3\s*$", re.MULTILINE)
RUNNER_KEYS = ("default", "airflow", "gcl")


def engine_choices() -> list[str]:
    """The engines of this checkout's ``airflow-ci-vars run --engine`` (none without the option)."""
    shown = subprocess.run([str(CLI), "run", "--help"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"--engine \{([^}]*)\}", shown)
    return found.group(1).split(",") if found else []


def runners(args: argparse.Namespace, airflow_home: Path, engines: list[str]) -> list[Runner]:
    """The chosen runners, in table order."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_HOME"))}
    ci_vars_env = {**base, "AIRFLOW_HOME": str(airflow_home), "AIRFLOW__CI_VARS__ISOLATION": args.isolation}
    gcl = (str(GCL_BIN), "--no-artifacts-to-source", "--no-color")
    if args.gcl_shell_isolation:
        gcl += ("--shell-isolation",)
    chosen = [key.strip() for key in args.runners.split(",") if key.strip()]
    unknown = sorted(set(chosen) - set(RUNNER_KEYS))
    if unknown:
        raise SystemExit(f"--runners: unknown {', '.join(unknown)}; choose from {', '.join(RUNNER_KEYS)}")
    if not engines and "default" in chosen:
        print("airflow-ci-vars run has no --engine: its one engine is airflow (dag.test())", flush=True)
        chosen = [key for key in chosen if key != "default"]
        if "airflow" not in chosen:
            chosen.insert(0, "airflow")
    made = {
        # The default engine is named after the first of --engine's choices that is not airflow.
        "default": Runner(
            next((f"{e} (default)" for e in engines if e != "airflow"), "default"),
            (str(CLI), "run"),
            ci_vars_env,
            CI_VARS_SUCCESS,
        ),
        "airflow": Runner(
            "airflow",
            (str(CLI), "run", "--engine", "airflow") if engines else (str(CLI), "run"),
            ci_vars_env,
            CI_VARS_SUCCESS,
        ),
        "gcl": Runner(f"gcl {GCL_VERSION}", gcl, base, GCL_SUCCESS, in_folder=True),
    }
    return [made[key] for key in RUNNER_KEYS if key in chosen]


def isolation_used(mode: str) -> str:
    """What ``[ci_vars] isolation = mode`` gives on this machine (``auto`` tries bubblewrap)."""
    try:
        chosen = choose_isolation(mode)
    except Exception as exc:
        return f"{mode}: {exc}"
    reason = getattr(chosen, "reason", None)
    used = type(chosen).__name__.lower().replace("unisolated", "none")
    return f"{mode} -> {used}" + (f" ({reason})" if reason else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds after the warm-up (default 5)")
    parser.add_argument(
        "--runners", default=",".join(RUNNER_KEYS), help="comma-separated, of %(default)s (default: all)"
    )
    parser.add_argument(
        "--isolation",
        choices=("auto", "sandbox", "none"),
        default="auto",
        help="[ci_vars] isolation of the airflow-ci-vars runners (default auto)",
    )
    parser.add_argument("--gcl-shell-isolation", action="store_true", help="run gitlab-ci-local with --shell-isolation")
    args = parser.parse_args()

    engines = engine_choices()
    isolation_before = isolation_used(args.isolation)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        all_runners = runners(args, Path(tmp) / "airflow-home", engines)
        if any(r.in_folder for r in all_runners):
            ensure_gitlab_ci_local()
        sizes = tuple(PIPELINES)
        # One project per (runner, pipeline): a run never sees another runner's state folders.
        files = {
            (r.name, n): make_project(Path(tmp) / f"{i}-{n}", PIPELINES[n])
            for i, r in enumerate(all_runners)
            for n in sizes
        }
        timings = time_pipelines(all_runners, files, sizes, args.rounds, VERSION_SHOWN)
    isolation_after = isolation_used(args.isolation)
    print(f"airflow-ci-vars run --engine: {', '.join(engines) if engines else 'none (the airflow engine only)'}")
    if isolation_after == isolation_before:
        print(f"[ci_vars] isolation: {isolation_before}")
    else:
        print(f"[ci_vars] isolation CHANGED during the runs: {isolation_before} at first, {isolation_after} at last")
    print(
        f"gitlab-ci-local {GCL_VERSION}: shell executor, default concurrency (no limit), "
        f"--shell-isolation {'on' if args.gcl_shell_isolation else 'off'}"
    )
    print(
        f"load average (1 min): {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, "
        f"on {os.cpu_count()} CPUs"
    )
    report(all_runners, sizes, timings, args.rounds)


def report(all_runners: list[Runner], sizes: tuple[int, ...], timings: Timings, rounds: int) -> None:
    """Print the markdown table: median, min, max and the median's ratio to gitlab-ci-local's."""
    times = timings.times
    medians = {key: statistics.median(values) for key, values in times.items() if values}
    gcl = next((r.name for r in all_runners if r.in_folder and r.name not in timings.dropped), None)
    print()
    print(f"Wall time of a whole run, {rounds} round(s) after a warm-up (s); x gcl: median / gitlab-ci-local's median.")
    print()
    print("| runner | pipeline | runs | median (s) | min (s) | max (s) | x gcl |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for runner in all_runners:
        for n in sizes:
            if runner.name in timings.dropped:
                print(f"| {runner.name} | {n} jobs | 0 | failed | | | |")
                continue
            values = times[(runner.name, n)]
            if not values:
                print(f"| {runner.name} | {n} jobs | 0 | no run counted | | | |")
                continue
            base = medians.get((gcl, n)) if gcl else None
            ratio = f"{medians[(runner.name, n)] / base:.2f}" if base else "-"
            print(
                f"| {runner.name} | {n} jobs | {len(values)} | {medians[(runner.name, n)]:.2f} | "
                f"{min(values):.2f} | {max(values):.2f} | {ratio} |"
            )
    for name, reason in timings.dropped.items():
        print(f"\n{name} dropped after its warm-up: {reason}")
    for failure in timings.failures:
        print(f"\nnot counted: {failure}")


if __name__ == "__main__":
    main()
