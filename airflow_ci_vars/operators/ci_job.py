"""``CIJobOperator``: run one GitLab CI job on an Airflow worker, as a GitLab runner would.

The Airflow glue only, as the standard provider's ``BashOperator`` over ``SubprocessHook``: GitLab's
rules are the core's and the Airflow-side concerns are small modules beside this one, each given
what it needs. At run time, inside ``execute()``: the run as the task sees it and its checks
(``job_run``, ``authorization``, ``permissions``) -> the run's pipeline variables (``run_form``;
a child pipeline's from its trigger jobs, ``pipeline.downstream``) -> GitLab's decision
(``pipeline.decision.decide``, on the task states of ``pipeline_tasks``), mapped to Airflow
(skip, fail, a delayed job defers, a manual one waits to be played: ``manual_approval``) -> the
received dotenv (``dotenv_handoff``, ``cross_pipeline``) and artifact files (``artifact_store``)
-> ``resolve()`` -> the masker, also given to Airflow's (``mask_registration``) -> the scripts
through the runner in a fresh workspace inside the job boundary (``sandboxing``) -> artifacts
stored -> dotenv reports parsed and handed on (XCom, an Asset event) -> the environment's URL
(``pipeline.environment``).

No secret is ever placed in a template field or in XCom: the operator has no template fields,
and what it writes in clear (XCom, an Asset event) passes ``clear_text.check_clear`` first.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator, BaseOperatorLink
from airflow.sdk.exceptions import AirflowException, AirflowSkipException, DagRunTriggerException

from airflow_ci_vars.clear_text import check_clear
from airflow_ci_vars.dotenv import DEFAULT_MAX_BYTES, DEFAULT_MAX_VARIABLES
from airflow_ci_vars.include_settings import include_sources
from airflow_ci_vars.jobs import DEFAULT_STAGES, JobSpec
from airflow_ci_vars.masking import Masker
from airflow_ci_vars.operators.artifact_store import ARTIFACTS_XCOM_KEY, restore_artifacts, upload_artifacts
from airflow_ci_vars.operators.container_jobs import shown_services
from airflow_ci_vars.operators.cross_pipeline import (
    DOTENV_ASSET_GROUP,
    ParentPipeline,
    check_project_job_token,
    cross_pipeline_dotenv,
    event_sources,
    publish_dotenv,
)
from airflow_ci_vars.operators.dotenv_handoff import DOTENV_XCOM_KEY, received_dotenv
from airflow_ci_vars.operators.failures import job_failure
from airflow_ci_vars.operators.job_execution import JobExecution, execute_job, job_secrets
from airflow_ci_vars.operators.job_run import JobRun, start_run
from airflow_ci_vars.operators.manual_approval import PARKED, ManualApprovalMixin, check_player, record_request
from airflow_ci_vars.operators.mask_registration import (
    AIRFLOW_MASK_MAX_LENGTH,
    airflow_mask_phrases,
    register_with_airflow,
)
from airflow_ci_vars.operators.pipeline_tasks import (
    EXCLUDED_XCOM_KEY,
    PipelineJobs,
    earlier_jobs,
    numeric_id,
    pipeline_jobs,
    source_jobs,
    task_states,
)
from airflow_ci_vars.operators.run_output import report, shown_name
from airflow_ci_vars.operators.sandboxing import prepare_boundary
from airflow_ci_vars.parameters import restricted_conf
from airflow_ci_vars.permissions import (
    check_deploy,
    check_downstream,
    check_pipeline_variables,
    check_run,
    may_deploy,
    may_set_pipeline_variables,
)
from airflow_ci_vars.pipeline.children import Bridge
from airflow_ci_vars.pipeline.cross import dotenv_event_extra
from airflow_ci_vars.pipeline.decision import JobDecision, decide, files_exist
from airflow_ci_vars.pipeline.downstream import child_pipeline_variables, keyword_variables
from airflow_ci_vars.pipeline.run_form import RunForm, run_pipeline_variables
from airflow_ci_vars.pipeline.run_inputs import job_with_inputs
from airflow_ci_vars.runner import JobRunner
from airflow_ci_vars.variables import Variable

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.types import TaskInstanceKey

__all__ = [
    "AIRFLOW_MASK_MAX_LENGTH",
    "ARTIFACTS_XCOM_KEY",
    "DOTENV_ASSET_GROUP",
    "DOTENV_XCOM_KEY",
    "EXCLUDED_XCOM_KEY",
    "CIJobOperator",
    "EnvironmentLink",
    "airflow_mask_phrases",
    "register_with_airflow",
    "task_states",
]

_WAITING: tuple[type[BaseException], ...] = (*PARKED, DagRunTriggerException)


class EnvironmentLink(BaseOperatorLink):
    """The job's expanded ``environment:url`` (possibly from its dotenv report) as a UI button."""

    name = "Environment"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """Read the URL the task pushed when it ran."""
        from airflow.sdk.execution_time.xcom import XCom

        value = XCom.get_value(ti_key=ti_key, key=self.xcom_key)
        return str(value) if value else ""


