"""Regular expressions from users, evaluated by RE2 (``google-re2``): linear time, bounded memory.

GitLab compiles every pattern that comes from a user with RE2 (R ``lib/gitlab/untrusted_regexp.rb``:
``RE2::Regexp.new(pattern, log_errors: false)``, error text ``regexp.error``): ``rules:if`` ``=~``
and ``!~``, input ``regex``. Python's ``re`` backtracks (``/^(a+)+$/`` doubles its time per
character), so no user pattern here goes through ``re``; wildcards (environment scopes, include
paths) are built as RE2 patterns too. Patterns and texts are matched as UTF-8 bytes, as RE2 does.
Pure: imports only ``errors`` (nothing of Airflow).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import re2  # type: ignore[import-untyped]  # google-re2 ships no type hints

from airflow_ci_vars.errors import CIVarsError

__all__ = ["RegexpError", "UntrustedRegexp", "wildcard_regexp"]


class RegexpError(CIVarsError, ValueError):
    """RE2 refuses a pattern; ``detail`` is RE2's own error text (GitLab's ``regexp.error``)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # as GitLab: the error is returned, not written to stderr
    return options


_OPTIONS = _options()


def _utf8(text: str) -> bytes:
    # surrogatepass: a lone surrogate (JSON allows "\ud800") is invalid UTF-8 RE2 never matches,
    # rather than an encoding error.
    return text.encode("utf-8", "surrogatepass")


@dataclass(frozen=True)
class UntrustedRegexp:
    """A pattern compiled by RE2 (``Gitlab::UntrustedRegexp``); equal when the sources are.

    Build it with :meth:`compile`. It pickles as its source (compiled again when loaded).
    """

    source: str
    _regexp: Any = field(compare=False, repr=False)

    @classmethod
    def compile(cls, source: str) -> UntrustedRegexp:
        """Compile ``source`` with RE2's default options; :class:`RegexpError` with RE2's text if invalid."""
        try:
            compiled = re2.compile(_utf8(source), _OPTIONS)
        except re2.error as err:
            detail = err.args[0] if err.args else "invalid pattern"
            raise RegexpError(detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)) from None
        return cls(source, compiled)

    def search(self, text: str) -> bool:
        """Whether the pattern matches anywhere in ``text`` (``scan(text).present?``)."""
        return self._regexp.search(_utf8(text)) is not None

    def fullmatch(self, text: str) -> bool:
        """Whether the pattern matches the whole of ``text``."""
        return self._regexp.fullmatch(_utf8(text)) is not None

    def span(self, text: str) -> tuple[int, int] | None:
        """The first match's ``(start, end)`` in ``text``'s UTF-8 bytes, or None."""
        match = self._regexp.search(_utf8(text))
        return None if match is None else tuple(match.span())

    def __reduce__(self) -> tuple[object, ...]:
        return (_compiled, (self.source,))


def _compiled(source: str) -> UntrustedRegexp:
    return UntrustedRegexp.compile(source)


def wildcard_regexp(pattern: str, *, star: str, double_star: str | None = None) -> UntrustedRegexp:
    """A glob of literal text and ``*`` (and ``**`` when ``double_star`` is given) as an RE2 pattern.

    ``*`` becomes the RE2 text ``star``, ``**`` becomes ``double_star``; everything else is
    quoted. Match it with :meth:`UntrustedRegexp.fullmatch`.
    """
    doubles = pattern.split("**") if double_star is not None else [pattern]
    body = (double_star or "").join(star.join(re2.escape(part) for part in piece.split("*")) for piece in doubles)
    return UntrustedRegexp.compile(body)
