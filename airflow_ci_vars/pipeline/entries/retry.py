"""``retry`` (``max`` and ``when``). R: ``config/entry/retry.rb``."""

from __future__ import annotations

from collections.abc import Mapping

from airflow_ci_vars.errors import JobConfigError


def parse(name: str, value: object) -> tuple[int, tuple[str, ...]]:
    """``(max, when)`` of ``retry:`` (an integer or ``{max, when}``); ``max`` is 0, 1 or 2."""
    if value is None:
        return 0, ()
    raw_max = value.get("max", 0) if isinstance(value, Mapping) else value
    if isinstance(raw_max, bool) or not isinstance(raw_max, int) or not 0 <= raw_max <= 2:
        raise JobConfigError(f"jobs:{name}:retry max can be 0, 1 or 2", job=name, key="retry")
    retry_when: tuple[str, ...] = ()
    if isinstance(value, Mapping):
        w = value.get("when", ())
        retry_when = tuple(str(x) for x in (w if isinstance(w, list) else [w]))
    return raw_max, retry_when
