"""``timeout``. R: ``config/entry/job.rb`` (``validates :timeout, duration: { limit: ... }``)."""

from __future__ import annotations

from collections.abc import Mapping

from airflow_ci_vars.errors import JobConfigError
from airflow_ci_vars.pipeline.durations import parse_duration


def parse(name: str, job: Mapping[str, object]) -> int | None:
    """Seconds of the job's ``timeout:`` (None without the keyword)."""
    if "timeout" not in job:
        return None
    seconds = parse_duration(job["timeout"])
    if seconds is None:
        raise JobConfigError(f"jobs:{name}:timeout config should be a duration", job=name, key="timeout")
    return seconds
