"""``airflow-ci-vars run``'s direct engine: a pipeline's jobs run in this process, without Airflow.

The same code as ``CIJobOperator`` on a worker, minus Airflow's task runner: the run's checks
(``permissions``), its pipeline variables (``run_form``), GitLab's decision on each job
(``pipeline.decision.decide``) on the states of the jobs before it, and the job itself through
``operators.job_execution.execute_job`` (workspace, ``resolve()``, masker, runner, artifacts,
dotenv). What Airflow keeps between tasks (task states, XComs, the artifact store) is kept here
in memory and in a temporary folder; Airflow's configuration is read without importing Airflow
(``airflow_config.AirflowOptions``). Jobs run one at a time, in the order the factory's DAG
allows (stage, then file order); a child pipeline (``trigger:include``) right after its trigger
job, as the factory's task group. A multi-project trigger, a dynamic child pipeline or a
cross-pipeline ``needs`` needs Airflow (``needs_airflow``): ``run`` then takes ``--engine airflow``.
docs/cli.md lists what differs.
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from airflow_ci_vars.airflow_config import AirflowOptions
from airflow_ci_vars.dotenv import DEFAULT_MAX_BYTES, DEFAULT_MAX_VARIABLES
from airflow_ci_vars.errors import CIVarsError, JobFailedError
from airflow_ci_vars.jobs import JobSpec
from airflow_ci_vars.masking import Masker
from airflow_ci_vars.operators.artifact_store import restore_files, store_files
from airflow_ci_vars.operators.dotenv_handoff import dotenv_variables
from airflow_ci_vars.operators.job_execution import JobExecution, JobResult, execute_job, job_secrets
from airflow_ci_vars.operators.pipeline_tasks import PipelineJobs, numeric_id, source_jobs
from airflow_ci_vars.operators.run_output import RUN_DAG_ID, shown_name
from airflow_ci_vars.operators.sandboxing import JobBoundary, prepare_boundary
from airflow_ci_vars.parameters import restricted_conf
from airflow_ci_vars.permissions import (
    check_deploy,
    check_pipeline_variables,
    check_play,
    check_run,
    may_deploy,
    may_set_pipeline_variables,
    run_trigger,
)
from airflow_ci_vars.pipeline.children import Bridge, bridge_of
from airflow_ci_vars.pipeline.decision import Earlier, decide, files_exist, needed_instances, pipeline_run, rules_needs
from airflow_ci_vars.pipeline.downstream import CHILD_PIPELINE_SOURCE, child_pipeline_variables
from airflow_ci_vars.pipeline.environment import environment_name
from airflow_ci_vars.pipeline.manual import (
    always_optional_manual,
    is_blocking_manual,
    manual_request,
    may_block,
    played_in_conf,
)
from airflow_ci_vars.pipeline.model import Pipeline, PipelineJob
from airflow_ci_vars.pipeline.run_form import run_pipeline_variables
from airflow_ci_vars.pipeline.run_inputs import job_with_inputs
from airflow_ci_vars.pipeline.status import PipelineOutcome, depend_status, pipeline_outcome
from airflow_ci_vars.runner import JobRunner
from airflow_ci_vars.settings import LayerArguments
from airflow_ci_vars.stores.base import VariableStore
from airflow_ci_vars.stores.configured import configured_store, project_settings
from airflow_ci_vars.variables import Variable
from airflow_ci_vars.variables.predefined import job_group_name

__all__ = ["DirectRun", "JobEvents", "job_order", "needs_airflow"]


def needs_airflow(pipeline: Pipeline) -> str | None:
    """Why ``pipeline`` needs Airflow's engine (a multi-project or dynamic child pipeline trigger,
    ``needs:project``/``needs:pipeline``), or None when the direct engine runs it (child pipelines
    of ``trigger:include`` included)."""
    for job in pipeline.jobs:
        child = pipeline.children.get(job.name)
        if child is not None:
            reason = needs_airflow(child)
            if reason is not None:
                return reason
        elif job.spec.trigger is not None:
            return f"job {job.name!r} triggers another project's or a generated pipeline"
        if job.spec.cross_needs:
            return f"job {job.name!r} needs a job of another pipeline"
    return None


def _upstream(pipeline: Pipeline) -> dict[str, set[str]]:
    """Each job's upstream jobs, as the factory draws the DAG's edges: every job of the earlier
    stages (through the stage gates, an optional manual job holding nothing back), the jobs of
    its ``needs`` (``needs: []``: none), and every job a ``rules:needs`` may name."""
    by_stage: dict[str, list[PipelineJob]] = {}
    for job in pipeline.jobs:
        by_stage.setdefault(job.stage, []).append(job)
    upstream: dict[str, set[str]] = {}
    held: set[str] = set()  # what a job of the next stage waits for
    placed: set[str] = set()
    for stage in (s for s in pipeline.stages if s in by_stage):
        in_stage = by_stage[stage]
        placed.update(j.name for j in in_stage)
        for job in in_stage:
            needs = job.spec.needs
            found = set(held) if needs is None else {n.job for n in needs}
            found.update(n for name in rules_needs(job.spec) for n in needed_instances(name, placed) if n != job.name)
            upstream[job.name] = found
        held = held | {j.name for j in in_stage if not always_optional_manual(j.spec)}
    return upstream


def job_order(pipeline: Pipeline) -> list[PipelineJob]:
    """The pipeline's jobs in an order the factory's DAG allows: each after its upstream jobs,
    the earliest stage first, then the order of the file."""
    upstream = _upstream(pipeline)
    index = {job.name: i for i, job in enumerate(pipeline.jobs)}
    stage = {s: i for i, s in enumerate(pipeline.stages)}
    waiting = {name: set(found) for name, found in upstream.items()}
    downstream: dict[str, list[str]] = {}
    for name, found in upstream.items():
        for up in found:
            downstream.setdefault(up, []).append(name)
    by_name = {job.name: job for job in pipeline.jobs}
    ready = [(stage[j.stage], index[j.name], j.name) for j in pipeline.jobs if not waiting[j.name]]
    heapq.heapify(ready)
    ordered: list[PipelineJob] = []
    while ready:
        _, _, name = heapq.heappop(ready)
        ordered.append(by_name[name])
        for down in downstream.get(name, ()):
            waiting[down].discard(name)
            if not waiting[down]:
                heapq.heappush(ready, (stage[by_name[down].stage], index[down], down))
    return ordered  # the loader refused cycles: every job is here


class JobEvents(Protocol):
    """Where a run's events go: a job starting, each masked output line, its status, the run's
    own messages. ``run`` writes them as text or JSON lines (``local_run``)."""

    def started(self, job: str, stage: str) -> None:
        """``job`` starts (its decision is next)."""

    def line(self, job: str, text: str) -> None:
        """One masked line of ``job``'s output."""

    def status(self, job: str, status: str, seconds: float) -> None:
        """``job`` ended with ``status`` after ``seconds``."""


