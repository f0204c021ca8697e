"""Run or skip a job from the states before it (GitLab's pipeline processing, spec §9)."""

from __future__ import annotations

import pytest

from airflow_ci_vars.pipeline.status import composite_status, should_run


@pytest.mark.parametrize(
    ("states", "dag", "expected"),
    [
        ([], False, "success"),
        (["success", "skipped"], False, "success"),
        (["skipped", "skipped"], False, "skipped"),
        (["success", "failed"], False, "failed"),
        (["success", "skipped"], True, "skipped"),  # a needed job skipped: the DAG job is skipped
        (["success", "success"], True, "success"),
        (["upstream_failed"], True, "skipped"),
        (["failed", "skipped"], True, "failed"),
    ],
)
def test_composite_status(states: list[str], dag: bool, expected: str) -> None:
    assert composite_status(states, dag=dag) == expected


@pytest.mark.parametrize(
    ("when", "previous", "dag", "runs"),
    [
        ("on_success", "success", False, True),
        ("on_success", "skipped", False, True),  # stage: skipped previous jobs do not block
        ("on_success", "skipped", True, False),  # DAG: a skipped need skips the job
        ("on_success", "failed", False, False),
        ("on_failure", "failed", False, True),
        ("on_failure", "success", False, False),
        ("always", "failed", False, True),
        ("always", "skipped", True, True),
        ("manual", "success", False, True),
        ("delayed", "failed", False, False),
        ("never", "success", False, False),
    ],
)
def test_should_run(when: str, previous: str, dag: bool, runs: bool) -> None:
    assert should_run(when, previous, dag=dag) is runs  # type: ignore[arg-type]
