"""The pipeline as a DAG's tasks: which tasks are a pipeline's jobs, their states, GitLab's numeric ids.

A DAG holds the top pipeline and its child pipelines (task groups); a job's pipeline is named by
the trigger jobs above it (its *path*, ``()`` for the top pipeline). What GitLab decides from
earlier jobs is the core's (``pipeline.decision.Earlier``, ``jobs.dotenv_sources``); this module
reads the Airflow side for it: task states of the DAG run, and the XComs a job leaves for the
decision of others (left out by ``rules``, a blocking manual job not played). Nothing is kept
between calls.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from airflow_ci_vars.jobs import JobSpec, dotenv_sources
from airflow_ci_vars.pipeline.decision import Earlier

__all__ = [
    "EXCLUDED_XCOM_KEY",
    "MANUAL_BLOCKED_XCOM_KEY",
    "PipelineJobs",
    "earlier_jobs",
    "numeric_id",
    "pipeline_jobs",
    "source_jobs",
    "task_states",
]

#: What a job ``rules`` left out of the pipeline records (``needs`` and ``dependencies`` of others look).
EXCLUDED_XCOM_KEY = "ci_excluded_by_rules"
#: What a blocking manual job nobody played records: later stages stay blocked.
MANUAL_BLOCKED_XCOM_KEY = "ci_manual_blocked"

#: A pipeline's jobs: name -> (task_id, job).
PipelineJobs = dict[str, tuple[str, JobSpec]]


def task_states(ti: Any, dag_run: Any, task_ids: Sequence[str]) -> list[str | None]:
    """The states (``"success"``, ``"skipped"``...; None: not run yet) of tasks of this DAG run."""
    found = ti.get_task_states(dag_id=dag_run.dag_id, task_ids=list(task_ids), run_ids=[dag_run.run_id])
    states = found.get(dag_run.run_id, {}) if isinstance(found, Mapping) else {}
    return [None if states.get(t) is None else str(getattr(states[t], "value", states[t])) for t in task_ids]


def numeric_id(*parts: str) -> str:
    """A stable positive integer for GitLab's numeric ids (``CI_PIPELINE_ID``, ``CI_JOB_ID``)."""
    return str(int(hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12], 16))


def pipeline_jobs(tasks: Iterable[Any], path: tuple[str, ...]) -> PipelineJobs:
    """The CI jobs among ``tasks`` (``CIJobOperator``s) that belong to the pipeline at ``path``
    and count as its jobs (a child pipeline's creating task does not, when a status task stands
    for its trigger job)."""
    return {t.job.name: (t.task_id, t.job) for t in tasks if t.counts_as_job and t.pipeline_path == path}


def source_jobs(job: JobSpec, jobs: PipelineJobs, stages: Sequence[str]) -> list[tuple[str, str, JobSpec]]:
    """(job name, task_id, job) of the jobs ``job`` receives artifacts from (``jobs.dotenv_sources``)."""
    names = dotenv_sources(job, [spec for _, spec in jobs.values()], stages=stages)
    return [(name, *jobs[name]) for name in names]


def earlier_jobs(ti: Any, dag_run: Any, jobs: PipelineJobs, stages: Sequence[str]) -> Earlier:
    """The decision's view of the pipeline's jobs (``pipeline.decision.Earlier``) in this DAG run:
    their states, and what each recorded (left out by ``rules``, a blocking manual job not played)."""

    def states(names: Sequence[str]) -> list[str | None]:
        return task_states(ti, dag_run, [jobs[n][0] for n in names])

    return Earlier(
        jobs={name: job for name, (_, job) in jobs.items()},
        stages=stages,
        states=states,
        excluded=lambda name: bool(ti.xcom_pull(task_ids=jobs[name][0], key=EXCLUDED_XCOM_KEY)),
        blocked=lambda name: bool(ti.xcom_pull(task_ids=jobs[name][0], key=MANUAL_BLOCKED_XCOM_KEY)),
    )
