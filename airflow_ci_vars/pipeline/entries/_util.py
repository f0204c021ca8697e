"""Helpers shared by the entries (a scalar read as a one-item list)."""

from __future__ import annotations


def as_list(value: object) -> list[object]:
    """``None`` -> ``[]``, a list or tuple -> itself, anything else -> ``[value]``."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]
