"""``environment``. R: ``config/entry/environment.rb``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from airflow_ci_vars.errors import JobConfigError


@dataclass(frozen=True, slots=True)
class Environment:
    """``environment:`` of a job; ``name`` and ``url`` are kept unexpanded."""

    name: str
    url: str | None = None
    action: str = "start"
    deployment_tier: str | None = None


def parse(name: str, value: object) -> Environment | None:
    """The job's environment: a name, or a hash with ``name`` (and ``url``, ``action``, ``deployment_tier``)."""
    if isinstance(value, str):
        return Environment(value)
    if not isinstance(value, Mapping):
        return None
    if value.get("name") is None:
        raise JobConfigError(f"jobs:{name}:environment name can't be blank", job=name, key="environment")
    return Environment(
        str(value["name"]),
        url=None if value.get("url") is None else str(value["url"]),
        action=str(value.get("action", "start")),
        deployment_tier=None if value.get("deployment_tier") is None else str(value["deployment_tier"]),
    )
