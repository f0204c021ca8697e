"""Benchmark: resolve() for one job with N variables spread over 6 layers.

Run: ``make bench`` (or ``.venv/bin/python bench/bench_resolve.py``). Not part of the tests.
Targets (issue 2): 500 variables in under 5 ms; 10x the variables in under 12x the time.
"""

from __future__ import annotations

import random
import statistics
import time

from airflow_ci_vars import RunContext, Variable, VariableLayers, resolve

LAYERS = ("instance", "group", "subgroup", "project", "default", "job")


def make_layers(total: int, seed: int = 7) -> VariableLayers:
    """``total`` variables over 6 layers; a third reference two other keys, many keys repeat."""
    rng = random.Random(seed)
    per_layer = total // len(LAYERS)
    keys = [f"VAR_{i}" for i in range(int(total * 0.8))]
    layers: dict[str, list[Variable]] = {name: [] for name in LAYERS}
    for name in LAYERS:
        for i in range(per_layer):
            k = rng.randrange(len(keys))
            key = keys[k]
            if i % 3 == 0 and k > 0:  # reference lower-numbered keys only: no cycles
                value = f"prefix-${keys[rng.randrange(k)]}-${{{keys[rng.randrange(k)]}}}"
            else:
                value = f"value-{name}-{i}"
            scope = rng.choice(["*", "*", "review/*", "production"])
            masked = i % 10 == 0
            layers[name].append(
                Variable(
                    key,
                    f"secret-{name}-{i:06d}" if masked else value,
                    masked=masked,
                    environment_scope=scope if name in ("instance", "group", "subgroup", "project") else "*",
                )
            )
    return VariableLayers(
        instance=layers["instance"],
        groups={"acme": layers["group"], "acme/data": layers["subgroup"]},
        project=layers["project"],
        project_path="acme/data/etl",
        default=layers["default"],
        job=layers["job"],
        pipeline={"REF_OVERRIDE": "x"},
    )


def timed(total: int, repeats: int) -> float:
    layers = make_layers(total)
    run = RunContext(job_name="build", project_path="acme/data/etl", environment_name="review/app")
    resolve(layers, run)  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        resolve(layers, run)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    small = timed(500, 200)
    large = timed(5000, 30)
    print("resolve(): one job, variables over 6 layers (median)")
    print(f"  {500:>5} variables: {small * 1000:7.2f} ms   (target < 5 ms)")
    print(f"  {5000:>5} variables: {large * 1000:7.2f} ms   ratio {large / small:5.1f}x (target < 12x)")


if __name__ == "__main__":
    main()