@dataclass
class _Kept:
    """What Airflow keeps between a run's tasks (task states, XComs, the artifact store)."""

    root: Path
    states: dict[str, str] = field(default_factory=dict)
    excluded: set[str] = field(default_factory=set)
    blocked: set[str] = field(default_factory=set)
    dotenv: dict[str, dict[str, str]] = field(default_factory=dict)
    artifacts: dict[str, Path] = field(default_factory=dict)


@dataclass
class _Host:
    """``job_execution.JobHost`` of the direct engine: output to ``JobEvents`` (as ``shown``),
    artifacts under the run's temporary folder, the runner held for the job's timeout."""

    name: str
    shown: str
    sources: Sequence[str]
    kept: _Kept
    events: JobEvents
    log: Any  # the run's messages (warnings and errors reach the terminal)
    runner: JobRunner | None = None

    def emit(self, line: str) -> None:
        """A masked output line, as it is produced."""
        self.events.line(self.shown, line)

    def restore_artifacts(self, project_dir: Path) -> None:
        """The source jobs' files, a later source winning."""
        for source in self.sources:
            location = self.kept.artifacts.get(source)
            if location is not None:
                restore_files(location, project_dir, name=source, log=self.log)

    def store_artifacts(
        self, job: JobSpec, project_dir: Path, tracked: frozenset[str], environment: Mapping[str, str], masker: Masker
    ) -> None:
        """The job's files under the run's folder (its instance's own)."""
        location = self.kept.root / numeric_id(self.name)
        store_files(location, job, project_dir, tracked, environment, log=self.log)
        self.kept.artifacts[self.name] = location

    def masking(self, masker: Masker) -> None:
        """Nothing more: every line already passes the job's masker."""

    def started(self, runner: JobRunner) -> None:
        """Held to be killed by the job's timeout."""
        self.runner = runner


