"""How a core error becomes a failed task: one place for the operators' error mapping.

The core raises typed errors (``airflow_ci_vars.errors``) that carry their location and never a
secret; a task fails with ``AirflowException`` and that message, without the core's traceback
(``from None``), optionally prefixed with what was being done. Nothing is kept between calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from airflow.sdk.exceptions import AirflowException

from airflow_ci_vars.errors import CIVarsError

__all__ = ["job_failure"]


@contextmanager
def job_failure(prefix: str = "") -> Iterator[None]:
    """Turn a ``CIVarsError`` raised inside into ``AirflowException(prefix + message)``."""
    try:
        yield
    except CIVarsError as err:
        raise AirflowException(f"{prefix}{err}") from None
