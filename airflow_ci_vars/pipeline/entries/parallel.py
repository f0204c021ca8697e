"""``parallel`` (a count or ``matrix``): the job's instances.

R: ``config/entry/product/parallel.rb``, ``product/matrix.rb``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

from airflow_ci_vars.errors import JobConfigError
from airflow_ci_vars.pipeline.limits import MAX_PARALLEL, matrix_size


def _matrix_value(value: object) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def matrix_instances(matrix: Sequence[Mapping[str, object]]) -> list[dict[str, str]]:
    """The variable sets of ``parallel:matrix``: a Cartesian product per entry, in key order."""
    out: list[dict[str, str]] = []
    for entry in matrix:
        keys = list(entry)
        for combo in itertools.product(*(_matrix_value(entry[k]) for k in keys)):
            out.append(dict(zip(keys, combo, strict=True)))
    return out


def instances(name: str, parallel: object) -> list[tuple[str, int | None, int, dict[str, str]]]:
    """The job's instances: itself, ``NAME i/N`` for ``parallel: N``, ``NAME: [v1, v2]`` per matrix set."""
    if parallel is None:
        return [(name, None, 1, {})]
    if isinstance(parallel, int) and not isinstance(parallel, bool):
        if not 1 <= parallel <= MAX_PARALLEL:
            raise JobConfigError(
                f"jobs:{name}:parallel config must be less than or equal to {MAX_PARALLEL}", job=name, key="parallel"
            )
        return [(f"{name} {i}/{parallel}", i, parallel, {}) for i in range(1, parallel + 1)]
    if isinstance(parallel, Mapping) and isinstance(parallel.get("matrix"), list):
        if matrix_size(parallel["matrix"]) > MAX_PARALLEL:  # counted first: a product can be huge
            raise JobConfigError(
                f"jobs:{name}:parallel:matrix config generates too many jobs (maximum is {MAX_PARALLEL})",
                job=name,
                key="parallel",
            )
        sets = matrix_instances(parallel["matrix"])
        total = len(sets)
        return [(f"{name}: [{', '.join(s.values())}]", i, total, s) for i, s in enumerate(sets, start=1)]
    raise JobConfigError(f"jobs:{name}:parallel should be an integer or a hash", job=name, key="parallel")
