"""Benchmark: the bounded work of issue 11 -- nested expansion, RE2 `rules:if`, the environment check.

Run: ``make bench`` (or ``.venv/bin/python bench/bench_bounds.py``). Not part of the tests.
Each attack is measured as it is refused or answered now; the "before" figures (3 GB, 55 s) are
the issue's. Python's ``re`` is timed on the same pattern at a few short lengths only: it doubles
per character.
"""

from __future__ import annotations

import re
import resource
import statistics
import time
from collections.abc import Callable

from airflow_ci_vars.errors import ExpansionError
from airflow_ci_vars.pipeline.expressions import evaluate_rule
from airflow_ci_vars.variables.expansion import sort_and_expand
from airflow_ci_vars.variables.limits import check_environment


def median_ms(fn: Callable[[], object], repeat: int = 20) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def nested_conf() -> None:
    conf = {"A0": "x" * 10, **{f"A{i}": f"$A{i - 1}$A{i - 1}" for i in range(1, 41)}}
    try:
        sort_and_expand(conf)
    except ExpansionError:
        return
    raise AssertionError("the nested conf was expanded")


def main() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ms = median_ms(nested_conf)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print("| attack | before (issue 11) | now | peak RSS growth |")
    print("|---|---:|---:|---:|")
    print(f"| nested conf, 40 levels (refused at A17) | 3 GB | {ms:.2f} ms | {grown / 1024:.1f} MB |")
    for length in (31, 1_000, 100_000):
        value = {"V": "a" * length + "!"}
        took = median_ms(lambda value=value: evaluate_rule("$V =~ /^(a+)+$/", value))
        print(f"| `$V =~ /^(a+)+$/`, {length:,}-character value, RE2 | 55 s at 31 | {took:.3f} ms | |")
    env = {f"VAR_{i}": "v" * 200 for i in range(500)}
    took = median_ms(lambda: check_environment(env))
    print(f"| `check_environment`, 500 variables of 200 bytes | (none) | {took:.3f} ms | |")
    print("\nPython's re on the same pattern (what RE2 replaced):")
    for length in (18, 20, 22):
        text = "a" * length + "!"
        took = median_ms(lambda text=text: re.search(r"^(a+)+$", text), repeat=3)
        print(f"  {length} characters: {took:.0f} ms")


if __name__ == "__main__":
    main()
