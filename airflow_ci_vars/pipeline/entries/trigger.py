"""``trigger`` (a bridge job) and ``interruptible``. R: ``config/entry/trigger.rb``, ``entry/bridge.rb``."""

from __future__ import annotations

from collections.abc import Mapping


def parse(job: Mapping[str, object]) -> Mapping[str, object] | None:
    """The bridge's trigger as a hash (``trigger: PROJECT`` is ``{project: PROJECT}``); None for a job."""
    if "trigger" not in job:
        return None
    value = job["trigger"]
    return value if isinstance(value, Mapping) else {"project": value}


def interruptible(job: Mapping[str, object]) -> bool | None:
    """``interruptible:`` when it is a boolean, else None."""
    value = job.get("interruptible")
    return value if isinstance(value, bool) else None
