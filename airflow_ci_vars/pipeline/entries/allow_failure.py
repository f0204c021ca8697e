"""``allow_failure`` (a boolean or ``exit_codes``). R: ``config/entry/allow_failure.rb``, ``entry/job.rb``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Union

from airflow_ci_vars.errors import JobConfigError
from airflow_ci_vars.pipeline.entries._util import as_list

AllowFailure = Union[bool, tuple[int, ...]]


def parse(name: str, job: Mapping[str, object], when: str) -> AllowFailure:
    """``True``/``False``, or the exit codes allowed to fail.

    GitLab: a job-level ``when: manual`` defaults to ``allow_failure: true`` (a rule's does not).
    """
    value = job.get("allow_failure", when == "manual")
    if not isinstance(value, Mapping):
        return bool(value)
    codes = value.get("exit_codes", [])
    try:
        return tuple(int(str(c)) for c in ([codes] if isinstance(codes, int) else as_list(codes)))
    except ValueError:
        raise JobConfigError(
            f"jobs:{name}:allow_failure exit codes should be an array of integers or an integer",
            job=name,
            key="allow_failure",
        ) from None
