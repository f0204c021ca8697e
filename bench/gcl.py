"""What the benchmarks against gitlab-ci-local share (bench_containers.py, bench_run.py); not a bench.

gitlab-ci-local 4.60.0 (4.75 needs Node 22, this machine has Node 20), installed with ``npm
install gitlab-ci-local@4.60.0`` into ``~/.cache/airflow-ci-vars-bench/gcl`` when missing (not part
of the project); the pipelines written into a temporary git repository (gitlab-ci-local needs
one), with the user's and the system's git configuration ignored; and the timing of whole
pipelines, each run a fresh process: one warm-up run of every (runner, pipeline), then rounds
that run every (runner, pipeline) once, the order reversed every other round.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / ".venv" / "bin" / "airflow-ci-vars"
GCL_VERSION = "4.60.0"
GCL_DIR = Path.home() / ".cache" / "airflow-ci-vars-bench" / "gcl"
GCL_BIN = GCL_DIR / "node_modules" / ".bin" / "gitlab-ci-local"
GIT_ENV = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
GIT_USER = ("-c", "user.name=bench", "-c", "user.email=bench@example.com")
# `airflow-ci-vars run` prints `JOB: STATUS` per job and `JOB > LINE` per line of job output.
CI_VARS_SUCCESS = re.compile(r"^[^>\n]+: success$", re.MULTILINE)
GCL_SUCCESS = re.compile(r"^ PASS ", re.MULTILINE)


@dataclass(frozen=True)
class Runner:
    """One way of running a pipeline: its command line, environment and success test.

    ``in_folder``: the command runs in the project folder with ``--home FOLDER/.gcl-home`` and
    no file argument (gitlab-ci-local: ``--cwd`` refuses an absolute path); otherwise the
    pipeline file's path is its last argument.
    """

    name: str
    command: tuple[str, ...]
    env: dict[str, str]
    success: re.Pattern[str]
    in_folder: bool = False


def ensure_gitlab_ci_local() -> None:
    """Install gitlab-ci-local into the cache folder unless that version is already there."""
    if GCL_BIN.exists():
        found = subprocess.run([str(GCL_BIN), "--version"], capture_output=True, text=True, check=False)
        if found.stdout.strip() == GCL_VERSION:
            return
    GCL_DIR.mkdir(parents=True, exist_ok=True)
    print(f"installing gitlab-ci-local {GCL_VERSION} into {GCL_DIR} (a few minutes)", flush=True)
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(GCL_DIR), f"gitlab-ci-local@{GCL_VERSION}"],
        check=True,
    )


def make_project(root: Path, yaml: str) -> Path:
    """A git repository with ``yaml`` committed as its ``.gitlab-ci.yml``; returns the YAML's path."""
    root.mkdir(parents=True)
    (root / ".gitlab-ci.yml").write_text(yaml)
    (root / "README").write_text("bench\n")
    env = {**os.environ, **GIT_ENV}
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "init"]):
        subprocess.run(["git", *GIT_USER, *args], cwd=root, env=env, check=True)
    return root / ".gitlab-ci.yml"


def run_once(
    runner: Runner, ci_file: Path, jobs: int, expect: re.Pattern[str] | None = None
) -> tuple[float, str | None]:
    """Run one pipeline; return its wall time and, if it did not succeed, why.

    It succeeded if it exited 0, ``jobs`` jobs reported success and ``expect`` (if any) is found
    in its output.
    """
    if runner.in_folder:
        command = [*runner.command, "--home", str(ci_file.parent / ".gcl-home")]
    else:
        command = [*runner.command, str(ci_file)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ci_file.parent, env=runner.env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    output = done.stdout + done.stderr
    passed = len(runner.success.findall(output))
    if done.returncode == 0 and passed == jobs and (expect is None or expect.search(output)):
        return elapsed, None
    missing = f", no match for {expect.pattern!r}" if expect and not expect.search(output) else ""
    return elapsed, f"exit {done.returncode}, {passed}/{jobs} jobs passed{missing}: {failure_reason(output)}"


def failure_reason(output: str) -> str:
    """The line of ``output`` that best says why a run failed."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if "Exception: " in line or "Error: " in line:
            return line[-300:]
    return lines[-1][-300:] if lines else "(no output)"


@dataclass
class Timings:
    """The wall times of the counted runs by (runner name, job count), and what failed."""

    times: dict[tuple[str, int], list[float]]
    #: runners dropped because their warm-up failed, with the reason
    dropped: dict[str, str]
    #: timed runs that did not count, one line each
    failures: list[str]


def time_pipelines(
    runners: Sequence[Runner],
    files: Mapping[tuple[str, int], Path],
    sizes: Sequence[int],
    rounds: int,
    expect: re.Pattern[str] | None = None,
) -> Timings:
    """Warm up, then time ``rounds`` rounds of every (runner, pipeline of ``sizes`` jobs).

    ``files[(runner name, jobs)]`` is the pipeline file that runner runs. A runner whose
    warm-up fails is dropped; a timed run that fails is not counted and is listed.
    """
    dropped: dict[str, str] = {}
    for runner in runners:
        for n in sizes:
            _, error = run_once(runner, files[(runner.name, n)], n, expect)
            if error and runner.name not in dropped:
                dropped[runner.name] = f"{n}-job pipeline: {error}"
    live = [r for r in runners if r.name not in dropped]
    times: dict[tuple[str, int], list[float]] = {(r.name, n): [] for r in live for n in sizes}
    failures: list[str] = []
    for round_ in range(rounds):
        order = [(r, n) for r in live for n in sizes]
        for runner, n in order if round_ % 2 == 0 else reversed(order):
            elapsed, error = run_once(runner, files[(runner.name, n)], n, expect)
            if error:
                failures.append(f"{runner.name}, {n} jobs, round {round_ + 1}: {error}")
            else:
                times[(runner.name, n)].append(elapsed)
    return Timings(times, dropped, failures)
