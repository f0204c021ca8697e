"""Run or skip a job from the states before it (GitLab's pipeline processing, spec §9)."""

from __future__ import annotations

import pytest

from airflow_ci_vars.pipeline.status import composite_status, depend_status, pipeline_outcome, should_run


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


def test_pipeline_outcome_names_the_failed_jobs_then_the_blocking_manual_ones() -> None:
    jobs = ["build", "deploy", "approve"]
    failed = pipeline_outcome(jobs, ["success", "failed", "skipped"], ["approve"], lambda job: True)
    assert failed.status == "failed"
    assert failed.reason == "Pipeline failed: 1 job(s) failed: deploy"
    blocked = pipeline_outcome(jobs, ["success", "skipped", "skipped"], ["approve"], lambda job: job == "approve")
    assert (blocked.status, blocked.reason) == ("failed", "Pipeline blocked: manual job(s) not played: approve")
    optional = pipeline_outcome(jobs, ["success", "skipped", "skipped"], ["approve"], lambda job: False)
    assert (optional.status, optional.reason) == ("success", "")
    assert pipeline_outcome(jobs, ["skipped"] * 3, [], lambda job: False).status == "skipped"


def test_depend_status_follows_the_child_pipeline() -> None:
    assert depend_status(["success", "skipped"], allows_failure=False) == "success"
    assert depend_status(["success", "failed"], allows_failure=False) == "failed"
    assert depend_status(["success", "failed"], allows_failure=True) == "warning"
    assert depend_status([], allows_failure=False) == "success"
