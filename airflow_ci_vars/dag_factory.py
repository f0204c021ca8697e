"""The DAG factory: a ``.gitlab-ci.yml`` becomes an Airflow DAG.

A DAG file is one line (one small loader file per pipeline, so that one broken pipeline never
takes other DAGs down)::

    from airflow_ci_vars import gitlab_ci_dag
    dag = gitlab_ci_dag("pipelines/etl/.gitlab-ci.yml", project="acme/data/etl")

Shape (``../shared/design.md`` §1): one ``CIJobOperator`` per job instance (task display name =
GitLab's job name); stage order through one no-op gate per stage, so edges grow linearly; ``needs``
as direct edges (``needs: []`` starts at once); a final ``pipeline`` task that fails when a job
failed (GitLab's pipeline status). Every job task has ``trigger_rule=all_done`` and decides at run
time, as GitLab does, from ``rules`` and ``when`` (see docs/pipelines.md).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import DAG, BaseOperator
from airflow.sdk.exceptions import AirflowException

from airflow_ci_vars.operators.ci_job import CIJobOperator
from airflow_ci_vars.pipeline.model import Pipeline, PipelineJob, load_pipeline, task_id_for
from airflow_ci_vars.pipeline.seed import seed_variables
from airflow_ci_vars.pipeline.status import composite_status

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["PipelineStatusOperator", "build_dag", "dag_id_for", "gitlab_ci_dag"]


def dag_id_for(project: str | None, path: Path) -> str:
    """The default DAG id: the project path (``acme/data/etl`` -> ``acme_data_etl``), else the folder."""
    base = project or path.parent.name or "pipeline"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", base).strip("_") or "pipeline"


class PipelineStatusOperator(BaseOperator):
    """The pipeline's status, as GitLab computes it: fails when a job failed (without ``allow_failure``)."""

    ui_color = "#e8e8e8"

    def __init__(self, *, job_task_ids: Sequence[str], **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.job_task_ids = list(job_task_ids)

    def execute(self, context: Context) -> str:
        """Return ``success`` (or ``skipped`` when no job ran); raise when a job failed."""
        dag_run = context["dag_run"]
        found = context["ti"].get_task_states(
            dag_id=dag_run.dag_id, task_ids=self.job_task_ids, run_ids=[dag_run.run_id]
        )
        states = found.get(dag_run.run_id, {}) if isinstance(found, Mapping) else {}
        values = [
            None if states.get(t) is None else str(getattr(states[t], "value", states[t])) for t in self.job_task_ids
        ]
        failed = [t for t, s in zip(self.job_task_ids, values, strict=True) if s == "failed"]
        if failed:
            raise AirflowException(f"Pipeline failed: {len(failed)} job(s) failed: {', '.join(failed)}")
        return composite_status(values, dag=False)


def build_dag(
    pipeline: Pipeline,
    *,
    dag_id: str,
    project: str | None = None,
    project_dir: str | os.PathLike[str] | None = None,
    settings: str | os.PathLike[str] | None = None,
    **dag_kwargs: Any,
) -> DAG:
    """Turn a validated ``Pipeline`` into a DAG (see the module docstring for the shape)."""
    dag_kwargs.setdefault("schedule", None)
    dag_kwargs.setdefault("is_paused_upon_creation", False)
    dag_kwargs.setdefault("tags", ["gitlab-ci"])
    dag_kwargs.setdefault("doc_md", f"GitLab CI pipeline `{pipeline.file}` (airflow-ci-vars).")
    by_stage: dict[str, list[PipelineJob]] = {}
    for job in pipeline.jobs:
        by_stage.setdefault(job.stage, []).append(job)
    used = [s for s in pipeline.stages if s in by_stage]
    with DAG(dag_id, **dag_kwargs) as dag:
        tasks: dict[str, BaseOperator] = {}
        for job in pipeline.jobs:
            tasks[job.name] = _job_task(job, pipeline, project, project_dir, settings)
        # Edges are set in bulk: each set_upstream/set_downstream call costs a pass over the DAG.
        previous: list[PipelineJob] = []
        gate: BaseOperator | None = None
        for stage in used:
            if previous:
                gate = _gate(stage)
                gate.set_upstream([tasks[j.name] for j in previous])
            in_stage = by_stage[stage]
            staged = [tasks[j.name] for j in in_stage if j.spec.needs is None]
            if gate is not None and staged:
                gate.set_downstream(staged)
            for job in in_stage:
                if job.spec.needs:
                    tasks[job.name].set_upstream([tasks[n.job] for n in job.spec.needs])
            previous = in_stage
        status = PipelineStatusOperator(
            task_id="pipeline", task_display_name="pipeline status", job_task_ids=[j.task_id for j in pipeline.jobs]
        )
        status.set_upstream(list(tasks.values()))
    return dag


def _gate(stage: str) -> BaseOperator:
    from airflow.providers.standard.operators.empty import EmptyOperator

    return EmptyOperator(
        task_id=task_id_for(f"stage {stage}"), task_display_name=f"stage: {stage}", trigger_rule="all_done"
    )


def _job_task(
    job: PipelineJob,
    pipeline: Pipeline,
    project: str | None,
    project_dir: str | os.PathLike[str] | None,
    settings: str | os.PathLike[str] | None,
) -> BaseOperator:
    kwargs: dict[str, Any] = {"task_id": job.task_id, "task_display_name": job.name}
    if job.retry:
        kwargs["retries"] = job.retry
    if job.timeout:
        kwargs["execution_timeout"] = timedelta(seconds=job.timeout)
    if job.trigger is not None:
        return _trigger_task(job, pipeline, **kwargs)
    return CIJobOperator(
        job=job.spec,
        project=project,
        project_dir=project_dir,
        settings_file=settings,
        stages=pipeline.stages,
        workflow_rules=pipeline.workflow_rules,
        **kwargs,
    )


def _trigger_task(job: PipelineJob, pipeline: Pipeline, **kwargs: Any) -> BaseOperator:
    """``trigger:`` -> ``TriggerDagRunOperator`` (multi-project: the project's DAG id)."""
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

    trigger = job.trigger or {}
    target = trigger.get("project")
    if not isinstance(target, str):
        raise AirflowException(f"jobs:{job.name}:trigger: only trigger:project is supported so far")
    forward = trigger.get("forward") if isinstance(trigger.get("forward"), Mapping) else {}
    assert isinstance(forward, Mapping)
    variables: dict[str, str] = {}
    if forward.get("yaml_variables", True):
        for v in pipeline.variables:
            variables[v.key] = v.value
        for v in job.spec.variables or ():
            variables[v.key] = v.value
    conf: dict[str, Any] = {"variables": variables, "pipeline_source": "pipeline"}
    if isinstance(trigger.get("branch"), str):
        conf["ref"] = trigger["branch"]
    return TriggerDagRunOperator(
        trigger_dag_id=dag_id_for(target, Path(target)),
        conf=conf,
        wait_for_completion=trigger.get("strategy") == "depend",
        trigger_rule="all_done",
        **kwargs,
    )


def gitlab_ci_dag(
    path: str | os.PathLike[str],
    *,
    project: str | None = None,
    dag_id: str | None = None,
    settings: str | os.PathLike[str] | None = None,
    **dag_kwargs: Any,
) -> DAG:
    """Build the DAG of a ``.gitlab-ci.yml``; errors name the file, line and column.

    ``project`` is the GitLab project path (``acme/data/etl``) that names the group chain of the
    variable store; ``settings`` a settings file (default: the configured store). Scripts run
    in a copy of the folder holding the file.
    """
    file = Path(path).resolve()
    # Includes are resolved at parse time: their rules see a run on the default branch.
    pipeline = load_pipeline(file, seed=seed_variables(ref="main", project=project))
    return build_dag(
        pipeline,
        dag_id=dag_id or dag_id_for(project, file),
        project=project,
        project_dir=file.parent,
        settings=settings,
        **dag_kwargs,
    )