@dataclass
class DirectRun:
    """One run of ``pipeline`` (already loaded, jobs selected) with the run's ``conf`` (``variables``,
    ``manual``, ``ref``): ``run()`` returns the pipeline's outcome.

    ``project_dir``: the folder each job's workspace copies; ``settings``: the settings file;
    ``root``: a private temporary folder for the artifacts; ``log``: warnings and errors."""

    pipeline: Pipeline
    project: str | None
    project_dir: str
    settings: str | None
    conf: Mapping[str, Any]
    events: JobEvents
    log: logging.Logger
    root: Path
    options: AirflowOptions = field(default_factory=AirflowOptions)
    sleep: Callable[[float], None] = time.sleep
    dotenv_max_bytes: int = DEFAULT_MAX_BYTES
    dotenv_max_variables: int = DEFAULT_MAX_VARIABLES
    #: the dotenv each trigger job received (its child pipeline's variables may forward it)
    _received: dict[str, list[Variable]] = field(default_factory=dict, init=False)

    def run(self) -> PipelineOutcome:
        """Run every job in ``job_order``; the pipeline's status (``pipeline_outcome``).
        Raises ``CIVarsError`` when the run cannot start (settings, access)."""
        store = configured_store(self.settings, self.options)
        name, settings = project_settings(store, self.project, RUN_DAG_ID)
        access = settings.access(name)
        source = self.conf.get("pipeline_source")
        trigger = run_trigger(
            run_type="manual",
            triggering_user=None,
            conf=self.conf,
            schedule_owner=access.schedule_owner,
            roles_of=lambda user: None,
            local=True,
            local_source=source if isinstance(source, str) and source else None,
        )
        role = trigger.actor.role_in(access)
        run = pipeline_run(self.conf, access, project=name, source=trigger.source)
        form = self.pipeline.form
        check_run(access, trigger.actor, role, run.ref, project=name)
        given = restricted_conf(self.conf, form.prefilled_defaults if form else {})
        check_pipeline_variables(given, access, trigger.actor, role, project=name)
        prefilled = may_set_pipeline_variables(access.pipeline_variables_minimum_role, role)
        pipeline_variables = run_pipeline_variables(self.conf, form, prefilled=prefilled)
        log: Any = self.log  # a logging.Logger where the task logger stands
        boundary = prepare_boundary(self.settings, log, self.options)
        run_id = f"direct__{uuid.uuid4().hex}"
        context = _RunContext(
            store=store,
            stored=settings.layers_for(name),
            project=name,
            access=access,
            actor=trigger.actor,
            role=role,
            run=run,
            pipeline_variables=pipeline_variables,
            boundary=boundary,
            pipeline_id=numeric_id(RUN_DAG_ID, run_id),
            created_at=datetime.now(timezone.utc).isoformat(),
            top_run=run,
            top_variables=pipeline_variables,
        )
        top = _Pipe(self.pipeline, (), (), context, _Kept(self.root), run_id)
        self._pipeline(top)
        jobs = top.pipeline.jobs
        names = [job.name for job in jobs]
        blocking = [job.name for job in jobs if job.spec.trigger is None and may_block(job.spec)]
        kept = top.kept
        return pipeline_outcome(names, [kept.states.get(n) for n in names], blocking, lambda n: n in kept.blocked)

    def _pipeline(self, pipe: _Pipe) -> None:
        """Run ``pipe``'s jobs in ``job_order``; a trigger job's child pipeline right after it."""
        kept = pipe.kept
        earlier = Earlier(
            jobs={name: spec for name, (_, spec) in pipe.jobs.items()},
            stages=pipe.pipeline.stages,
            states=lambda names: [kept.states.get(n) for n in names],
            excluded=lambda n: n in kept.excluded,
            blocked=lambda n: n in kept.blocked,
        )
        for job in job_order(pipe.pipeline):
            shown = shown_name(pipe.path, job.name)
            self.events.started(shown, job.stage)
            begun = time.monotonic()
            child = pipe.pipeline.children.get(job.name)
            state = self._job(job, pipe, earlier, trigger=child is not None)
            self.events.status(shown, state, time.monotonic() - begun)
            if child is not None:
                depend = self._child(job, child, pipe, created=state == "success")
                if depend is not None:  # strategy: depend: the trigger job takes the child pipeline's status
                    state = depend
                    self.events.status(shown, state, time.monotonic() - begun)
            kept.states[job.name] = "failed" if state == "failed" else "skipped" if state == "skipped" else "success"

    def _child(self, job: PipelineJob, child: Pipeline, parent: _Pipe, *, created: bool) -> str | None:
        """The child pipeline of trigger job ``job`` (``ChildPipelineOperator``): run when the trigger
        job created it, else every job of it skipped; with ``strategy: depend`` the trigger job's
        status (``ChildPipelineStatusOperator``), else None."""
        bridge = dataclasses.replace(bridge_of(job), task_id="\0".join((*parent.path, job.name)))
        path = (*parent.path, job.name)
        bridges = (*parent.bridges, bridge)
        if not created:
            self._skip_all(child, path)
            return "skipped" if bridge.strategy_depend else None
        top = parent.context
        ids = [numeric_id(RUN_DAG_ID, parent.run_id, *path[:depth]) for depth in range(len(bridges))]
        received = self._received
        try:
            variables = child_pipeline_variables(
                bridges,
                top.top_run,
                stored=top.stored,
                pipeline=top.top_variables,
                pipeline_ids=ids,
                dotenv=lambda b: received.get(b.task_id or "", []),
            )
        except CIVarsError as err:  # each job of the child pipeline fails with it, as its task would
            for child_job in job_order(child):
                self.log.error("%s: %s", child_job.name, err)
                self.events.status(shown_name(path, child_job.name), "failed", 0.0)
                if child_job.name in child.children:
                    self._skip_all(child.children[child_job.name], (*path, child_job.name))
            return self._depend_status(job, ["failed"]) if bridge.strategy_depend else None
        context = dataclasses.replace(
            top,
            run=dataclasses.replace(top.top_run, pipeline_source=CHILD_PIPELINE_SOURCE),
            pipeline_variables=variables,
            pipeline_id=numeric_id(RUN_DAG_ID, parent.run_id, *path),
        )
        pipe = _Pipe(child, path, bridges, context, _Kept(self.root / numeric_id(*path)), parent.run_id)
        self._pipeline(pipe)
        if not bridge.strategy_depend:
            return None
        waited = [j.name for j in child.jobs if not always_optional_manual(j.spec)]
        return self._depend_status(job, [pipe.kept.states.get(n) for n in waited])

    def _depend_status(self, job: PipelineJob, states: Sequence[str | None]) -> str:
        """``strategy: depend``: the trigger job's status (``pipeline.status.depend_status``)."""
        status = depend_status(states, allows_failure=job.spec.allows_failure(1))
        if status == "warning":
            self.log.warning("Child pipeline of %r failed; allow_failure lets the pipeline continue", job.name)
        elif status == "failed":
            self.log.error("Trigger job %r: its child pipeline failed (strategy: depend)", job.name)
        return status

    def _skip_all(self, pipeline: Pipeline, path: tuple[str, ...]) -> None:
        """A child pipeline that was not created: each of its jobs (and theirs) is skipped."""
        for job in job_order(pipeline):
            self.events.status(shown_name(path, job.name), "skipped", 0.0)
            child = pipeline.children.get(job.name)
            if child is not None:
                self._skip_all(child, (*path, job.name))

    def _job(self, pipeline_job: PipelineJob, pipe: _Pipe, earlier: Earlier, *, trigger: bool = False) -> str:
        """One job, as ``CIJobOperator.execute`` decides and runs it: its status. A trigger job
        (``trigger``) decides like a job and runs nothing."""
        context = pipe.context
        kept = pipe.kept
        try:
            job = self._job_for_run(pipeline_job.spec, kept) if not pipe.bridges else pipeline_job.spec
            if job is None:
                return "skipped"
            decision = decide(
                job,
                context.run,
                stored=context.stored,
                pipeline=context.pipeline_variables,
                workflow_rules=pipe.pipeline.workflow_rules,
                environment=environment_name(job, self.conf),
                earlier=earlier,
                exists=files_exist(self.project_dir),
                may_see=lambda environment: may_deploy(context.access, context.role, environment),
            )
        except CIVarsError as err:
            self.log.error("%s: %s", pipeline_job.name, err)
            return "failed"
        job = decision.job
        if decision.excluded_by_rules:
            kept.excluded.add(job.name)
        if decision.action == "fail":
            self.log.error("%s", decision.reason)
            return "failed"
        if decision.action == "skip":
            return "skipped"
        try:
            if job.when == "manual" and not self._played(job, context, decision.environment, kept):
                return "skipped"
            if job.when != "manual":
                check_deploy(context.access, context.actor, context.role, decision.environment, project=context.project)
            sources = source_jobs(job, pipe.jobs, pipe.pipeline.stages)
            dotenv = dotenv_variables(sources, lambda name, _: kept.dotenv.get(name))
        except CIVarsError as err:
            self.log.error("%s", err)
            return "failed"
        if decision.start_in:
            self.log.warning("Delayed job %r starts in %d seconds", job.name, decision.start_in)
            self.sleep(decision.start_in)
        if trigger:  # what its child pipeline's variables may forward
            self._received["\0".join((*pipe.path, job.name))] = dotenv
            return "success"
        attempts = 1 + job.retry
        for attempt in range(1, attempts + 1):
            try:
                return self._execute(job, pipe, [name for name, _, _ in sources], dotenv).status
            except CIVarsError as err:
                self.log.error("%s", err)
            if attempt < attempts:
                self.log.warning("Job %r retried (attempt %d of %d)", job.name, attempt + 1, attempts)
        return "failed"

    def _job_for_run(self, job: JobSpec, kept: _Kept) -> JobSpec | None:
        """The job as the run's ``spec:inputs`` make it (``CIJobOperator._job_for_run``)."""
        form = self.pipeline.form
        if form is None or not form.inputs:
            return job
        from airflow_ci_vars.include_settings import include_sources

        found = job_with_inputs(
            form, form.run_inputs(self.conf), job, sources=include_sources(settings_file=self.settings)
        )
        if found.job is None:
            kept.excluded.add(job.name)
        return found.job

    def _played(self, job: JobSpec, context: _RunContext, environment: str | None, kept: _Kept) -> bool:
        """A manual job: played when ``--manual`` names it (``conf["manual"]``); a blocking one
        not played holds the pipeline. Who plays it must be allowed to (``check_play``). First, what
        the operator records for a manual job is checked the same way (``manual_request``)."""
        manual_request(job, environment, context.run.ref, context.stored)
        if not played_in_conf((job.name, job_group_name(job.name)), {"manual": [], **self.conf}):
            if is_blocking_manual(job.when, job.allow_failure):
                kept.blocked.add(job.name)
            return False
        check_play(
            context.access, context.actor, context.role, project=context.project, job=job.name,
            ref=context.run.ref, environment=environment, variables=[],
        )  # fmt: skip
        return True

    def _execute(self, job: JobSpec, pipe: _Pipe, sources: list[str], dotenv: list[Variable]) -> JobResult:
        context = pipe.context
        kept = pipe.kept
        execution = JobExecution(
            job=job,
            run=context.run,
            project=context.project,
            stored=context.stored,
            pipeline=context.pipeline_variables,
            environment=environment_name(job, self.conf),
            pipeline_id=context.pipeline_id,
            job_id=numeric_id(uuid.uuid4().hex),
            dotenv_max_bytes=self.dotenv_max_bytes,
            dotenv_max_variables=self.dotenv_max_variables,
            secrets=job_secrets(job, context.store),
            dotenv=dotenv,
            pipeline_created_at=context.created_at,
            timeout=job.timeout or None,
        )
        host = _Host(job.name, shown_name(pipe.path, job.name), sources, kept, self.events, self.log)
        timer = _Timeout(job.timeout, host)
        try:
            result = execute_job(execution, boundary=context.boundary, project_dir=self.project_dir, host=host)
        except CIVarsError:
            if timer.fired:  # killed by the timer: say so rather than the exit code it left
                raise JobFailedError(f"Job {job.name!r} timed out after {job.timeout} seconds") from None
            raise
        finally:
            timer.cancel()
        if timer.fired:
            raise JobFailedError(f"Job {job.name!r} timed out after {job.timeout} seconds")
        if result.status == "success" and job.artifacts.dotenv:
            kept.dotenv[job.name] = result.dotenv
        return result