class CIJobOperator(ManualApprovalMixin, BaseOperator):
    """Run a GitLab CI job (``before_script`` + ``script``, then ``after_script``) with GitLab's variables.

    :param job: the job to run (``JobSpec``; ``JobSpec.from_yaml`` builds one from YAML).
    :param project: the GitLab project path (``acme/data/etl``) naming the group chain; defaults
        to the settings file's ``project``, then the DAG id.
    :param project_dir: the folder holding the ``.gitlab-ci.yml``; each attempt runs in a fresh
        copy of it (``CI_PROJECT_DIR``). ``None`` gives an empty directory.
    :param settings_file: the variable store (YAML); defaults to ``[ci_vars] settings_file``.
    :param stages: the pipeline's stages, for "every job of an earlier stage" dotenv handoff.
    :param dotenv_max_bytes: / ``dotenv_max_variables``: GitLab's dotenv limits.
    :param artifacts_root: where ``artifacts:paths`` files are kept (any ``ObjectStoragePath``
        URL, e.g. ``s3://conn_id@bucket/ci``); defaults to ``[ci_vars] artifacts_root``, then
        ``$AIRFLOW_HOME/ci-artifacts`` (a local folder: only for single-machine deployments).
    :param manual_timeout: how long a ``when: manual`` job waits for someone to play it through
        Airflow's Human-in-the-loop request before it counts as not played; defaults to
        ``[ci_vars] manual_approval_timeout`` (7 days); ``timedelta(0)`` waits forever, as GitLab does.
    :param run_form: the main file's ``spec:inputs`` and prefilled variables (``Pipeline.form``,
        set by the factory): prefilled variables in the run's conf become pipeline variables, and
        a run with other inputs takes this job from the file loaded with them.
    """

    #: whether this task is one of its pipeline's jobs (``when`` looks at the states of those)
    counts_as_job: bool = True
    # Shown as the task's rendered fields: the job's image and services as the pipeline names them
    # (set again with what ran, for container jobs). Never Jinja-rendered: see render_template_fields.
    template_fields: Sequence[str] = ("image", "services")
    overwrite_rtif_after_execution = True
    ui_color = "#fca326"
    operator_extra_links: ClassVar[tuple[BaseOperatorLink, ...]] = (EnvironmentLink(),)  # type: ignore[misc]

    def __init__(
        self,
        *,
        job: JobSpec,
        project: str | None = None,
        project_dir: str | os.PathLike[str] | None = None,
        settings_file: str | os.PathLike[str] | None = None,
        stages: Sequence[str] = DEFAULT_STAGES,
        dotenv_max_bytes: int = DEFAULT_MAX_BYTES,
        dotenv_max_variables: int = DEFAULT_MAX_VARIABLES,
        artifacts_root: str | None = None,
        workflow_rules: Sequence[Mapping[str, Any]] | None = None,
        bridges: Sequence[Bridge] = (),
        bridge_task_id: str | None = None,
        manual_timeout: timedelta | None = None,
        run_form: RunForm | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("task_display_name", job.name)
        # GitLab decides from the previous jobs' states (`when`), so Airflow must always start us.
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.job = job
        self.project = project
        self.project_dir = None if project_dir is None else str(project_dir)
        self.settings_file = None if settings_file is None else str(settings_file)
        self.stages = tuple(stages)
        self.dotenv_max_bytes = dotenv_max_bytes
        self.dotenv_max_variables = dotenv_max_variables
        self.artifacts_root = artifacts_root
        self.workflow_rules = None if workflow_rules is None else [dict(r) for r in workflow_rules]
        # A child pipeline's job (trigger:include): the trigger jobs from the top pipeline down,
        # and the task that created this child pipeline (the job runs only if that task succeeded).
        self.bridges = tuple(bridges)
        self.bridge_task_id = bridge_task_id
        self.manual_timeout = manual_timeout
        # The main file's inputs and prefilled variables (the DAG's params), see `_job_for_run`.
        self.run_form = run_form
        self._runner: JobRunner | None = None
        self.image = job.image.name if job.image is not None else ""
        self.services = shown_services(job.services)

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Nothing is Jinja-rendered: the fields hold what a pipeline author wrote, and rendering
        it would run their template against Airflow's context (connections, variables)."""
        return None

    @classmethod
    def get_serialized_fields(cls) -> frozenset[str]:
        """Airflow's serialized fields, plus the project and its settings file: the api-server
        plugin reads them from the serialized DAG to check who may start or change its runs."""
        return frozenset(super().get_serialized_fields() | {"project", "settings_file"})  # type: ignore[no-untyped-call]

    # -- run time -----------------------------------------------------------------------------

    def execute(self, context: Context) -> None:
        """Resolve, run, mask, hand on. Raises ``AirflowException`` when the job fails."""
        self._execute_reporting(context, None)

    def execute_manual(self, context: Context, event: dict[str, Any]) -> None:
        """Resume a manual job once its Human-in-the-loop request is answered or timed out: run it
        when "Run" was chosen (with the variables typed in), else it counts as not played."""
        self._execute_reporting(context, event)

    def execute_delayed(self, context: Context, event: Any = None) -> None:
        """Resume a ``when: delayed`` job once its ``start_in`` has passed (``_wait_if_delayed``):
        decide again on the same states, then run it."""
        self._execute_reporting(context, None, delayed=True)

    def on_kill(self) -> None:
        """Terminate the job's whole process group (files are removed by the workspace)."""
        if self._runner is not None:
            self._runner.kill()

    def _execute_reporting(
        self, context: Context, approval: Mapping[str, Any] | None, *, delayed: bool = False
    ) -> None:
        built = self.job
        try:
            self.job = self._job_for_run(context)
            status = self._execute(context, approval, delayed=delayed)
        except AirflowSkipException:
            self._report_status("skipped")
            raise
        except _WAITING:  # waiting for a person (manual), a delay or a downstream run: no status yet
            raise
        except BaseException:
            self._report_status("failed")
            raise
        finally:
            self.job = built  # a run's inputs never outlive the run (dag.test reuses the task)
        self._report_status(status)

    def _execute(self, context: Context, approval: Mapping[str, Any] | None = None, *, delayed: bool = False) -> str:
        run = start_run(
            context,
            settings_file=self.settings_file,
            project=self.project,
            dag_id=self.dag_id,
            child=bool(self.bridges),
        )
        self._authorize_run(run)
        prefilled = may_set_pipeline_variables(run.access.pipeline_variables_minimum_role, run.role)
        with job_failure("Invalid pipeline variables in the run's conf: "):
            pipeline = run_pipeline_variables(run.conf, self.run_form, prefilled=prefilled)
        if self.bridges:
            pipeline = self._downstream_variables(run, pipeline)
        decision = self._decide(run, pipeline, approval=approval)
        if not delayed:
            self._wait_if_delayed(decision)
        job = self.job = decision.job  # its sources are the decided needs' (restored by _execute_reporting)
        manual = self._manual_variables(approval) if job.when == "manual" else []
        return self._run_job(run, job, pipeline, manual=manual)

    def _authorize_run(self, run: JobRun) -> None:
        """GitLab's checks before a pipeline exists, made before any secret is read or script run:
        who may run on the ref, who may set what the conf sets, which upstream project may
        trigger this one. A refusal fails the job with GitLab's message."""
        trigger = run.trigger
        with job_failure():
            check_run(run.access, trigger.actor, run.role, run.ref, project=run.project)
            if not self.bridges:  # a child pipeline's variables come from its trigger job (spec §10)
                given = restricted_conf(run.conf, self.run_form.prefilled_defaults if self.run_form else {})
                check_pipeline_variables(given, run.access, trigger.actor, run.role, project=run.project)
            if trigger.upstream_project is not None:
                check_downstream(run.project, run.access, trigger.upstream_project)
        for project in event_sources(run.dag_run):
            check_project_job_token(run.store, project, run.project, "a dotenv Asset event of it started this run")

    def _job_for_run(self, context: Context) -> JobSpec:
        """This job as the run's ``spec:inputs`` make it (``pipeline.run_inputs``); a job those
        inputs leave out of the pipeline is skipped. Child pipelines' jobs keep the build values."""
        form = self.run_form
        if form is None or not form.inputs or self.bridges:
            return self.job
        with job_failure("Invalid inputs in the run's conf: "):
            values = form.run_inputs(context["dag_run"].conf or {})
        with job_failure("The pipeline does not load with the run's inputs: "):
            found = job_with_inputs(form, values, self.job, sources=include_sources(settings_file=self.settings_file))
        changed = ", ".join(found.changed)
        if found.job is None:
            self.log.info("Job %r is not in the pipeline the run's inputs (%s) give: skipped", self.job.name, changed)
            context["ti"].xcom_push(key=EXCLUDED_XCOM_KEY, value=True)
            raise AirflowSkipException("not in the pipeline with the run's inputs")
        if found.changed:
            self.log.info("Job %r is built with the run's inputs (%s)", found.job.name, changed)
        return found.job

    def _downstream_variables(self, run: JobRun, pipeline: list[Variable]) -> list[Variable]:
        """A child pipeline's pipeline variables: what each trigger job above it forwards
        (``pipeline.downstream``). Skipped when the trigger job did not create this child pipeline."""
        if self.bridge_task_id is not None and task_states(run.ti, run.dag_run, [self.bridge_task_id]) != ["success"]:
            self.log.info("Job %r skipped: its trigger job did not create the child pipeline", self.job.name)
            raise AirflowSkipException("child pipeline not created")

        def dotenv(bridge: Bridge) -> list[Variable]:  # what the trigger job's task received
            task = self.dag.get_task(bridge.task_id) if bridge.task_id is not None else None
            return received_dotenv(run.ti, task._sources()) if isinstance(task, CIJobOperator) else []

        ids = [self._pipeline_id(run.dag_run, depth) for depth in range(len(self.bridges))]
        return child_pipeline_variables(
            self.bridges, run.top, stored=run.stored, pipeline=pipeline, pipeline_ids=ids, dotenv=dotenv
        )

    def _decide(
        self, run: JobRun, pipeline: list[Variable], *, approval: Mapping[str, Any] | None = None
    ) -> JobDecision:
        """GitLab's decision (``pipeline.decision.decide``) on the Airflow data of this run, mapped
        to Airflow: a job that does not run raises ``AirflowSkipException``, an invalid one
        ``AirflowException``. A manual job nobody decided on yet asks for an approval (the task
        waits; see ``_manual``); its player, or the run's user, must be allowed to deploy."""
        ti = run.ti
        with job_failure(f"{self.job.name}: "):
            decision = decide(
                self.job,
                run.pipeline,
                stored=run.stored,
                pipeline=pipeline,
                workflow_rules=self.workflow_rules,
                environment=run.environment_of(self.job),
                earlier=earlier_jobs(ti, run.dag_run, self._pipeline_jobs(), self.stages),
                exists=files_exist(self.project_dir),
                may_see=lambda environment: may_deploy(run.access, run.role, environment),
            )
        job = decision.job
        if decision.excluded_by_rules:
            ti.xcom_push(key=EXCLUDED_XCOM_KEY, value=True)
        if decision.action == "fail":
            raise AirflowException(decision.reason)
        if decision.action == "skip":
            self.log.info("Job %r not run: %s", job.name, decision.reason)
            raise AirflowSkipException(decision.reason)
        environment = decision.environment
        if job.when != "manual":
            with job_failure():
                check_deploy(run.access, run.trigger.actor, run.role, environment, project=run.project)
            return decision
        if approval is None:  # what the api-server plugin checks when someone answers
            record_request(run, job, environment)
        self._manual(ti, job, run.conf, approval)
        typed = [v.key for v in self._manual_variables(approval)] if approval is not None else []
        check_player(run, job, environment, approval, typed)
        return decision

    def _wait_if_delayed(self, decision: JobDecision) -> None:
        """``when: delayed``: give the worker slot back for ``start_in`` (a ``DateTimeTrigger`` in
        the triggerer), then ``execute_delayed`` runs the job. Returns when there is nothing to wait for."""
        if not decision.start_in:
            return
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger
        from airflow.sdk.timezone import utcnow

        moment = utcnow() + timedelta(seconds=decision.start_in)
        self.log.info("Delayed job %r starts in %d seconds (at %s)", decision.job.name, decision.start_in, moment)
        self.defer(trigger=DateTimeTrigger(moment=moment), method_name="execute_delayed")

    def _run_job(self, run: JobRun, job: JobSpec, pipeline: list[Variable], *, manual: Sequence[Variable] = ()) -> str:
        """Run the job GitLab decided to run (``job_execution.execute_job``, in a ``_TaskHost``):
        scripts, artifacts, dotenv handed on in XCom; return its status.

        ``manual``: the variables typed in when the manual job was played."""
        dag_run = run.dag_run
        ti = run.ti
        sources = self._sources()
        dotenv = received_dotenv(ti, sources)
        if job.cross_needs:
            dotenv += self._cross_pipeline_dotenv(run, job, pipeline)
        with job_failure(f"{job.name}: "):
            boundary = prepare_boundary(self.settings_file, self.log)
        with job_failure():
            secrets = job_secrets(job, run.store)
        execution = JobExecution(
            job=job,
            run=run.pipeline,
            project=run.project,
            stored=run.stored,
            pipeline=pipeline,
            environment=run.environment_of(job),
            pipeline_id=self._pipeline_id(dag_run),
            job_id=numeric_id(str(ti.id)),
            dotenv_max_bytes=self.dotenv_max_bytes,
            dotenv_max_variables=self.dotenv_max_variables,
            secrets=secrets,
            dotenv=dotenv,
            manual=manual,
            pipeline_created_at=dag_run.run_after.isoformat() if dag_run.run_after else None,
            timeout=int(self.execution_timeout.total_seconds()) if self.execution_timeout else None,
        )
        with job_failure():
            result = execute_job(
                execution, boundary=boundary, project_dir=self.project_dir, host=_TaskHost(self, ti, sources)
            )
        if result.status != "success":
            return result.status
        # Airflow reads every extra link's XCom after the task; an empty one means "no link".
        ti.xcom_push(key=EnvironmentLink().xcom_key, value=result.url)
        if job.artifacts.dotenv:
            ti.xcom_push(key=DOTENV_XCOM_KEY, value=result.dotenv)
            self._publish_dotenv(run, result.dotenv, result.masker)
        return "success"

    # -- helpers --------------------------------------------------------------------------------

    def _emit(self, line: str) -> None:
        self.log.info("%s", line)
        report({"job": shown_name(self.pipeline_path, self.job.name), "line": line})

    def _report_status(self, status: str) -> None:
        report({"job": shown_name(self.pipeline_path, self.job.name), "status": status})

    def _pipeline_id(self, dag_run: Any, depth: int | None = None) -> str:
        """``CI_PIPELINE_ID`` of this job's pipeline (``depth``: of the pipeline that many levels down
        from the top one, along this job's trigger jobs): each child pipeline has its own."""
        path = self.pipeline_path if depth is None else self.pipeline_path[:depth]
        return numeric_id(dag_run.dag_id, dag_run.run_id, *path)

    def _publish_dotenv(self, run: JobRun, dotenv_report: Mapping[str, str], masker: Masker) -> None:
        """Publish the dotenv report as an event of the job's Asset, for other pipelines' ``needs:project``."""
        pipeline_id = self._pipeline_id(run.dag_run)
        extra = dotenv_event_extra(ref=run.ref, pipeline_id=pipeline_id, job=self.job.name, report=dotenv_report)
        self._check_clear(extra, masker, f"jobs:{self.job.name}: the dotenv Asset event", "an Asset event")
        publish_dotenv(run.context, self.outlets, extra)

    def _cross_pipeline_dotenv(self, run: JobRun, job: JobSpec, pipeline: list[Variable]) -> list[Variable]:
        """dotenv variables of jobs of other pipelines (``cross_pipeline``), their keywords
        expanded with the variables a keyword sees (``pipeline.downstream.keyword_variables``)."""
        pipeline_id = self._pipeline_id(run.dag_run)
        seen = keyword_variables(job, run.pipeline, stored=run.stored, pipeline=pipeline, pipeline_id=pipeline_id)
        parent = None
        if self.bridges:
            path = self.pipeline_path[:-1]
            task_ids = {name: task_id for name, (task_id, _) in self._pipeline_jobs(path).items()}
            parent = ParentPipeline(self._pipeline_id(run.dag_run, len(path)), task_ids)
        return cross_pipeline_dotenv(
            run.ti, job, seen, store=run.store, project=run.project, ref=run.ref, parent=parent
        )

    def _pipeline_jobs(self, path: tuple[str, ...] | None = None) -> PipelineJobs:
        """Every CI job of this job's pipeline (the DAG's, or one child pipeline's; ``path``: of the
        pipeline along those trigger jobs): name -> (task_id, job)."""
        tasks = (t for t in self.dag.task_dict.values() if isinstance(t, CIJobOperator))
        return pipeline_jobs(tasks, self.pipeline_path if path is None else path)

    @property
    def pipeline_path(self) -> tuple[str, ...]:
        """The trigger jobs above this job's pipeline, from the top one (``()``: the top pipeline)."""
        return tuple(b.job.name for b in self.bridges)

    def _sources(self) -> list[tuple[str, str, JobSpec]]:
        """(job name, task_id, job) of the jobs this one receives artifacts from (GitLab spec §6.2)."""
        return source_jobs(self.job, self._pipeline_jobs(), self.stages)

    @staticmethod
    def _check_clear(value: object, masker: Masker, where: str, written_to: str) -> None:
        """Fail the job, naming ``where`` only, if ``value`` (about to be written to XCom, an Asset
        event or a run's conf) holds a masked value of ``masker`` (``clear_text.check_clear``)."""
        with job_failure():
            check_clear(value, masker, where=where, written_to=written_to)


class _TaskHost:
    """``job_execution.JobHost`` on an Airflow worker: the task log, artifacts in the artifact
    store with their location in XCom, Airflow's masker, the runner held for ``on_kill``."""

    def __init__(self, operator: CIJobOperator, ti: Any, sources: Sequence[tuple[str, str, JobSpec]]) -> None:
        self._operator = operator
        self._ti = ti
        self._sources = sources

    @property
    def log(self) -> Any:
        """The task log."""
        return self._operator.log

    def emit(self, line: str) -> None:
        """A masked output line, to the task log (and ``run``'s output file)."""
        self._operator._emit(line)

    def restore_artifacts(self, project_dir: Path) -> None:
        """The source jobs' files, from the locations their XComs name."""
        restore_artifacts(self._ti, self._sources, project_dir, log=self.log)

    def store_artifacts(
        self, job: JobSpec, project_dir: Path, tracked: frozenset[str], environment: Mapping[str, str], masker: Masker
    ) -> None:
        """The job's files to the artifact store; their location to XCom, checked for clear text."""
        operator = self._operator
        pointer = upload_artifacts(
            self._ti, job, project_dir, tracked, environment, root=operator.artifacts_root, log=self.log
        )
        operator._check_clear(pointer, masker, f"jobs:{job.name}:artifacts location", "XCom")
        self._ti.xcom_push(key=ARTIFACTS_XCOM_KEY, value=pointer)

    def masking(self, masker: Masker) -> None:
        """Airflow's masker too; ours checks what is written in clear."""
        register_with_airflow(masker)

    def started(self, runner: JobRunner) -> None:
        """Held for ``on_kill``; a container plan is shown in the rendered fields (names as
        written when they hold a variable)."""
        operator = self._operator
        operator._runner = runner
        plan = getattr(runner, "plan", None)
        if plan is not None:
            operator.image = plan.job.shown
            operator.services = shown_services(plan.services)
