"""Typed errors of airflow-ci-vars. Every error says what was wrong and where.

Messages copy GitLab's wording where GitLab has one (quoted in ``docs/variables.md``).
Error texts never contain a variable *value*: only keys, file names, lines and columns.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "CIVarsError",
    "DotenvError",
    "ExpansionError",
    "KeyValidationError",
    "MaskabilityError",
    "ParameterError",
    "VariableValidationError",
]


class CIVarsError(Exception):
    """Base class of every error raised by airflow-ci-vars."""


class VariableValidationError(CIVarsError, ValueError):
    """A variable record is invalid (bad key, bad scope, hidden without masked...).

    ``key`` names the offending variable; ``field`` the attribute that was refused.
    """

    def __init__(self, message: str, *, key: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.key = key
        self.field = field


class KeyValidationError(VariableValidationError):
    """A variable key breaks GitLab's key rules."""


class MaskabilityError(VariableValidationError):
    """A value cannot be masked (too short, forbidden characters); ``reason`` says why."""

    def __init__(self, message: str, *, key: str | None = None, reason: str = "") -> None:
        super().__init__(message, key=key, field="masked")
        self.reason = reason


class ExpansionError(CIVarsError):
    """Variable expansion failed, e.g. ``circular variable reference detected: ["A", "B"]``.

    ``cycles`` holds the keys of each cyclic group, in GitLab's order.
    """

    def __init__(self, message: str, *, cycles: Sequence[Sequence[str]] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.cycles = tuple(tuple(c) for c in cycles)


class DotenvError(CIVarsError, ValueError):
    """A dotenv report is invalid. ``line`` is 1-based (None for whole-file errors)."""

    def __init__(self, message: str, *, line: int | None = None, file: str | None = None) -> None:
        self.message = message
        self.line = line
        self.file = file
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.file or ""
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        return f"{where}: {self.message}" if where else self.message

    def with_file(self, file: str) -> DotenvError:
        """Return the same error located in ``file``."""
        return DotenvError(self.message, line=self.line, file=file)


class ParameterError(CIVarsError, ValueError):
    """Pipeline parameters from a REST ``conf`` are invalid.

    ``names`` lists every offending parameter name (all of them, not just the first).
    """

    def __init__(self, message: str, *, names: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.names = tuple(names)
