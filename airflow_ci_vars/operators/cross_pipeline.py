"""dotenv across pipelines: Asset events for ``needs:project``, XCom for ``needs:pipeline``.

The Airflow side of ``pipeline.cross`` (spec §6.2-§6.3): a job with a dotenv report publishes it as
an event of its dotenv Asset (group ``DOTENV_ASSET_GROUP``); a job of another pipeline that
``needs: [{project: P, job: J, ref: R}]`` reads J's newest event on R, once P's
``ci_job_token_allowlist`` lets this project read it (GitLab's job token check, also made for the
projects whose events started an Asset-triggered run); a child pipeline's job that
``needs: [{pipeline: $PARENT_PIPELINE_ID, job: J}]`` reads J's report in its parent pipeline.
Another project's access settings (``project_access``) serve ``trigger:project``'s check too.
Names, URIs, the event's ``extra`` and which event is the newest are the core's
(``pipeline.cross``). Nothing is kept between calls; what is written in clear is checked by the
operator before ``publish_dotenv``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow.sdk.exceptions import AirflowException

from airflow_ci_vars.errors import CIVarsError
from airflow_ci_vars.jobs import JobSpec
from airflow_ci_vars.operators.dotenv_handoff import DOTENV_XCOM_KEY
from airflow_ci_vars.permissions import ProjectAccess, check_job_token
from airflow_ci_vars.pipeline.cross import dotenv_asset_name, dotenv_asset_source, latest_dotenv
from airflow_ci_vars.stores.base import VariableStore
from airflow_ci_vars.variables import Layer, Variable, VariableSource, expand_value

__all__ = [
    "DOTENV_ASSET_GROUP",
    "ParentPipeline",
    "check_project_job_token",
    "cross_pipeline_dotenv",
    "event_sources",
    "project_access",
    "project_dotenv",
    "publish_dotenv",
]

#: Asset group of the dotenv Assets (``pipeline.cross``); how a job finds its own among its outlets.
DOTENV_ASSET_GROUP = "gitlab-ci-dotenv"
_CROSS_PAGE_SIZE = 50
_CROSS_PAGES = 20


@dataclass(frozen=True)
class ParentPipeline:
    """A child pipeline's parent, as ``needs:pipeline`` sees it: its ``CI_PIPELINE_ID`` and the
    task_id of each of its jobs (by name)."""

    pipeline_id: str
    task_ids: Mapping[str, str]


def publish_dotenv(context: Any, outlets: Any, extra: Mapping[str, object]) -> None:
    """Set ``extra`` (``pipeline.cross.dotenv_event_extra``, checked for clear text) on the event of
    the job's dotenv Asset among ``outlets``, for other pipelines' ``needs:project``."""
    for outlet in outlets:
        if getattr(outlet, "group", None) == DOTENV_ASSET_GROUP:
            context["outlet_events"][outlet].extra = extra


def event_sources(dag_run: Any) -> list[str]:
    """The projects whose dotenv Asset events started this (Asset-triggered) run."""
    events = getattr(dag_run, "consumed_asset_events", None) or ()
    found = (dotenv_asset_source(str(getattr(e.asset, "uri", ""))) for e in events)
    return sorted({source[0] for source in found if source is not None})


def project_access(store: VariableStore, project: str) -> ProjectAccess:
    """``project``'s access settings in ``store`` (its allowlists), for a check made across
    projects (``needs:project``, ``trigger:project``); a store that does not load fails the job."""
    try:
        return store.load(project).access(project)
    except CIVarsError as err:
        raise AirflowException(str(err)) from None


def check_project_job_token(store: VariableStore, project: str, this_project: str, what: str) -> None:
    """``project`` must let ``this_project``'s jobs read it (its ``ci_job_token_allowlist`` in
    ``store``); a refusal fails the job with GitLab's message."""
    if project == this_project:
        return
    source = project_access(store, project)
    try:
        check_job_token(project, source, this_project, what=what)
    except CIVarsError as err:
        raise AirflowException(str(err)) from None


def project_dotenv(project: str, job: str, ref: str, *, needed_by: str) -> dict[str, str]:
    """The dotenv report of ``job``'s newest successful run on ``ref`` in ``project`` (Asset events).

    Only events a task published count: one created through the REST API (no source task)
    is somebody's claim, not a job's report. ``needed_by``: the job that reads it (for the error)."""
    from airflow.sdk.execution_time.context import InletEventsAccessor

    events = InletEventsAccessor(asset_name=dotenv_asset_name(project, job)).ascending(False)
    before = None
    for _ in range(_CROSS_PAGES):
        page = list((events.before(before) if before else events).limit(_CROSS_PAGE_SIZE))
        published = (e.extra or {} for e in page if e.source_task_id is not None and e.source_dag_id is not None)
        report = latest_dotenv(published, ref)
        if report is not None:
            return dict(report)
        if len(page) < _CROSS_PAGE_SIZE:
            break
        before = page[-1].timestamp.isoformat()
    raise AirflowException(
        f"{needed_by} job: needs:project: no successful run of job {job!r} in project {project!r} "
        f"on ref {ref!r} has published a dotenv report"
    )


def parent_pipeline_dotenv(
    ti: Any, name: str, pipeline_id: str, *, needed_by: str, parent: ParentPipeline | None
) -> tuple[dict[str, str], str]:
    """``needs: [{pipeline: $PARENT_PIPELINE_ID, job: J}]`` in a child pipeline: J's dotenv
    (``parent``: None outside a child pipeline) and where it came from."""
    if parent is None or pipeline_id != parent.pipeline_id:
        raise AirflowException(
            f"{needed_by} job: needs:pipeline {pipeline_id!r} is not this child pipeline's parent pipeline "
            "(pass it as PARENT_PIPELINE_ID: $CI_PIPELINE_ID in the trigger job's variables)"
        )
    if name in parent.task_ids:
        report = ti.xcom_pull(task_ids=parent.task_ids[name], key=DOTENV_XCOM_KEY) or {}
        return {str(k): str(v) for k, v in report.items()}, f"dotenv of {name} (parent pipeline)"
    raise AirflowException(f"{needed_by} job: needs:pipeline: the parent pipeline has no job {name!r}")


def cross_pipeline_dotenv(
    ti: Any,
    job: JobSpec,
    seen: Mapping[str, str],
    *,
    store: VariableStore,
    project: str,
    ref: str,
    parent: ParentPipeline | None,
) -> list[Variable]:
    """dotenv variables of jobs of other pipelines (``needs:project``, ``needs:pipeline``), in
    ``needs`` order, their keywords expanded with ``seen`` (``keyword_variables``). A needed job
    without a report on that ref fails this job, naming it."""
    received: list[Variable] = []
    for need in job.cross_needs:
        if not need.artifacts:
            continue
        if need.pipeline is not None:
            report, source = parent_pipeline_dotenv(
                ti, need.job, expand_value(need.pipeline, seen), needed_by=job.name, parent=parent
            )
        else:
            other = expand_value(need.project or "", seen).strip("/")
            need_ref = expand_value(need.ref, seen) if need.ref else ref
            check_project_job_token(store, other, project, "needs:project")
            report = project_dotenv(other, need.job, need_ref, needed_by=job.name)
            source = f"dotenv of {other}:{need.job}@{need_ref}"
        received += [
            Variable(key, value, raw=True, source=VariableSource(Layer.DOTENV, source)) for key, value in report.items()
        ]
    return received
