"""A ``.gitlab-ci.yml`` built to exhaust ``lint`` or the dag-processor is refused, quickly, where it is written.

Attack: a small file that expands (nested ``!reference``, YAML aliases, merge keys, ``extends``) or a
big or deeply nested one, or too many includes. Before GitLab's configuration limits were checked
while reading, a 1.8 KB file of nested ``!reference`` made ``lint`` run out of memory.

Each file goes through the real front ends in a fresh process with a 1 GiB address-space limit
(``RLIMIT_AS``) and a generous timeout, coarse watchdogs that only a runaway fails: ``airflow-ci-vars
lint`` (``airflow_ci_vars.cli.main``) and the DAG factory (``gitlab_ci_dag``, what the dag-processor
runs). Both must print GitLab's message at the place in the file where the limit is crossed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TOO_BIG = "The parsed YAML is too big"
TOTAL_TOO_BIG = "Total size of combined CI/CD configuration is too big"
ADDRESS_SPACE = 1 << 30  # bytes
WATCHDOG = 300  # seconds; a refusal takes well under one

_RUN = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
front, path = sys.argv[1], sys.argv[2]
if front == "lint":
    from airflow_ci_vars.cli import main
    raise SystemExit(main(["lint", path]))
from airflow_ci_vars.errors import CIVarsError
from airflow_ci_vars.dag_factory import gitlab_ci_dag
try:
    gitlab_ci_dag(path, project="acme/bounds")
except CIVarsError as err:
    print(err, file=sys.stderr)
    raise SystemExit(1)
print("built", file=sys.stderr)
"""


