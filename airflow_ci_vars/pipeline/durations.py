"""Durations as GitLab reads them (``timeout: 1h 30m``, ``start_in: 30 minutes``).

GitLab parses them with Ruby's ChronicDuration; this covers its common forms: numbers with units
(``s sec second(s) m min minute(s) h hr hour(s) d day(s) w wk week(s)``, combined or not, ``and``
and commas allowed), bare numbers (seconds) and clock forms (``1:30:00``, ``90:00``).
"""

from __future__ import annotations

import re

__all__ = ["parse_duration"]

_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "wk": 604800, "wks": 604800, "week": 604800, "weeks": 604800,
}  # fmt: skip
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)?", re.ASCII)


def parse_duration(text: object) -> int | None:
    """Seconds in ``text``, or None when it is not a duration GitLab would accept."""
    if isinstance(text, bool):
        return None
    if isinstance(text, (int, float)):
        return int(text) if text >= 0 else None
    if not isinstance(text, str):
        return None
    value = text.strip().lower()
    if not value:
        return None
    if re.fullmatch(r"\d+(:\d{1,2}){1,2}", value):
        clock = 0
        for part in value.split(":"):
            clock = clock * 60 + int(part)
        return clock
    value = re.sub(r"\band\b|,", " ", value)
    total = 0.0
    pos = 0
    matched = False
    for m in _PART.finditer(value):
        if value[pos : m.start()].strip():
            return None
        number, unit = float(m.group(1)), m.group(2)
        if unit is None:
            total += number
        elif unit in _UNITS:
            total += number * _UNITS[unit]
        else:
            return None
        pos = m.end()
        matched = True
    if not matched or value[pos:].strip():
        return None
    return int(total)
