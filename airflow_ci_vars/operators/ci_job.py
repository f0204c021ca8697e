"""``CIJobOperator``: run one GitLab CI job on an Airflow worker, as a GitLab runner would.

At run time, inside ``execute()``: GitLab's decision (``pipeline.decision.decide``, on the task
states and XComs gathered here; a delayed job defers first) -> collect the layers (settings store,
the job's YAML, the run's ``conf``, the Airflow context, dotenv XComs of upstream jobs) ->
``resolve()`` -> register every
masked value with Airflow's ``mask_secret`` -> run the scripts in a fresh per-attempt workspace
with the resolved environment on a clean base -> mask the output line by line into the task log
-> parse the dotenv reports with GitLab's rules -> push them as one XCom (key ``dotenv``).

No secret is ever placed in a template field or in XCom: the operator has no template fields,
and a dotenv report holding a masked value is refused before anything is handed on.

The operator is the Airflow glue; beside it, as an Airflow provider keeps hooks apart from its
operators: ``artifact_store`` (artifact files to and from ``ObjectStoragePath``),
``dotenv_handoff`` (dotenv reports to later jobs, XCom), ``cross_pipeline`` (``needs:project`` and
``needs:pipeline``: Asset events, the job token check) and ``mask_registration`` (what Airflow's
masker is given). The operator checks everything they hand it before it is written in clear.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator, BaseOperatorLink
from airflow.sdk.exceptions import AirflowException, AirflowSkipException, DagRunTriggerException

from airflow_ci_vars.artifacts import should_upload, snapshot
from airflow_ci_vars.auth import role_mapping
from airflow_ci_vars.clear_text import check_clear, holds_secret, stored_masker
from airflow_ci_vars.dotenv import DEFAULT_MAX_BYTES, DEFAULT_MAX_VARIABLES
from airflow_ci_vars.errors import CIVarsError
from airflow_ci_vars.isolation import NONE_WARNING
from airflow_ci_vars.jobs import DEFAULT_STAGES, JobSpec, dotenv_sources
from airflow_ci_vars.masking import Masker
from airflow_ci_vars.operators.artifact_store import ARTIFACTS_XCOM_KEY, restore_artifacts, upload_artifacts
from airflow_ci_vars.operators.authorization import responder, trigger_of_run
from airflow_ci_vars.operators.cross_pipeline import (
    DOTENV_ASSET_GROUP,
    ParentPipeline,
    check_project_job_token,
    cross_pipeline_dotenv,
    event_sources,
    publish_dotenv,
)
from airflow_ci_vars.operators.dotenv_handoff import DOTENV_XCOM_KEY, read_dotenv_reports, received_dotenv
from airflow_ci_vars.operators.manual_approval import (
    MANUAL_BLOCKED_XCOM_KEY,
    MANUAL_REQUEST_XCOM_KEY,
    PARKED,
    ManualApprovalMixin,
)
from airflow_ci_vars.operators.mask_registration import (
    AIRFLOW_MASK_MAX_LENGTH,
    airflow_mask_phrases,
    register_with_airflow,
)
from airflow_ci_vars.operators.sandboxing import JobBoundary, job_boundary
from airflow_ci_vars.parameters import pipeline_variables, restricted_conf, run_ref
from airflow_ci_vars.permissions import (
    Actor,
    ProjectAccess,
    RunTrigger,
    check_deploy,
    check_downstream,
    check_pipeline_variables,
    check_play,
    check_run,
    may_deploy,
    may_set_pipeline_variables,
)
from airflow_ci_vars.pipeline.children import Bridge, forwarded_variables
from airflow_ci_vars.pipeline.cross import dotenv_event_extra
from airflow_ci_vars.pipeline.decision import (
    Earlier,
    JobDecision,
    PipelineRun,
    decide,
    files_exist,
    job_layers,
    pipeline_run,
)
from airflow_ci_vars.pipeline.run_form import RunForm
from airflow_ci_vars.runner import ScriptRunner, Workspace, clean_base_environment, run_job, sweep_workspaces
from airflow_ci_vars.settings import Settings
from airflow_ci_vars.stores.base import VariableStore
from airflow_ci_vars.stores.configured import configured_store, project_settings
from airflow_ci_vars.variables import (
    RunContext,
    Variable,
    VariableLayers,
    expand_value,
    resolve,
)
from airflow_ci_vars.variables.limits import check_environment
from airflow_ci_vars.variables.resolve import rules_context
from airflow_ci_vars.vault_secrets import resolve_secrets

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.types import TaskInstanceKey

__all__ = [
    "AIRFLOW_MASK_MAX_LENGTH",
    "ARTIFACTS_XCOM_KEY",
    "DOTENV_ASSET_GROUP",
    "DOTENV_XCOM_KEY",
    "CIJobOperator",
    "EnvironmentLink",
    "airflow_mask_phrases",
    "register_with_airflow",
]

RUN_OUTPUT_ENV = "AIRFLOW_CI_VARS_RUN_OUTPUT"
EXCLUDED_XCOM_KEY = "ci_excluded_by_rules"
_WAITING: tuple[type[BaseException], ...] = (*PARKED, DagRunTriggerException)


def task_states(ti: Any, dag_run: Any, task_ids: Sequence[str]) -> list[str | None]:
    """The states (``"success"``, ``"skipped"``...; None: not run yet) of tasks of this DAG run."""
    found = ti.get_task_states(dag_id=dag_run.dag_id, task_ids=list(task_ids), run_ids=[dag_run.run_id])
    states = found.get(dag_run.run_id, {}) if isinstance(found, Mapping) else {}
    return [None if states.get(t) is None else str(getattr(states[t], "value", states[t])) for t in task_ids]


def keyword_variables(layers: VariableLayers, run: RunContext, job: JobSpec) -> dict[str, str]:
    """What a keyword's ``$VAR`` sees once the job exists (trigger variables, ``needs`` entries):
    the variables ``rules`` see, plus the persisted ones such as ``CI_PIPELINE_ID``."""
    seen = rules_context(layers, run, environment=job.environment.name if job.environment else None)
    seen["CI_PIPELINE_ID"] = run.pipeline_id
    return seen


class EnvironmentLink(BaseOperatorLink):
    """The job's expanded ``environment:url`` (possibly from its dotenv report) as a UI button."""

    name = "Environment"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """Read the URL the task pushed when it ran."""
        from airflow.sdk.execution_time.xcom import XCom

        value = XCom.get_value(ti_key=ti_key, key=self.xcom_key)
        return str(value) if value else ""


