"""Benchmark: the per-job cost of the job sandbox against no isolation, side by side in one run.

Run with ``python bench/bench_isolation.py`` (not a test). For each ``[ci_vars] isolation``
mode it times, in alternation, what a task spends on a job apart from its own work: a fresh
workspace (a copy of a small project), the hand-over of its files to the job user, one
``run_job`` of a one-command script (``true``), and the workspace's removal. Then the same for a
job that runs 200 short commands (``date`` in a loop), where each ``exec`` happens inside the
sandbox's namespaces. Reports medians and the sandbox/none ratio, and the time the operator
spends once per task choosing the mode (``auto``: a trial run of bubblewrap).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from airflow_ci_vars.isolation import choose_isolation
from airflow_ci_vars.masking import Masker
from airflow_ci_vars.runner import ScriptRunner, Workspace, run_job

ROUNDS = 30
SCRIPTS = {
    "true": ["true"],
    "200 commands": ["for i in $(seq 200); do date > /dev/null; done"],
}


def make_project(root: Path) -> Path:
    project = root / "project"
    for i in range(50):
        (project / f"dir{i % 5}").mkdir(parents=True, exist_ok=True)
        (project / f"dir{i % 5}" / f"file{i}.txt").write_text("x" * 2000)
    (project / ".gitlab-ci.yml").write_text("job: {script: [true]}\n")
    return project


def one_job(project: Path, root: Path, isolation: object, script: list[str]) -> float:
    started = time.perf_counter()
    with Workspace(project, root=root) as ws:
        runner = ScriptRunner(Masker([]), lambda _line: None, isolation=isolation)  # type: ignore[arg-type]
        outcome = run_job(
            script=script, env={"PATH": "/usr/bin:/bin"}, workspace=ws, masker=Masker([]),
            emit=lambda _line: None, runner=runner,
        )  # fmt: skip
        assert outcome.exit_code == 0
    return time.perf_counter() - started


def main() -> None:
    modes = {"none": choose_isolation("none"), "sandbox": choose_isolation("sandbox")}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "jobs"
        root.mkdir(mode=0o700)
        project = make_project(Path(tmp))
        print(f"{'job':<14} {'none (ms)':>10} {'sandbox (ms)':>13} {'ratio':>6}")
        for label, script in SCRIPTS.items():
            times: dict[str, list[float]] = {mode: [] for mode in modes}
            for _ in range(ROUNDS):  # alternate, so that both see the same machine
                for mode, isolation in modes.items():
                    times[mode].append(one_job(project, root, isolation, script))
            none, sandbox = (statistics.median(times[m]) * 1000 for m in ("none", "sandbox"))
            print(f"{label:<14} {none:>10.1f} {sandbox:>13.1f} {sandbox / none:>6.2f}")
        # Once per task, the operator checks that the sandbox works here (a trial run).
        probes = []
        for _ in range(ROUNDS):
            started = time.perf_counter()
            choose_isolation("auto")
            probes.append(time.perf_counter() - started)
        print(f"choosing the mode ('auto', one trial run of bubblewrap): {statistics.median(probes) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