def run_front(front: str, path: Path, address_space: int = ADDRESS_SPACE) -> subprocess.CompletedProcess[str]:
    """``front`` (``lint`` or ``factory``) on ``path`` in a fresh process limited to ``address_space`` bytes."""
    env = {**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    return subprocess.run(
        [sys.executable, "-c", _RUN.format(limit=address_space), front, str(path)],
        capture_output=True,
        text=True,
        timeout=WATCHDOG,
        env=env,
        cwd=path.parent,  # not the checkout: the installed package is what runs
        check=False,
    )


def refused(front: str, path: Path) -> str:
    """What ``front`` prints on stderr for ``path``; it must exit 1."""
    proc = run_front(front, path)
    assert proc.returncode == 1, proc.stderr[-2000:]
    return proc.stderr


FRONTS = ("lint", "factory")


def assert_refused(path: Path, line: int, column: int, message: str, *, file: Path | None = None) -> None:
    """Both front ends refuse ``path`` with ``FILE:LINE:COL: message`` (``FILE``: ``file`` or ``path``)."""
    expected = f"{file or path}:{line}:{column}: {message}"
    for front in FRONTS:
        assert expected in refused(front, path), front


def nested_references(levels: int, jobs: int = 1) -> str:
    """Each hidden list holds ten ``!reference`` tags to the previous one; each job's script is the
    last: 10 ** levels lines."""
    lines = [".l0: [" + ", ".join(["echo x"] * 10) + "]"]
    lines += [f".l{i}: [" + ", ".join([f"!reference [.l{i - 1}]"] * 10) + "]" for i in range(1, levels)]
    lines += [f"job{j}:\n  script: !reference [.l{levels - 1}]" for j in range(jobs)]
    return "\n".join(lines) + "\n"


def test_a_nested_reference_bomb_is_refused_at_the_reference_that_passes_the_total(tmp_path: Path) -> None:
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text(nested_references(10))
    # .l5 expands to 7.1 million (a million "echo x"); the second !reference [.l5] of .l6 passes 8 MiB.
    assert_refused(path, 7, 25, TOTAL_TOO_BIG)


def test_a_billion_laughs_of_aliases_is_refused_at_the_alias_that_passes_the_file_limit(tmp_path: Path) -> None:
    lines = ["a0: &a0 [" + ",".join(["lol"] * 10) + "]"]
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    lines += ["job:", "  script: echo", "  variables:", "    LOL: *a9"]
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text("\n".join(lines) + "\n")
    # a4 counts 411,111 (a0: 1 + 10 x 4): the third alias of a5 passes 1 MiB.
    assert_refused(path, 6, 18, TOO_BIG)


def test_a_merge_key_fan_out_is_refused_before_the_entries_are_copied(tmp_path: Path) -> None:
    keys = "\n".join(f"  K{i:05d}: v" for i in range(20_000))
    jobs = "\n".join(f"j{i:05d}: {{<<: *big}}" for i in range(30_000))
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text(f".big: &big\n{keys}\n{jobs}\n")
    # .big counts 180,001, each job as much: the fifth job brings the file past 1 MiB, before its
    # entries are copied (old code: 20,000 x 30,000 entries copied).
    assert_refused(path, 20_006, 9, TOO_BIG)


def test_an_extends_fan_out_is_refused_before_the_bases_are_copied(tmp_path: Path) -> None:
    (tmp_path / "base.yml").write_text(".base:\n  variables:\n" + "".join(f"    V{i:05d}: x\n" for i in range(20_000)))
    jobs = "".join(f"j{i:05d}: {{extends: .base, variables: {{A: y}}, script: x}}\n" for i in range(15_000))
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text("include: base.yml\n" + jobs)
    # Each job's variables are a copy of the 20,000 of .base, 16 each: the 26th job's extends passes
    # 8 MiB (old code: 300 million entries copied).
    assert_refused(path, 27, 10, TOTAL_TOO_BIG)


def test_nesting_deeper_than_100_is_refused_where_it_passes_100(tmp_path: Path) -> None:
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text("job:\n  script: echo\n  variables:\n    V: " + "[" * 900 + "]" * 900 + "\n")
    # job is depth 2, variables 3, the first "[" (column 8) 4: the 98th is depth 101.
    assert_refused(path, 4, 105, TOO_BIG)


def test_nesting_that_aliases_make_deeper_than_100_is_refused_at_the_alias(tmp_path: Path) -> None:
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text("a: &a " + "[" * 60 + "]" * 60 + "\nb: " + "[" * 60 + "*a" + "]" * 60 + "\n")
    assert_refused(path, 2, 64, TOO_BIG)


def test_a_file_over_1_mib_is_refused_at_the_line_where_it_passes_1_mib(tmp_path: Path) -> None:
    job = "job_{:05d}:\n  script: echo {:05d}\n"  # 32 bytes
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text("".join(job.format(i, i) for i in range(35_000)))  # 1,120,000 bytes
    # 1,048,576 bytes are exactly 32,768 jobs (65,536 lines): the next line passes 1 MiB.
    assert_refused(path, 65_537, 1, TOO_BIG)


def test_an_included_file_over_1_mib_is_refused_in_that_file(tmp_path: Path) -> None:
    (tmp_path / "big.yml").write_text(".big:\n  variables:\n" + "".join(f"    V{i:06d}: x\n" for i in range(80_000)))
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text("include: big.yml\njob:\n  script: echo\n")
    # 1,048,576 bytes of big.yml: 19 of its first two lines, then 69,903 lines of 15 bytes and a part.
    assert_refused(path, 69_906, 1, f"`big.yml`: {TOO_BIG}", file=tmp_path / "big.yml")


def test_151_includes_are_refused_at_the_151st(tmp_path: Path) -> None:
    for i in range(151):
        (tmp_path / f"part{i:03d}.yml").write_text(f".part{i}:\n  script: echo {i}\n")
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text("include:\n" + "".join(f"  - local: part{i:03d}.yml\n" for i in range(151)) + "job: {script: x}\n")
    assert_refused(path, 152, 5, "Maximum of 150 nested includes are allowed!")


def test_includes_over_8_mib_together_are_refused_at_the_include_that_passes(tmp_path: Path) -> None:
    body = "".join(f"    V{i:06d}: x\n" for i in range(65_000))  # 975,000 bytes
    for i in range(10):
        (tmp_path / f"part{i}.yml").write_text(f".part{i}:\n  variables:\n{body}")
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text("include:\n" + "".join(f"  - local: part{i}.yml\n" for i in range(10)) + "job: {script: x}\n")
    # Each file is 975,021 bytes with its header: the 9th passes 8 MiB.
    assert_refused(path, 10, 5, TOTAL_TOO_BIG)


def test_a_matrix_of_a_hundred_million_combinations_is_refused_before_they_are_built(tmp_path: Path) -> None:
    values = "[" + ", ".join(f"v{i:02d}" for i in range(100)) + "]"
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text(
        f"job:\n  script: x\n  parallel:\n    matrix:\n      - {{A: {values}, B: {values}, C: {values}, D: {values}}}\n"
    )
    assert_refused(path, 3, 3, "jobs:job:parallel:matrix config generates too many jobs (maximum is 200)")


def test_a_million_job_instances_are_refused_before_they_are_built(tmp_path: Path) -> None:
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text("".join(f"job{i}: {{script: x, parallel: 200}}\n" for i in range(5000)))  # 150 KB
    # Each job counts 24 once per instance: the 1,748th passes 8 MiB (and the 51st 10,000 instances).
    assert_refused(path, 1748, 1, TOTAL_TOO_BIG)


def test_more_than_10000_small_job_instances_are_refused_at_the_job_that_passes(tmp_path: Path) -> None:
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text("".join(f"job{i}: {{script: x, parallel: 60}}\n" for i in range(200)))
    assert_refused(path, 167, 1, "The number of jobs has exceeded the limit of 10000 (child pipelines included)")


@pytest.mark.parametrize("front", FRONTS)
def test_a_file_just_within_the_limits_is_still_loaded(tmp_path: Path, front: str) -> None:
    """Not a refusal of everything big: nine scripts of 100,000 lines from !reference tags (7.2 of the
    8 MiB) load, in 1 GiB."""
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text(nested_references(5, jobs=9))
    proc = run_front(front, path)
    expected = f"{path}: valid (9 jobs in 1 stage)" if front == "lint" else "built"
    assert expected in proc.stdout + proc.stderr, proc.stderr[-2000:]
