"""Run every benchmark of bench/ in turn (``make bench``). Figures go to docs/benchmarks.md."""

from __future__ import annotations

import runpy
from pathlib import Path

HERE = Path(__file__).parent

for name in (
    "bench_resolve.py",
    "bench_masking.py",
    "bench_vault.py",
    "bench_factory.py",
    "bench_includes.py",
    "bench_config_limits.py",
    "bench_rest.py",
    "bench_gate.py",
    "bench_isolation.py",
    "bench_bounds.py",
):
    print(f"\n### {name}\n", flush=True)
    runpy.run_path(str(HERE / name), run_name="__main__")
