"""``when`` and ``start_in``. R: ``config/entry/job.rb`` (``ALLOWED_WHEN``, ``start_in`` validations)."""

from __future__ import annotations

from collections.abc import Mapping

from airflow_ci_vars.errors import JobConfigError
from airflow_ci_vars.pipeline.durations import parse_duration

JOB_WHEN = ("on_success", "on_failure", "always", "manual", "delayed")
MAX_START_IN = 604800  # one week, in seconds


def when(name: str, job: Mapping[str, object]) -> str:
    """The job's ``when`` (default ``on_success``); an unknown value is refused."""
    value = str(job.get("when", "on_success"))
    if value not in JOB_WHEN:
        raise JobConfigError(f"jobs:{name} when unknown value: {value}", job=name, key="when")
    return value


def start_in_problem(given: object) -> tuple[int | None, str | None]:
    """``start_in`` of a delayed job or rule: (seconds, None), or (None, GitLab's message).

    R: ``entry/job.rb`` and ``entry/rules/rule.rb``: present, a duration (``DurationValidator``),
    at most one week (``limit: '1 week'``). The one check for both places.
    """
    if given is None or given == "":
        return None, "start in can't be blank"
    seconds = parse_duration(given)
    if seconds is None:
        return None, "start in should be a duration"
    if seconds > MAX_START_IN:
        return None, "start in should not exceed the limit"
    return seconds, None


def start_in(name: str, job: Mapping[str, object], when: str) -> int | None:
    """Seconds of ``start_in`` for a ``when: delayed`` job (None otherwise); at most a week."""
    if when != "delayed":
        return None
    seconds, problem = start_in_problem(job.get("start_in"))
    if problem is not None:
        raise JobConfigError(f"jobs:{name} {problem}", job=name, key="start_in")
    return seconds
