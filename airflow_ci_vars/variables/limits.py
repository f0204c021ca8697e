"""Bounds on variable values: the expanded size of values, and a job's environment before ``execve``.

Pure (no Airflow). GitLab's Rails expansion (R ``lib/gitlab/ci/variables/collection.rb``
``sort_and_expand_all``) and gitlab-runner's (GR ``common/variables.go`` ``Expand``, Go ``os.Expand``)
have no size bound: nested references double a value per level (``A1=$A0$A0``, ``A2=$A1$A1``...),
so a few hundred bytes of input can ask for gigabytes. The expansion limits here are ours
(``docs/variables.md``, "Limits"). The environment limits are Linux's: one ``KEY=VALUE`` string
may not exceed ``MAX_ARG_STRLEN`` and all of them ``ARG_MAX`` (``execve(2)``), else ``E2BIG``.
Error messages name keys and sizes, never a value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from airflow_ci_vars.errors import EnvironmentSizeError, ExpansionError

__all__ = [
    "ENVIRONMENT_MARGIN",
    "MAX_ARG_STRLEN",
    "MAX_EXPANDED_TOTAL",
    "MAX_EXPANDED_VALUE",
    "ExpansionBudget",
    "check_environment",
    "environment_limit",
]

MAX_EXPANDED_VALUE = 1 << 20
"""Characters one expanded value may hold (1 MiB): far above any real value, a file variable included."""

MAX_EXPANDED_TOTAL = 16 << 20
"""Characters all the values built by one expansion may hold together (16 MiB)."""

MAX_ARG_STRLEN = 131072
"""Linux's bound on one ``KEY=VALUE`` string, its terminating NUL included (32 pages of 4 KiB)."""

ENVIRONMENT_MARGIN = 65536
"""Bytes of ``ARG_MAX`` kept for the job's command line and the runner's own variables."""

_POINTER = 8  # each string also costs its pointer in envp (execve(2), "Limits on size of arguments")
_LARGEST_SHOWN = 5


class ExpansionBudget:
    """The characters one expansion may still build; :meth:`spend` refuses a value past a limit.

    One budget per expansion call: each value is checked against ``per_value``, and the values
    together against ``total``, before the value is joined, so a refused value is never built.
    """

    def __init__(self, per_value: int = MAX_EXPANDED_VALUE, total: int = MAX_EXPANDED_TOTAL) -> None:
        self.per_value = per_value
        self.total = total
        self.spent = 0

    def check(self, key: str | None, size: int) -> None:
        """Raise :class:`ExpansionError` if a value of ``size`` characters would break a limit."""
        if size > self.per_value:
            raise ExpansionError(
                f"{_what(key)}: its expanded value would exceed {self.per_value} characters, the limit of "
                "one expanded value (nested references repeat a value at each level)",
                key=key,
                limit=self.per_value,
            )
        if self.spent + size > self.total:
            raise ExpansionError(
                f"{_what(key)}: the expanded variables would exceed {self.total} characters together, the "
                "limit of one expansion",
                key=key,
                limit=self.total,
            )

    def spend(self, key: str | None, size: int) -> None:
        """Count a finished value of ``size`` characters."""
        self.check(key, size)
        self.spent += size


def _what(key: str | None) -> str:
    return f"variable {key}" if key else "a value"


def environment_limit(arg_max: int | None = None) -> int:
    """Bytes a job's environment may take: ``ARG_MAX`` (``sysconf``) less :data:`ENVIRONMENT_MARGIN`."""
    if arg_max is None:
        arg_max = os.sysconf("SC_ARG_MAX")
    return max(arg_max - ENVIRONMENT_MARGIN, 0)


def _entry_size(key: str, value: str) -> int:
    """Bytes of ``KEY=VALUE`` with its NUL, as ``os.environ`` encodes it (``os.fsencode``)."""
    return len(os.fsencode(key)) + 1 + len(os.fsencode(value)) + 1


def check_environment(environment: Mapping[str, str], *, arg_max: int | None = None) -> None:
    """Refuse an environment Linux's ``execve`` would refuse with ``E2BIG``.

    Raises :class:`EnvironmentSizeError` naming every variable whose ``KEY=VALUE`` exceeds
    :data:`MAX_ARG_STRLEN`, else, when all of them with their pointers exceed
    :func:`environment_limit`, the largest variables. ``arg_max`` defaults to ``sysconf(SC_ARG_MAX)``.
    """
    sizes = {key: _entry_size(key, value) for key, value in environment.items()}
    too_long = [key for key, size in sizes.items() if size > MAX_ARG_STRLEN]
    if too_long:
        shown = ", ".join(f"{key} ({sizes[key]} bytes)" for key in too_long)
        raise EnvironmentSizeError(
            f"job environment too large: {shown} over Linux's limit of {MAX_ARG_STRLEN} bytes for one "
            "KEY=VALUE string (MAX_ARG_STRLEN); use a file-type variable for a large value",
            keys=too_long,
            limit=MAX_ARG_STRLEN,
        )
    total = sum(sizes.values()) + _POINTER * (len(sizes) + 1)
    limit = environment_limit(arg_max)
    if total > limit:
        largest = sorted(sizes, key=lambda key: -sizes[key])[:_LARGEST_SHOWN]
        shown = ", ".join(f"{key} ({sizes[key]} bytes)" for key in largest)
        raise EnvironmentSizeError(
            f"job environment too large: {total} bytes over the limit of {limit} bytes (ARG_MAX less "
            f"{ENVIRONMENT_MARGIN} for the command line); largest: {shown}; use file-type variables for "
            "large values",
            keys=largest,
            limit=limit,
        )
