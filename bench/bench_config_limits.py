"""Benchmark: what GitLab's configuration limits cost, and what a hostile ``.gitlab-ci.yml`` costs now.

Run: ``.venv/bin/python bench/bench_config_limits.py`` (not a test). Each file is loaded by
``load_pipeline`` (the one loader: the DAG factory, ``lint``, ``graph`` and ``explain`` call it) in
a fresh Python process; the figures are that call's CPU time and the process's peak RSS (``ru_maxrss``, the
interpreter included: the first row is an empty pipeline), after a warm-up load (imports). Files:

* refused: a nested ``!reference`` bomb (ten levels of ten tags, 1.8 KB), a billion laughs of YAML
  aliases (ten levels of ten), a merge-key fan-out (30,000 ``<<: *big`` of a 20,000-key mapping), an
  ``extends`` fan-out (15,000 jobs extending 20,000 variables), a 1.1 MB file, 151 includes, twenty
  included files of 975 KB, twenty included files of 1 MB of one-letter flow-list items (the
  most memory a byte of YAML takes here), a ``parallel:matrix`` of a hundred million combinations
  (1 KB), 5,000 jobs of ``parallel: 200`` (150 KB);
* loaded: an ordinary 2,000-job pipeline (two-line scripts, an anchor merge and a ``!reference`` a
  job), and nine scripts of 100,000 lines built from ``!reference`` tags, 7.2 of the 8 MiB total.

Then ``load_config`` of the 2,000-job pipeline in this process, median of 15 (the cost of counting
as the file is read).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from airflow_ci_vars.pipeline.config import load_config

_CHILD = """
import json, resource, sys, time
from airflow_ci_vars.errors import PipelineError
import pathlib, tempfile
from airflow_ci_vars.pipeline.loader import load_pipeline
from airflow_ci_vars.pipeline.model import PipelineInvalidError
warm = pathlib.Path(tempfile.mkdtemp()) / ".gitlab-ci.yml"
warm.write_text("job: {script: x}\\n")
load_pipeline(warm)  # imports done before timing
start = time.process_time()
try:
    pipeline = load_pipeline(sys.argv[1])
    outcome = f"{len(pipeline.jobs)} jobs"
except PipelineError as err:
    outcome = err.message
except PipelineInvalidError as err:
    outcome = err.problems[0].message