def _numeric_id(*parts: str) -> str:
    """A stable positive integer for GitLab's numeric ids (``CI_PIPELINE_ID``, ``CI_JOB_ID``)."""
    return str(int(hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12], 16))


@dataclasses.dataclass(frozen=True)
class _Run:
    """One execution of a job: the task's context, the run's settings, ref and conf, and whose
    rights it carries (``trigger``; ``role``: the actor's GitLab role in ``project``)."""

    context: Any  # airflow.sdk.Context
    store: VariableStore
    settings: Settings
    project: str
    ref: str
    conf: Mapping[str, Any]
    access: ProjectAccess
    trigger: RunTrigger
    role: str | None

    @property
    def ti(self) -> Any:
        """The running task instance."""
        return self.context["ti"]

    @property
    def dag_run(self) -> Any:
        """The DAG run (GitLab's pipeline)."""
        return self.context["dag_run"]

    def environment_of(self, job: JobSpec) -> str | None:
        """``job``'s ``environment:name``; a job without one takes the run's ``conf["environment"]``."""
        if job.environment is not None:
            return job.environment.name
        given = self.conf.get("environment")
        return str(given) if given else None


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
    template_fields: Sequence[str] = ()  # nothing user-controlled is rendered: no secret can land there
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
        self._runner: ScriptRunner | None = None
        self._masker: Masker | None = None  # the running job's (``_register_masks``)

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
        store = self._store()
        try:
            project, settings = project_settings(store, self.project, self.dag_id)
        except CIVarsError as err:
            raise AirflowException(str(err)) from None
        conf: Mapping[str, Any] = context["dag_run"].conf or {}
        access = settings.access(project)
        trigger = trigger_of_run(context["dag_run"], conf, access)
        role = self._role(trigger.actor, access)
        ref = str(run_ref(conf, access.default_branch))
        run = _Run(context, store, settings, project, ref, conf, access, trigger, role)
        self._authorize_run(run)
        try:
            pipeline = self._pipeline_variables(
                conf, prefilled=may_set_pipeline_variables(access.pipeline_variables_minimum_role, role)
            )
        except CIVarsError as err:
            raise AirflowException(f"Invalid pipeline variables in the run's conf: {err}") from None
        if self.bridges:
            pipeline = self._downstream_variables(run, pipeline)
        decision = self._decide(run, pipeline, approval=approval)
        if not delayed:
            self._wait_if_delayed(decision)
        job = self.job = decision.job  # its sources are the decided needs' (restored by _execute_reporting)
        manual = self._manual_variables(approval) if job.when == "manual" else []
        return self._run_job(run, job, pipeline, manual=manual)

    def _role(self, actor: Actor, access: ProjectAccess) -> str | None:
        try:
            return actor.role_in(access, role_mapping())
        except CIVarsError as err:
            raise AirflowException(str(err)) from None

    def _authorize_run(self, run: _Run) -> None:
        """GitLab's checks before a pipeline exists, made before any secret is read or script run:
        who may run on the ref, who may set what the conf sets, which upstream project may
        trigger this one. A refusal fails the job with GitLab's message."""
        trigger = run.trigger
        try:
            check_run(run.access, trigger.actor, run.role, run.ref, project=run.project)
            if not self.bridges:  # a child pipeline's variables come from its trigger job (spec §10)
                prefilled = self.run_form.prefilled_defaults if self.run_form else {}
                given = restricted_conf(run.conf, prefilled)
                check_pipeline_variables(given, run.access, trigger.actor, run.role, project=run.project)
            if trigger.upstream_project is not None:
                check_downstream(run.project, run.access, trigger.upstream_project)
        except CIVarsError as err:
            raise AirflowException(str(err)) from None
        for project in event_sources(run.dag_run):
            check_project_job_token(run.store, project, run.project, "a dotenv Asset event of it started this run")

    def _run_job(self, run: _Run, job: JobSpec, pipeline: list[Variable], *, manual: Sequence[Variable] = ()) -> str:
        """Run the job GitLab decided to run: scripts, artifacts, dotenv; return its status.

        ``manual``: the variables typed in when the manual job was played."""
        dag_run = run.dag_run
        ti = run.ti
        sources = self._sources()
        dotenv = received_dotenv(ti, sources)
        if job.cross_needs:
            dotenv += self._cross_pipeline_dotenv(run, job, pipeline)

        boundary = self._boundary(job)
        with Workspace(self.project_dir, root=boundary.workspace_root, exclude=boundary.hidden) as workspace:
            restore_artifacts(ti, sources, workspace.project_dir, log=self.log)
            tracked = snapshot(workspace.project_dir) if job.artifacts.untracked else frozenset()
            context = self._run_context(
                job,
                run,
                pipeline_id=self._pipeline_id(dag_run),
                pipeline_created_at=dag_run.run_after.isoformat() if dag_run.run_after else None,
                job_id=_numeric_id(str(ti.id)),
                project_dir=str(workspace.project_dir),
                builds_dir=str(workspace.project_dir.parent),
                environment_action=job.environment.action if job.environment else None,
                environment_tier=job.environment.deployment_tier if job.environment else None,
                environment_url=job.environment.url if job.environment else None,
                job_timeout=int(self.execution_timeout.total_seconds()) if self.execution_timeout else None,
                job_manual=job.when == "manual",  # CI_JOB_MANUAL: only a played manual job runs
            )
            layers = self._yaml_layers(
                job,
                run,
                pipeline,
                secrets=self._secrets(run.store),
                rules=job.rules_variables,
                dotenv=dotenv,
                manual=manual,
            )
            try:
                env = resolve(
                    layers,
                    context,
                    environment=run.environment_of(job),
                    temp_dir=str(workspace.temp_dir),
                )
                job_env = {**clean_base_environment(), **env.environment}
                check_environment(job_env)  # a clear error, not execve's E2BIG
            except CIVarsError as err:
                raise AirflowException(f"{job.name}: {err}") from None
            masker = Masker(env.masked_values)
            self._register_masks(masker)
            workspace.write_files(env.files)

            self._runner = ScriptRunner(
                masker, self._emit, isolation=boundary.isolation, output_limit=boundary.output_limit
            )
            outcome = run_job(
                before_script=job.before_script,
                script=job.script,
                after_script=job.after_script,
                env=job_env,
                workspace=workspace,
                masker=masker,
                emit=self._emit,
                after_script_timeout=job.after_script_timeout,
                runner=self._runner,
            )
            artifacts = job.artifacts
            if (artifacts.paths or artifacts.untracked) and should_upload(artifacts, outcome.exit_code == 0):
                self._upload_artifacts(ti, job, workspace.project_dir, tracked, env.environment)
            if outcome.exit_code != 0:
                if job.allows_failure(outcome.exit_code):
                    self.log.warning(
                        "Job %r failed with exit code %d; allow_failure lets the pipeline continue",
                        job.name,
                        outcome.exit_code,
                    )
                    return "warning"
                raise AirflowException(f"Job {job.name!r} failed: exit code {outcome.exit_code}")
            report = read_dotenv_reports(
                job,
                workspace.project_dir,
                masker,
                max_bytes=self.dotenv_max_bytes,
                max_variables=self.dotenv_max_variables,
                log=self.log,
            )
            self._push_environment_url(ti, env.environment, report, masker)
            if job.artifacts.dotenv:
                ti.xcom_push(key=DOTENV_XCOM_KEY, value=report)
                self._publish_dotenv(run, report)
        return "success"

    def _boundary(self, job: JobSpec) -> JobBoundary:
        """This worker's job isolation; warns when there is none; clears what killed tasks left."""
        try:
            boundary = job_boundary(self.settings_file)
        except CIVarsError as err:
            raise AirflowException(f"{job.name}: {err}") from None
        if boundary.isolation.mode == "sandbox":
            user = getattr(boundary.isolation, "user", None)
            who = user.name if user is not None else "the worker's user, in a user namespace"
            self.log.info("Job isolation: sandbox (bubblewrap), running as %s", who)
        if boundary.isolation.mode == "none":
            reason = getattr(boundary.isolation, "reason", None)
            if reason:
                self.log.warning("No job sandbox on this worker ([ci_vars] isolation = auto): %s", reason)
            self.log.warning("%s", NONE_WARNING)
        swept = sweep_workspaces(boundary.workspace_root)
        if swept:
            self.log.info("Removed %d workspace(s) left by killed tasks on this worker", swept)
        return boundary

    def on_kill(self) -> None:
        """Terminate the job's whole process group (files are removed by the workspace)."""
        if self._runner is not None:
            self._runner.kill()

    # -- helpers --------------------------------------------------------------------------------

    @property
    def _shown_name(self) -> str:
        """The job's name in ``run`` output: a child pipeline's job as ``trigger job -> job``."""
        return " -> ".join((*self._pipeline_path, self.job.name))

    def _emit(self, line: str) -> None:
        self.log.info("%s", line)
        self._report({"job": self._shown_name, "line": line})

    def _report_status(self, status: str) -> None:
        self._report({"job": self._shown_name, "status": status})

    def _report(self, record: Mapping[str, str]) -> None:
        """``airflow-ci-vars run`` collects masked job output and statuses through this file."""
        path = os.environ.get(RUN_OUTPUT_ENV)
        if path:
            with open(path, "a", encoding="utf-8") as out:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")

    def _decide(self, run: _Run, pipeline: list[Variable], *, approval: Mapping[str, Any] | None = None) -> JobDecision:
        """GitLab's decision (``pipeline.decision.decide``) on the Airflow data of this run, mapped
        to Airflow: a job that does not run raises ``AirflowSkipException``, an invalid one
        ``AirflowException``. A manual job nobody decided on yet asks for an approval (the task
        waits; see ``_manual``); its player, or the run's user, must be allowed to deploy."""
        ti = run.ti
        jobs = self._pipeline_jobs()

        def states(names: Sequence[str]) -> list[str | None]:
            return task_states(ti, run.dag_run, [jobs[n][0] for n in names])

        earlier = Earlier(
            jobs={name: job for name, (_, job) in jobs.items()},
            stages=self.stages,
            states=states,
            excluded=lambda name: bool(ti.xcom_pull(task_ids=jobs[name][0], key=EXCLUDED_XCOM_KEY)),
            blocked=lambda name: bool(ti.xcom_pull(task_ids=jobs[name][0], key=MANUAL_BLOCKED_XCOM_KEY)),
        )
        try:
            decision = decide(
                self.job,
                self._pipeline_run(run),
                stored=run.settings.layers_for(run.project),
                pipeline=pipeline,
                workflow_rules=self.workflow_rules,
                environment=run.environment_of(self.job),
                earlier=earlier,
                exists=files_exist(self.project_dir),
                may_see=lambda environment: may_deploy(run.access, run.role, environment),
            )
        except CIVarsError as err:
            raise AirflowException(f"{self.job.name}: {err}") from None
        job = decision.job
        if decision.excluded_by_rules:
            ti.xcom_push(key=EXCLUDED_XCOM_KEY, value=True)
        if decision.action == "fail":
            raise AirflowException(decision.reason)
        if decision.action == "skip":
            self.log.info("Job %r not run: %s", job.name, decision.reason)
            raise AirflowSkipException(decision.reason)
        environment = decision.environment
        if job.when == "manual":
            if approval is None:  # what the api-server plugin checks when someone answers
                request = {"environment": environment, "ref": run.ref}
                self._check_clear(
                    request,
                    where=f"jobs:{job.name}:environment",
                    written_to="XCom",
                    masker=stored_masker(run.settings.layers_for(run.project)),
                )
                ti.xcom_push(key=MANUAL_REQUEST_XCOM_KEY, value=request)
            self._manual(ti, job, run.conf, approval)
            player = run.trigger.actor if approval is None else responder(approval, run.trigger)
            self._authorize_play(run, job, environment, player, approval)
        else:
            try:
                check_deploy(run.access, run.trigger.actor, run.role, environment, project=run.project)
            except CIVarsError as err:
                raise AirflowException(str(err)) from None
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

    def _authorize_play(
        self, run: _Run, job: JobSpec, environment: str | None, player: Actor, approval: Mapping[str, Any] | None
    ) -> None:
        """GitLab's ``PlayBuildService``: whoever played the manual job (the person who answered
        its request, or the run's user for ``conf["manual"]``) needs the rights to play it, to
        deploy to its environment, and to set the variables typed in."""
        typed = [v.key for v in self._manual_variables(approval)] if approval is not None else []
        role = run.role if player == run.trigger.actor else self._role(player, run.access)
        try:
            check_play(
                run.access,
                player,
                role,
                project=run.project,
                job=job.name,
                ref=run.ref,
                environment=environment,
                variables=typed,
            )
        except CIVarsError as err:
            raise AirflowException(str(err)) from None

    def _pipeline_run(self, run: _Run) -> PipelineRun:
        """The run's context as every decision sees it (``pipeline.decision.pipeline_run``)."""
        return pipeline_run(run.conf, run.access, project=run.project, source=self._pipeline_source(run))

    def _run_context(self, job: JobSpec, run: _Run, **extra: Any) -> RunContext:
        """The run's predefined-variable context; ``extra`` adds what only a running job knows."""
        return self._pipeline_run(run).context(job, **extra)

    def _yaml_layers(self, job: JobSpec, run: _Run, pipeline: list[Variable], **more: Any) -> VariableLayers:
        """The stored layers of the run's project, ``job``'s YAML and rules variables, the pipeline
        variables and ``more`` layers (``VariableLayers`` keywords)."""
        return job_layers(job, run.settings.layers_for(run.project), pipeline, **more)

    def _pipeline_id(self, dag_run: Any, depth: int | None = None) -> str:
        """``CI_PIPELINE_ID`` of this job's pipeline (``depth``: of the pipeline that many levels down
        from the top one, along this job's trigger jobs): each child pipeline has its own."""
        path = self._pipeline_path if depth is None else self._pipeline_path[:depth]
        return _numeric_id(dag_run.dag_id, dag_run.run_id, *path)

    def _publish_dotenv(self, run: _Run, report: Mapping[str, str]) -> None:
        """Publish the dotenv report as an event of the job's Asset, for other pipelines' ``needs:project``."""
        extra = dotenv_event_extra(
            ref=run.ref, pipeline_id=self._pipeline_id(run.dag_run), job=self.job.name, report=report
        )
        self._check_clear(extra, where=f"jobs:{self.job.name}: the dotenv Asset event", written_to="an Asset event")
        publish_dotenv(run.context, self.outlets, extra)

    def _cross_pipeline_dotenv(self, run: _Run, job: JobSpec, pipeline: list[Variable]) -> list[Variable]:
        """dotenv variables of jobs of other pipelines (``cross_pipeline``), their keywords
        expanded with the variables a keyword sees."""
        context = self._run_context(job, run, pipeline_id=self._pipeline_id(run.dag_run))
        seen = keyword_variables(self._yaml_layers(job, run, pipeline), context, job)
        parent = None
        if self.bridges:
            path = self._pipeline_path[:-1]
            task_ids = {name: task_id for name, (task_id, _) in self._pipeline_jobs(path).items()}
            parent = ParentPipeline(self._pipeline_id(run.dag_run, len(path)), task_ids)
        return cross_pipeline_dotenv(
            run.ti, job, seen, store=run.store, project=run.project, ref=run.ref, parent=parent
        )

    def _pipeline_source(self, run: _Run, *, top: bool = False) -> str:
        """``CI_PIPELINE_SOURCE``: how the run started (``top``: of the top pipeline); a child
        pipeline's jobs: ``parent_pipeline``. Never what a caller wrote in the conf."""
        if self.bridges and not top:
            return "parent_pipeline"
        return run.trigger.source

    def _downstream_variables(self, run: _Run, pipeline: list[Variable]) -> list[Variable]:
        """A child pipeline's pipeline variables: what each trigger job above it forwards (spec §6.3).

        Raises ``AirflowSkipException`` when the trigger job did not create this child pipeline.
        """
        dag_run = run.dag_run
        created = self.bridge_task_id is None or task_states(run.ti, dag_run, [self.bridge_task_id]) == ["success"]
        if not created:
            self.log.info("Job %r skipped: its trigger job did not create the child pipeline", self.job.name)
            raise AirflowSkipException("child pipeline not created")
        for depth, bridge in enumerate(self.bridges):
            trigger = bridge.job
            context = self._run_context(trigger, run, pipeline_id=self._pipeline_id(dag_run, depth))
            if depth == 0:  # the trigger job runs in the top pipeline, not in a child one
                top = self._pipeline_source(run, top=True)
                context = dataclasses.replace(context, pipeline_source=top)
            seen = keyword_variables(self._yaml_layers(trigger, run, pipeline), context, trigger)
            pipeline = forwarded_variables(bridge, pipeline, seen, self._bridge_dotenv(run, bridge))
        return pipeline

    def _bridge_dotenv(self, run: _Run, bridge: Bridge) -> list[Variable]:
        """The dotenv variables the trigger job ``bridge`` received (forwarded with ``pipeline_variables``)."""
        if not bridge.forward.pipeline_variables or bridge.task_id is None:
            return []
        task = self.dag.get_task(bridge.task_id)
        return received_dotenv(run.ti, task._sources()) if isinstance(task, CIJobOperator) else []

    def _pipeline_variables(self, conf: Mapping[str, Any], *, prefilled: bool = True) -> list[Variable]:
        """The run's pipeline variables: the prefilled variables the trigger form put in ``conf``,
        then ``conf["variables"]``/``build_parameters``, which win a key given both ways.

        ``prefilled=False`` (a user who may not set pipeline variables): the form's untouched
        prefilled values are left to the YAML, as GitLab's form leaves them out for such a user."""
        given = pipeline_variables(conf)
        if self.run_form is None:
            return given
        keys = {v.key for v in given}
        defaults = self.run_form.prefilled_defaults
        form = [
            v
            for v in self.run_form.prefilled_variables(conf)
            if v.key not in keys and (prefilled or v.value != str(defaults.get(v.key)))
        ]
        return form + given

    def _job_for_run(self, context: Context) -> JobSpec:
        """This job as the run's ``spec:inputs`` make it.

        The DAG was built with the inputs' build values (the params' defaults); a run giving other
        values (trigger form or ``conf["inputs"]``) loads the file again with them and takes this
        job's spec from it -- only then, as it costs a parse. A job those inputs leave out of the
        pipeline is skipped. Child pipelines' jobs keep the build values.
        """
        form = self.run_form
        if form is None or not form.inputs or self.bridges:
            return self.job
        try:
            values = form.run_inputs(context["dag_run"].conf or {})
        except CIVarsError as err:
            raise AirflowException(f"Invalid inputs in the run's conf: {err}") from None
        if not form.inputs_differ(values):
            return self.job
        from airflow_ci_vars.pipeline.loader import load_pipeline

        changed = sorted(k for k in values if form.inputs_differ({**form.values, k: values[k]}))
        try:
            pipeline = load_pipeline(form.file, seed=form.seed, inputs=values)
        except CIVarsError as err:
            raise AirflowException(f"The pipeline does not load with the run's inputs: {err}") from None
        for job in pipeline.jobs:
            if job.name == self.job.name:
                self.log.info("Job %r is built with the run's inputs (%s)", job.name, ", ".join(changed))
                return job.spec
        self.log.info(
            "Job %r is not in the pipeline the run's inputs (%s) give: skipped", self.job.name, ", ".join(changed)
        )
        context["ti"].xcom_push(key=EXCLUDED_XCOM_KEY, value=True)
        raise AirflowSkipException("not in the pipeline with the run's inputs")

    def _store(self) -> VariableStore:
        """The configured store: Vault when ``CIVaultBackend`` is Airflow's secrets backend, else the file."""
        return configured_store(self.settings_file)

    def _secrets(self, store: VariableStore) -> list[Variable]:
        """The job's ``secrets:``, each distinct Vault path read once (masked, raw, file by default)."""
        if not self.job.secrets:
            return []
        read = getattr(store, "read_secret", None)
        if read is None:
            raise AirflowException(
                f"jobs:{self.job.name}:secrets needs the Vault store: set [secrets] backend to "
                "airflow_ci_vars.secrets.vault.CIVaultBackend"
            )
        try:
            return resolve_secrets(self.job.secrets, read, job=self.job.name)
        except CIVarsError as err:
            raise AirflowException(str(err)) from None

    def _pipeline_jobs(self, path: tuple[str, ...] | None = None) -> dict[str, tuple[str, JobSpec]]:
        """Every CI job of this job's pipeline (the DAG's, or one child pipeline's; ``path``: of the
        pipeline along those trigger jobs): name -> (task_id, job)."""
        jobs: dict[str, tuple[str, JobSpec]] = {}
        mine = self._pipeline_path if path is None else path
        for task in self.dag.task_dict.values():
            if isinstance(task, CIJobOperator) and task.counts_as_job and task._pipeline_path == mine:
                jobs[task.job.name] = (task.task_id, task.job)
        return jobs

    @property
    def _pipeline_path(self) -> tuple[str, ...]:
        return tuple(b.job.name for b in self.bridges)

    def _sources(self) -> list[tuple[str, str, JobSpec]]:
        """(job name, task_id, job) of the jobs this one receives artifacts from (GitLab spec §6.2)."""
        jobs = self._pipeline_jobs()
        names = dotenv_sources(self.job, [job for _, job in jobs.values()], stages=self.stages)
        return [(name, *jobs[name]) for name in names]

    def _upload_artifacts(
        self, ti: Any, job: JobSpec, project_dir: Path, tracked: frozenset[str], environment: Mapping[str, str]
    ) -> None:
        """Store the job's artifact files (``artifact_store``); hand on their location in XCom."""
        pointer = upload_artifacts(ti, job, project_dir, tracked, environment, root=self.artifacts_root, log=self.log)
        self._check_clear(pointer, where=f"jobs:{job.name}:artifacts location", written_to="XCom")
        ti.xcom_push(key=ARTIFACTS_XCOM_KEY, value=pointer)

    def _register_masks(self, masker: Masker) -> None:
        """Give Airflow's own masker our phrases (``register_with_airflow``); keep ours for what
        the job writes in clear (``_check_clear``)."""
        self._masker = masker
        register_with_airflow(masker)

    def _check_clear(self, value: object, *, where: str, written_to: str, masker: Masker | None = None) -> None:
        """Fail the job, naming ``where`` only, if ``value`` (about to be written to XCom, an Asset
        event or a run's conf) holds a masked value (``clear_text.check_clear``); ``masker``
        defaults to the job's own."""
        try:
            check_clear(value, masker or self._masker or Masker(()), where=where, written_to=written_to)
        except CIVarsError as err:
            raise AirflowException(str(err)) from None

    def _push_environment_url(
        self, ti: Any, environment: Mapping[str, str], report: Mapping[str, str], masker: Masker
    ) -> None:
        env = self.job.environment
        if env is None or not env.url:
            # Airflow reads every extra link's XCom after the task; an empty one means "no link".
            ti.xcom_push(key=EnvironmentLink().xcom_key, value="")
            return
        url = expand_value(env.url, {**environment, **report})
        if holds_secret(url, masker):
            self.log.warning("environment:url holds a masked value; no link is shown")
            url = ""
        ti.xcom_push(key=EnvironmentLink().xcom_key, value=url)
