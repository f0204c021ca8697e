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

import dataclasses
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import DAG, Asset, BaseOperator, get_parsing_context
from airflow.sdk.exceptions import AirflowException

from airflow_ci_vars.include_settings import include_sources
from airflow_ci_vars.operators.ci_job import DOTENV_ASSET_GROUP, CIJobOperator, task_states
from airflow_ci_vars.operators.manual_approval import MANUAL_BLOCKED_XCOM_KEY
from airflow_ci_vars.parameters import conf_schemas
from airflow_ci_vars.pipeline.cache import ParseCache
from airflow_ci_vars.pipeline.children import Bridge, Forward, bridge_of
from airflow_ci_vars.pipeline.cross import dotenv_asset_name, dotenv_asset_uri
from airflow_ci_vars.pipeline.decision import needed_instances, rules_needs
from airflow_ci_vars.pipeline.loader import load_pipeline, pipeline_warnings
from airflow_ci_vars.pipeline.manual import always_optional_manual, may_block
from airflow_ci_vars.pipeline.model import Pipeline, PipelineJob, task_id_for
from airflow_ci_vars.pipeline.run_form import RunForm
from airflow_ci_vars.pipeline.seed import parse_seed
from airflow_ci_vars.pipeline.status import pipeline_outcome

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["PipelineStatusOperator", "build_dag", "dag_id_for", "dotenv_asset", "gitlab_ci_dag", "trigger_params"]

logger = logging.getLogger(__name__)


def dag_id_for(project: str | None, path: Path) -> str:
    """The default DAG id: the project path (``acme/data/etl`` -> ``acme_data_etl``), else the folder."""
    base = project or path.parent.name or "pipeline"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", base).strip("_") or "pipeline"