cpu = time.process_time() - start
print(json.dumps({"cpu": cpu, "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "outcome": outcome}))
"""


def empty(folder: Path) -> None:
    (folder / ".gitlab-ci.yml").write_text("job: {script: x}\n")


def reference_bomb(folder: Path, levels: int = 10, jobs: int = 1) -> None:
    lines = [".l0: [" + ", ".join(["echo x"] * 10) + "]"]
    lines += [f".l{i}: [" + ", ".join([f"!reference [.l{i - 1}]"] * 10) + "]" for i in range(1, levels)]
    lines += [f"job{j}: {{script: !reference [.l{levels - 1}]}}" for j in range(jobs)]
    (folder / ".gitlab-ci.yml").write_text("\n".join(lines) + "\n")


def reference_near_limit(folder: Path) -> None:
    reference_bomb(folder, levels=5, jobs=9)


def billion_laughs(folder: Path) -> None:
    lines = ["a0: &a0 [" + ",".join(["lol"] * 10) + "]"]
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    (folder / ".gitlab-ci.yml").write_text("\n".join(lines) + "\njob: {script: x, variables: {V: *a9}}\n")


def merge_fan_out(folder: Path) -> None:
    keys = "".join(f"  K{i:05d}: v\n" for i in range(20_000))
    jobs = "".join(f"j{i:05d}: {{<<: *big}}\n" for i in range(30_000))
    (folder / ".gitlab-ci.yml").write_text(f".big: &big\n{keys}{jobs}")


def extends_fan_out(folder: Path) -> None:
    (folder / "base.yml").write_text(".base:\n  variables:\n" + "".join(f"    V{i:05d}: x\n" for i in range(20_000)))
    jobs = "".join(f"j{i:05d}: {{extends: .base, variables: {{A: y}}, script: x}}\n" for i in range(15_000))
    (folder / ".gitlab-ci.yml").write_text("include: base.yml\n" + jobs)


def big_file(folder: Path) -> None:
    (folder / ".gitlab-ci.yml").write_text("".join(f"job_{i:05d}:\n  script: echo {i:05d}\n" for i in range(35_000)))


def many_includes(folder: Path) -> None:
    for i in range(151):
        (folder / f"part{i:03d}.yml").write_text(f".part{i}: {{script: echo {i}}}\n")
    includes = "".join(f"  - local: part{i:03d}.yml\n" for i in range(151))
    (folder / ".gitlab-ci.yml").write_text(f"include:\n{includes}job: {{script: x}}\n")


def big_includes(folder: Path) -> None:
    body = "".join(f"    V{i:06d}: x\n" for i in range(65_000))
    for i in range(20):
        (folder / f"part{i:02d}.yml").write_text(f".part{i}:\n  variables:\n{body}")
    includes = "".join(f"  - local: part{i:02d}.yml\n" for i in range(20))
    (folder / ".gitlab-ci.yml").write_text(f"include:\n{includes}job: {{script: x}}\n")


def flow_includes(folder: Path) -> None:
    body = "[" + ",".join(["a"] * 500_000) + "]"
    for i in range(20):
        (folder / f"part{i:02d}.yml").write_text(f".part{i}:\n  v: {body}\n")
    includes = "".join(f"  - local: part{i:02d}.yml\n" for i in range(20))
    (folder / ".gitlab-ci.yml").write_text(f"include:\n{includes}job: {{script: x}}\n")


def matrix_bomb(folder: Path) -> None:
    values = "[" + ", ".join(f"v{i:02d}" for i in range(100)) + "]"
    matrix = f"{{A: {values}, B: {values}, C: {values}, D: {values}}}"
    (folder / ".gitlab-ci.yml").write_text(f"job:\n  script: x\n  parallel:\n    matrix:\n      - {matrix}\n")


def parallel_fan_out(folder: Path) -> None:
    (folder / ".gitlab-ci.yml").write_text("".join(f"job{i}: {{script: x, parallel: 200}}\n" for i in range(5000)))


def ordinary(folder: Path) -> None:
    lines = ["stages: [" + ", ".join(f"s{i}" for i in range(100)) + "]", ".base: &base"]
    lines += ["  variables: {A: 1, B: 2}", "  before_script: [echo a, echo b]"]
    for i in range(2000):
        lines += [f"job_{i}:", "  <<: *base", f"  stage: s{i // 20}", "  script:", f"    - echo job {i}"]
        lines += ["    - echo done", "  after_script: !reference [.base, before_script]"]
    (folder / ".gitlab-ci.yml").write_text("\n".join(lines) + "\n")


CASES: list[tuple[str, Callable[[Path], None]]] = [
    ("empty pipeline (the interpreter alone)", empty),
    ("nested !reference bomb, 1.8 KB", reference_bomb),
    ("billion laughs of aliases, 0.5 KB", billion_laughs),
    ("merge-key fan-out, 0.8 MB", merge_fan_out),
    ("extends fan-out, 0.8 MB in 2 files", extends_fan_out),
    ("one file of 1.1 MB", big_file),
    ("151 includes", many_includes),
    ("20 included files of 975 KB", big_includes),
    ("20 included files of 1 MB flow lists", flow_includes),
    ("parallel:matrix of 10^8 combinations, 1 KB", matrix_bomb),
    ("5,000 jobs of parallel: 200, 150 KB", parallel_fan_out),
    ("ordinary pipeline, 2,000 jobs", ordinary),
    ("9 x 100,000-line scripts from !reference (7.2 MiB)", reference_near_limit),
]


def measure(build: Callable[[Path], None]) -> dict[str, object]:
    """``load_config`` of the pipeline ``build`` writes, in a fresh process."""
    with tempfile.TemporaryDirectory() as folder:
        build(Path(folder))
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, str(Path(folder) / ".gitlab-ci.yml")],
            capture_output=True,
            text=True,
            check=True,
            cwd=folder,
        )
    return dict(json.loads(proc.stdout))


def main() -> None:
    print(f"{'file':<50} {'CPU':>10} {'peak RSS':>10}  outcome")
    for label, build in CASES:
        row = measure(build)
        cpu = float(row["cpu"])  # type: ignore[arg-type]
        rss = int(row["rss"]) / 1024  # type: ignore[call-overload]
        print(f"{label:<50} {cpu * 1000:>7.0f} ms {rss:>7.0f} MB  {row['outcome']}")
    with tempfile.TemporaryDirectory() as folder:
        ordinary(Path(folder))
        path = Path(folder) / ".gitlab-ci.yml"
        times = []
        for _ in range(15):
            start = time.process_time()
            load_config(path)
            times.append(time.process_time() - start)
    print(f"\n2,000-job pipeline in one process: load_config median {statistics.median(times) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
