"""``rules`` (the list; each rule's clauses are checked by ``rule_syntax.py``). R: ``config/entry/rules.rb``."""

from __future__ import annotations

from collections.abc import Mapping

from airflow_ci_vars.errors import JobConfigError


def parse(name: str, value: object) -> tuple[Mapping[str, object], ...] | None:
    """The job's rules (None without ``rules:``): a non-empty array of hashes."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise JobConfigError(f"jobs:{name}:rules config should be an array of hashes", job=name, key="rules")
    if not value:
        raise JobConfigError(f"jobs:{name}:rules config can't be blank", job=name, key="rules")
    return tuple(r for r in value if isinstance(r, Mapping))
