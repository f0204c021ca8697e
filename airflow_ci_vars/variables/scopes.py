"""Environment scopes of instance/group/project variables and protected refs.

GitLab (R: ``app/models/concerns/has_environment_scope.rb``, ``lib/gitlab/sql/glob.rb``): a scope is
``*``, an exact environment name, or a glob where ``*`` matches any run of characters *including*
``/``; matching is case-sensitive; there is no ``?`` wildcard. Among matching definitions of one
key, ``*`` ranks lowest, wildcards in the middle and an exact match highest.

GitLab leaves the order of two matching wildcards unspecified. We decide: the wildcard with more
literal (non-``*``) characters wins, then the longer pattern, then the lexically greater one.
Protected ref patterns (R: ``app/models/ref_matcher.rb``) use the same ``*`` glob, anchored.
Globs are matched by RE2 (``untrusted_regexp.py``): linear time, whatever the number of ``*``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

from airflow_ci_vars.untrusted_regexp import UntrustedRegexp, wildcard_regexp
from airflow_ci_vars.variables.model import Variable

__all__ = [
    "matches_environment_scope",
    "matches_ref_pattern",
    "ref_is_protected",
    "scope_rank",
    "select_for_environment",
]


@lru_cache(maxsize=1024)
def _glob(pattern: str) -> UntrustedRegexp:
    return wildcard_regexp(pattern, star="(?s:.*)")


def matches_environment_scope(scope: str, environment: str | None) -> bool:
    """True when a variable with ``scope`` applies to a job deploying to ``environment``.

    A job without an environment (``None``) only gets ``*``-scoped variables.
    """
    if scope == "*":
        return True
    if environment is None:
        return False
    if scope == environment:
        return True
    return "*" in scope and _glob(scope).fullmatch(environment)


def scope_rank(scope: str, environment: str | None) -> tuple[int, int, int, str]:
    """Sort key of a matching scope: higher sorts later, and later wins."""
    if scope == "*":
        return (0, 0, 0, "")
    if scope == environment:
        return (2, 0, 0, "")
    return (1, len(scope.replace("*", "")), len(scope), scope)


def select_for_environment(variables: Iterable[Variable], environment: str | None) -> list[Variable]:
    """Keep the variables whose scope matches, ordered so that the winning one comes last.

    The sort is stable: definitions of equal rank keep their input order.
    """
    matching = [v for v in variables if matches_environment_scope(v.environment_scope, environment)]
    return sorted(matching, key=lambda v: scope_rank(v.environment_scope, environment))


def matches_ref_pattern(pattern: str, ref: str) -> bool:
    """GitLab's ``RefMatcher``: ``*`` matches any run of characters, anything else is literal."""
    if "*" not in pattern:
        return pattern == ref
    return _glob(pattern).fullmatch(ref)


def ref_is_protected(ref: str | None, protected_refs: Sequence[str]) -> bool:
    """True when ``ref`` matches one of the protected branch/tag patterns."""
    if not ref:
        return False
    return any(matches_ref_pattern(p, ref) for p in protected_refs)