class PipelineStatusOperator(BaseOperator):
    """The pipeline's status, as GitLab computes it: fails when a job failed (without ``allow_failure``),
    or when a blocking manual job was not played (GitLab's "blocked" pipeline never finishes).

    ``blocking_task_ids``: the jobs that may be blocking manual jobs (``may_block``).
    """

    ui_color = "#e8e8e8"

    def __init__(self, *, job_task_ids: Sequence[str], blocking_task_ids: Sequence[str] = (), **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.job_task_ids = list(job_task_ids)
        self.blocking_task_ids = list(blocking_task_ids)

    def execute(self, context: Context) -> str:
        """Return ``success`` (or ``skipped`` when no job ran); raise when a job failed."""
        ti = context["ti"]
        outcome = pipeline_outcome(
            self.job_task_ids,
            task_states(ti, context["dag_run"], self.job_task_ids),
            self.blocking_task_ids,
            lambda task_id: bool(ti.xcom_pull(task_ids=task_id, key=MANUAL_BLOCKED_XCOM_KEY)),
        )
        if outcome.reason:
            raise AirflowException(outcome.reason)
        return outcome.status


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
    # The run's conf is checked by Airflow when a run is created: a bad name or shape is HTTP 400.
    params = {
        **(trigger_params(pipeline.form) if pipeline.form else {}),
        **conf_params(),
        **dict(dag_kwargs.pop("params", None) or {}),
    }
    options = _Options(project, project_dir, settings, pipeline.form, asset_project=project or dag_id)
    with DAG(dag_id, **dag_kwargs) as dag:
        _add_pipeline(pipeline, options)
        # Every leaf (a job, or a child pipeline's last jobs) leads here, so the DAG run's state
        # is the pipeline's: a child pipeline without strategy: depend does not fail its parent.
        # An optional manual job may wait for its approval long after the pipeline is done.
        leaves = [t for t in dag.tasks if not t.downstream_task_ids and t.task_id not in options.optional]
        status = PipelineStatusOperator(
            task_id="pipeline",
            task_display_name="pipeline status",
            job_task_ids=[j.task_id for j in pipeline.jobs],
            blocking_task_ids=[j.task_id for j in pipeline.jobs if j.spec.trigger is None and may_block(j.spec)],
        )
        _connect(leaves, [status])
    # Set once the tasks exist: every operator created in a DAG deep-copies the DAG's params (about
    # 0.3 ms each with these schemas, the largest cost of a big pipeline's build). The jobs read the
    # run's conf, never their params; Airflow validates a run against the DAG's params.
    for name, param in params.items():
        dag.params[name] = param
    return dag


@dataclass(frozen=True, slots=True)
class _Options:
    project: str | None
    project_dir: str | os.PathLike[str] | None
    settings: str | os.PathLike[str] | None
    run_form: RunForm | None = None
    #: the project that names this pipeline's dotenv Assets (``project``, else the DAG id)
    asset_project: str = ""
    #: task ids of optional manual jobs, in every pipeline (filled while the DAG is built)
    optional: set[str] = field(default_factory=set)


def _add_pipeline(
    pipeline: Pipeline,
    options: _Options,
    *,
    start: BaseOperator | None = None,
    bridges: tuple[Bridge, ...] = (),
    created_by: str | None = None,
) -> dict[str, BaseOperator]:
    """Add a pipeline's jobs, stage gates and ``needs`` edges; return each job's last task by name.

    A child pipeline's jobs come after ``start`` (the task with id ``created_by`` that created the
    child pipeline) and receive what the trigger jobs ``bridges`` forward.
    """
    by_stage: dict[str, list[PipelineJob]] = {}
    for job in pipeline.jobs:
        by_stage.setdefault(job.stage, []).append(job)
    used = [s for s in pipeline.stages if s in by_stage]
    first: dict[str, BaseOperator] = {}  # where a job's incoming edges go
    last: dict[str, BaseOperator] = {}  # where its outgoing edges start
    for job in pipeline.jobs:
        child = pipeline.children.get(job.name)
        if child is None:
            first[job.name] = last[job.name] = _job_task(job, pipeline, options, bridges, created_by)
        else:
            first[job.name], last[job.name] = _child_pipeline(job, pipeline, child, options, bridges, created_by)
        if _optional_manual(job):
            options.optional.add(last[job.name].task_id)
    held: list[BaseOperator] | None = None  # what the next stage's gate waits for
    placed: set[str] = set()  # the jobs of this stage and the earlier ones
    gate = start
    for stage in used:
        if held is not None:
            gate = _gate(stage)
            _connect(held, [gate])
        in_stage = by_stage[stage]
        placed.update(j.name for j in in_stage)
        staged = [first[j.name] for j in in_stage if j.spec.needs is None]
        if gate is not None and staged:
            _connect([gate], staged)
        for job in in_stage:
            if job.spec.needs:
                _connect([last[n.job] for n in job.spec.needs], [first[job.name]])
            elif job.spec.needs is not None and start is not None:
                _connect([start], [first[job.name]])
            # rules:needs: the task waits for every job a rule may need (of this or an earlier
            # stage); which of them count is decided at run time (pipeline.decision).
            ruled = [last[n] for name in rules_needs(job.spec) for n in needed_instances(name, placed) if n != job.name]
            if ruled:
                _connect(ruled, [first[job.name]])
        # GitLab: an optional manual job never holds later stages back (only jobs that need it wait).
        held = [last[j.name] for j in in_stage if not _optional_manual(j)] or ([gate] if gate is not None else [])
    return last


def _connect(upstream: Sequence[Any], downstream: Sequence[Any]) -> None:
    """An edge from every task of ``upstream`` to every task of ``downstream``.

    Every task here was created in the DAG's context, so this fills the id sets that
    ``set_upstream`` fills without its consistency check, which hashes the whole DAG once per task
    of each call: at 2,000 jobs that check was the largest single cost of building the DAG.
    """
    down_ids = [t.task_id for t in downstream]
    up_ids = [t.task_id for t in upstream]
    for task in upstream:
        task.downstream_task_ids.update(down_ids)
    for task in downstream:
        task.upstream_task_ids.update(up_ids)


def _optional_manual(job: PipelineJob) -> bool:
    """A job that, whenever it is in a pipeline, is an optional (non-blocking) manual job."""
    return job.spec.trigger is None and always_optional_manual(job.spec)


def _child_pipeline(
    job: PipelineJob,
    pipeline: Pipeline,
    child: Pipeline,
    options: _Options,
    bridges: tuple[Bridge, ...],
    created_by: str | None,
) -> tuple[BaseOperator, BaseOperator]:
    """A ``trigger:include`` job and its child pipeline, as a task group; returns (first, last) task.

    The trigger job decides like a job and creates the child pipeline; with ``strategy: depend``
    a task named after it follows the child pipeline and takes its status (GitLab's trigger job).
    """
    from airflow.sdk import TaskGroup

    from airflow_ci_vars.operators.child_pipeline import ChildPipelineOperator, ChildPipelineStatusOperator

    bridge = bridge_of(job)
    depend = bridge.strategy_depend
    common = _job_kwargs(job, pipeline, options, bridges, created_by)
    group_id = f"{job.task_id}__child"
    if not depend:
        create = ChildPipelineOperator(**common)
    with TaskGroup(group_id=group_id, tooltip=f"child pipeline of {job.name}"):
        if depend:
            create = ChildPipelineOperator(
                **{**common, "task_id": "created", "task_display_name": f"{job.name}: child pipeline created"},
                counts_as_job=False,
            )
        bridge = dataclasses.replace(bridge, task_id=create.task_id)
        tasks = _add_pipeline(child, options, start=create, bridges=(*bridges, bridge), created_by=create.task_id)
    if not depend:
        return create, create
    # GitLab's trigger job mirrors the child pipeline's status, which optional manual jobs do not hold.
    waited = [tasks[j.name] for j in child.jobs if not _optional_manual(j)]
    done = ChildPipelineStatusOperator(**common, created_by=create.task_id, child_task_ids=[t.task_id for t in waited])
    _connect(waited or [create], [done])
    return create, done


def _gate(stage: str) -> BaseOperator:
    from airflow.providers.standard.operators.empty import EmptyOperator

    return EmptyOperator(
        task_id=task_id_for(f"stage {stage}"), task_display_name=f"stage: {stage}", trigger_rule="all_done"
    )


def _job_kwargs(
    job: PipelineJob, pipeline: Pipeline, options: _Options, bridges: tuple[Bridge, ...], created_by: str | None
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "task_id": job.task_id,
        "task_display_name": job.name,
        "job": job.spec,
        "project": options.project,
        "project_dir": options.project_dir,
        "settings_file": options.settings,
        "stages": pipeline.stages,
        "workflow_rules": pipeline.workflow_rules,
    }
    if bridges:
        kwargs["bridges"] = bridges
        kwargs["bridge_task_id"] = created_by
    if options.run_form:
        kwargs["run_form"] = options.run_form
    if job.spec.artifacts.dotenv and job.spec.trigger is None:
        # Other pipelines receive this job's dotenv through this Asset's events (needs:project).
        kwargs["outlets"] = [dotenv_asset(options.asset_project, job.name)]
    if job.spec.retry:
        kwargs["retries"] = job.spec.retry
    if job.spec.timeout:
        kwargs["execution_timeout"] = timedelta(seconds=job.spec.timeout)
    if job.spec.tags:
        # GitLab's tags pick the runner; Airflow's closest notion is the task's (Celery) queue. A
        # task has one queue, so with several tags the first one wins (lint warns).
        kwargs["queue"] = job.spec.tags[0]
    return kwargs


def _job_task(
    job: PipelineJob, pipeline: Pipeline, options: _Options, bridges: tuple[Bridge, ...], created_by: str | None
) -> BaseOperator:
    kwargs = _job_kwargs(job, pipeline, options, bridges, created_by)
    if job.spec.trigger is not None and "include" in job.spec.trigger:
        from airflow_ci_vars.operators.child_pipeline import DynamicChildPipelineOperator

        return DynamicChildPipelineOperator(**kwargs)
    if job.spec.trigger is not None:
        return _trigger_task(job, **kwargs)
    return CIJobOperator(**kwargs)


def _trigger_task(pipeline_job: PipelineJob, **kwargs: Any) -> BaseOperator:
    """``trigger:project`` -> a job that starts the project's DAG (``dag_id_for(project)``)."""
    from airflow_ci_vars.operators.multi_project import MultiProjectTriggerOperator

    trigger = pipeline_job.spec.trigger or {}
    target = trigger.get("project")
    if not isinstance(target, str):
        raise AirflowException(f"jobs:{pipeline_job.name}:trigger: needs include or project")
    branch = trigger.get("branch")
    return MultiProjectTriggerOperator(
        trigger_dag_id=dag_id_for(target, Path(target)),
        target_project=target,
        branch=branch if isinstance(branch, str) else None,
        depend=trigger.get("strategy") == "depend",
        forward=Forward.of(trigger),
        **kwargs,
    )


def gitlab_ci_dag(
    path: str | os.PathLike[str],
    *,
    project: str | None = None,
    dag_id: str | None = None,
    settings: str | os.PathLike[str] | None = None,
    inputs: Mapping[str, object] | None = None,
    **dag_kwargs: Any,
) -> DAG | None:
    """Build the DAG of a ``.gitlab-ci.yml``; errors name the file, line and column.

    ``project`` is the GitLab project path (``acme/data/etl``) that names the group chain of the
    variable store; ``settings`` a settings file (default: the configured store). Scripts run
    in a copy of the folder holding the file. ``inputs`` give the file's own ``spec:inputs`` the
    values the DAG is built with (required ones need one); they prefill the trigger form, where a
    run may choose others (docs/pipelines.md). The pipeline is loaded by the one loader
    (``pipeline.loader``, as ``lint`` loads it: an invalid file raises every error ``lint`` prints;
    warnings are logged) and cached on disk (``[ci_vars] parse_cache_dir``). Returns None, building
    nothing, when Airflow parses the file to run a task of another DAG (``get_parsing_context().dag_id``).
    """
    file = Path(path).resolve()
    dag_id = dag_id or dag_id_for(project, file)
    # A task start re-parses its DAG file with the parsing context naming that DAG: another DAG of
    # the same file is not needed then. No placeholder DAG either: `airflow tasks ...` commands
    # parse under that context and write the DAGs they found to the metadata DB.
    wanted = get_parsing_context().dag_id
    if wanted is not None and wanted != dag_id:
        return None
    # Includes are resolved at parse time: their rules see a run on the default branch.
    seed = parse_seed(project)
    sources = include_sources(settings_file=settings)
    cache_dir = _parse_cache_dir()
    containers = _containers_configured()
    if cache_dir is None:
        pipeline = load_pipeline(file, seed=seed, inputs=inputs, sources=sources, containers=containers)
    else:
        cache = ParseCache(cache_dir, sources=sources, containers=containers)
        pipeline = cache.load(file, seed=seed, inputs=inputs)
    for warning in pipeline_warnings(pipeline):
        logger.warning("%s: warning: %s", warning.where or file, warning.message)
    return build_dag(
        pipeline,
        dag_id=dag_id,
        project=project,
        project_dir=file.parent,
        settings=settings,
        **dag_kwargs,
    )


def dotenv_asset(project: str, job: str) -> Asset:
    """The Asset whose events carry the dotenv reports of ``job`` in ``project`` (``needs:project``).

    A DAG can be scheduled on it: ``gitlab_ci_dag(..., schedule=[dotenv_asset("acme/app", "build")])``
    runs the pipeline each time that job succeeds.
    """
    return Asset(name=dotenv_asset_name(project, job), uri=dotenv_asset_uri(project, job), group=DOTENV_ASSET_GROUP)


def conf_params() -> dict[str, Any]:
    """The DAG params of the run conf keys a pipeline reads (``variables``, ``build_parameters``,
    ``ref``, ``sha``, ``environment``), with their JSON schemas."""
    from airflow.sdk import Param

    defaults: dict[str, object] = {"variables": {}, "build_parameters": {}}
    params: dict[str, Any] = {}
    for name, schema in conf_schemas().items():
        body: dict[str, Any] = dict(schema)
        description = body.pop("description", None)
        params[name] = Param(defaults.get(name), description=str(description), section="Pipeline", **body)
    return params


def trigger_params(form: RunForm) -> dict[str, Any]:
    """The DAG params of GitLab's Run pipeline form: one ``Param`` per ``spec:inputs`` input and
    prefilled variable, with its JSON schema (``section`` groups them in Airflow's trigger form)."""
    from airflow.sdk import Param

    params: dict[str, Any] = {}
    for form_field in form.fields:
        schema = dict(form_field.schema)
        description = schema.pop("description", None)
        params[form_field.name] = Param(form_field.default, description=description, **schema)
    return params


def _containers_configured() -> bool:
    """Whether ``[ci_vars] isolation = docker``: jobs run in containers, so ``image:``/``services:``
    are used (the loader does not warn about them)."""
    from airflow.sdk import conf

    from airflow_ci_vars.isolation import CONTAINER_MODE

    mode = str(conf.get("ci_vars", "isolation", fallback="") or "")
    return mode.strip().lower() == CONTAINER_MODE


def _parse_cache_dir() -> Path | None:
    """``[ci_vars] parse_cache_dir`` (default ``$AIRFLOW_HOME/cache/airflow-ci-vars``); None when disabled."""
    from airflow.configuration import AIRFLOW_HOME, conf

    configured = conf.get("ci_vars", "parse_cache_dir", fallback=None)
    if configured is None:  # the provider's configuration is not loaded
        return Path(AIRFLOW_HOME) / "cache" / "airflow-ci-vars"
    configured = configured.strip()
    if not configured or configured.lower() == "false":
        return None
    return Path(configured).expanduser()
