"""Environment scopes (spec §2) and protected refs (spec §5)."""

from __future__ import annotations

import pytest

from airflow_ci_vars import Variable, matches_environment_scope
from airflow_ci_vars.variables.scopes import matches_ref_pattern, ref_is_protected, select_for_environment


@pytest.mark.parametrize(
    ("scope", "environment", "matches"),
    [
        ("*", "review/app", True),
        ("*", None, True),
        ("review/app", "review/app", True),
        ("review/*", "review/app", True),
        ("review/*", "review/a/b", True),  # '*' crosses '/'
        ("review", "review/app", False),
        ("review/*", "Review/app", False),  # case-sensitive
        ("review/*", None, False),  # a job without environment gets only '*'
        ("review/app", None, False),
        ("rev?ew/app", "review/app", False),  # no '?' wildcard
        ("rev?ew/app", "rev?ew/app", True),
        ("*-staging", "eu-staging", True),
        ("review_*", "reviewXapp", False),  # '_' is literal (escaped in SQL LIKE)
        ("100%*", "100x", False),  # '%' is literal
    ],
)
def test_environment_scope_matching(scope: str, environment: str | None, matches: bool) -> None:
    assert matches_environment_scope(scope, environment) is matches


def test_exact_scope_beats_wildcard_beats_star() -> None:
    variables = [
        Variable("K", "exact", environment_scope="review/app"),
        Variable("K", "wild", environment_scope="review/*"),
        Variable("K", "star"),
        Variable("K", "other", environment_scope="review"),
    ]
    ordered = select_for_environment(variables, "review/app")
    assert [v.value for v in ordered] == ["star", "wild", "exact"]


def test_tie_between_wildcards_the_more_specific_wins() -> None:
    variables = [
        Variable("K", "narrow", environment_scope="review/feat*"),
        Variable("K", "broad", environment_scope="review/*"),
    ]
    ordered = select_for_environment(variables, "review/feature-1")
    assert ordered[-1].value == "narrow"
    # independent of input order
    assert select_for_environment(list(reversed(variables)), "review/feature-1")[-1].value == "narrow"


def test_tie_between_equally_specific_wildcards_is_deterministic() -> None:
    a = Variable("K", "a", environment_scope="*/app")
    b = Variable("K", "b", environment_scope="review/*")
    first = select_for_environment([a, b], "review/app")[-1].value
    assert select_for_environment([b, a], "review/app")[-1].value == first


@pytest.mark.parametrize(
    ("pattern", "ref", "matches"),
    [
        ("main", "main", True),
        ("main", "main2", False),
        ("release/*", "release/1.0", True),
        ("release/*", "release/a/b", True),
        ("release/*", "Release/1.0", False),
        ("*-stable", "13-stable", True),
        ("v*.*", "v1.2", True),
        ("v.*", "vX1", False),  # '.' is literal
    ],
)
def test_protected_ref_patterns(pattern: str, ref: str, matches: bool) -> None:
    assert matches_ref_pattern(pattern, ref) is matches


def test_ref_is_protected_against_several_patterns() -> None:
    assert ref_is_protected("release/2.0", ["main", "release/*"])
    assert not ref_is_protected("feature/x", ["main", "release/*"])
    assert not ref_is_protected(None, ["*"])
