"""Whether a job runs, from the states of the jobs before it (GitLab's pipeline processing).

R: ``app/services/ci/process_build_service.rb``, ``lib/gitlab/ci/status/composite.rb``. The
"previous status" is the composite of every job of the earlier stages (stage scheduling) or of
the needed jobs (``needs``, DAG scheduling). A job failing with ``allow_failure`` counts as a
success (GitLab: ``success_with_warnings``); a skipped job counts as skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["Composite", "PipelineOutcome", "composite_status", "depend_status", "pipeline_outcome", "should_run"]

Composite = Literal["success", "failed", "skipped"]
_SKIPPED = {"skipped", "upstream_failed", "removed"}
_FAILED = {"failed"}


def composite_status(states: Iterable[str | None], *, dag: bool) -> Composite:
    """The composite status of the previous jobs (Airflow task states in, GitLab's status out).

    Stage scheduling: any failure -> ``failed``; only skipped jobs -> ``skipped``; else
    ``success`` (no jobs at all is a success). DAG scheduling (``needs``): any failure ->
    ``failed``; any skipped needed job -> ``skipped``; else ``success``.
    """
    values = [str(s) if s is not None else "none" for s in states]
    if any(s in _FAILED for s in values):
        return "failed"
    skipped = [s in _SKIPPED for s in values]
    if dag:
        return "skipped" if any(skipped) else "success"
    return "skipped" if values and all(skipped) else "success"


def should_run(when: str, previous: Composite, *, dag: bool) -> bool:
    """GitLab's decision: run, or mark the job skipped."""
    if when in ("on_success", "manual", "delayed"):
        return previous == "success" or (not dag and previous == "skipped")
    if when == "on_failure":
        return previous == "failed"
    return when == "always"


@dataclass(frozen=True, slots=True)
class PipelineOutcome:
    """A pipeline's final status once its jobs are done; ``reason`` says why it ``failed``."""

    status: Composite
    reason: str = ""


def pipeline_outcome(
    jobs: Sequence[str], states: Sequence[str | None], blocking: Collection[str], blocked: Callable[[str], bool]
) -> PipelineOutcome:
    """GitLab's pipeline status from its jobs' final states: failed when a job failed (without
    ``allow_failure``), or when a blocking manual job was not played (GitLab's "blocked" pipeline
    never finishes: ``blocked(job)`` for the skipped ones among ``blocking``); else the
    composite status (``skipped`` when no job ran)."""
    failed = [job for job, state in zip(jobs, states, strict=True) if state == "failed"]
    if failed:
        return PipelineOutcome("failed", f"Pipeline failed: {len(failed)} job(s) failed: {', '.join(failed)}")
    skipped = {job for job, state in zip(jobs, states, strict=True) if state == "skipped"}
    stuck = [job for job in blocking if job in skipped and blocked(job)]
    if stuck:
        return PipelineOutcome("failed", f"Pipeline blocked: manual job(s) not played: {', '.join(stuck)}")
    return PipelineOutcome(composite_status(states, dag=False))


def depend_status(states: Iterable[str | None], *, allows_failure: bool) -> Literal["success", "warning", "failed"]:
    """A ``strategy: depend`` trigger job's status from its child pipeline's job ``states``: failed
    when the child pipeline failed (``warning`` when the trigger job allows failure), else success."""
    if composite_status(states, dag=False) != "failed":
        return "success"
    return "warning" if allows_failure else "failed"