class _Timeout:
    """Kill ``host``'s runner once ``seconds`` have passed (``timeout:``; Airflow's
    ``execution_timeout``). No timer without a timeout."""

    def __init__(self, seconds: int | None, host: _Host) -> None:
        self.fired = False
        self._timer: threading.Timer | None = None
        if seconds:
            self._timer = threading.Timer(seconds, self._fire, args=(host,))
            self._timer.daemon = True
            self._timer.start()

    def _fire(self, host: _Host) -> None:
        self.fired = True
        if host.runner is not None:
            host.runner.kill()

    def cancel(self) -> None:
        """The job ended first."""
        if self._timer is not None:
            self._timer.cancel()


@dataclass(frozen=True)
class _RunContext:
    """The run as each job sees it (``operators.job_run.JobRun`` of the operator)."""

    store: VariableStore
    stored: LayerArguments
    project: str
    access: Any
    actor: Any
    role: str | None
    run: Any
    pipeline_variables: list[Variable]
    boundary: JobBoundary
    pipeline_id: str
    created_at: str
    top_run: Any  # the top pipeline's run and variables (child_pipeline_variables starts there)
    top_variables: list[Variable]


@dataclass(frozen=True)
class _Pipe:
    """One pipeline of the run: the top one (``path`` ``()``) or a child pipeline, named by the
    trigger jobs above it (``bridges``), with its context and what its jobs left."""

    pipeline: Pipeline
    path: tuple[str, ...]
    bridges: tuple[Bridge, ...]
    context: _RunContext
    kept: _Kept
    run_id: str
    #: its jobs as ``source_jobs`` takes them (name -> (name, job)), built once per pipeline
    jobs: PipelineJobs = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "jobs", {j.name: (j.name, j.spec) for j in self.pipeline.jobs})
