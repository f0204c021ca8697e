"""``CIJobOperator``: run one GitLab CI job on an Airflow worker, as a GitLab runner would.

At run time, inside ``execute()``: collect the layers (settings store, the job's YAML, the run's
``conf``, the Airflow context, dotenv XComs of upstream jobs) -> ``resolve()`` -> register every
masked value with Airflow's ``mask_secret`` -> run the scripts in a fresh per-attempt workspace
with the resolved environment on a clean base -> mask the output line by line into the task log
-> parse the dotenv reports with GitLab's rules -> push them as one XCom (key ``dotenv``).

No secret is ever placed in a template field or in XCom: the operator has no template fields,
and a dotenv report holding a masked value is refused before anything is handed on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator, BaseOperatorLink
from airflow.sdk.exceptions import AirflowException, AirflowSkipException

from airflow_ci_vars.artifacts import relative_paths, select_artifacts, should_upload, snapshot
from airflow_ci_vars.dotenv import DEFAULT_MAX_BYTES, DEFAULT_MAX_VARIABLES, read_dotenv_file
from airflow_ci_vars.errors import CIVarsError, DotenvError
from airflow_ci_vars.jobs import DEFAULT_STAGES, JobSpec, dotenv_sources
from airflow_ci_vars.masking import Masker
from airflow_ci_vars.parameters import pipeline_variables
from airflow_ci_vars.pipeline.expressions import evaluate_rules
from airflow_ci_vars.pipeline.status import composite_status, should_run
from airflow_ci_vars.runner import ScriptRunner, Workspace, clean_base_environment, run_job
from airflow_ci_vars.settings import Settings
from airflow_ci_vars.stores.base import VariableStore
from airflow_ci_vars.variables import (
    Layer,
    RunContext,
    Variable,
    VariableLayers,
    VariableSource,
    expand_value,
    resolve,
)
from airflow_ci_vars.variables.expansion import go_os_expand
from airflow_ci_vars.variables.predefined import job_group_name
from airflow_ci_vars.variables.resolve import rules_context
from airflow_ci_vars.vault_secrets import resolve_secrets

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.types import TaskInstanceKey

__all__ = ["ARTIFACTS_XCOM_KEY", "DOTENV_XCOM_KEY", "CIJobOperator", "EnvironmentLink"]

DOTENV_XCOM_KEY = "dotenv"
ARTIFACTS_XCOM_KEY = "artifacts"
RUN_OUTPUT_ENV = "AIRFLOW_CI_VARS_RUN_OUTPUT"
EXCLUDED_XCOM_KEY = "ci_excluded_by_rules"
_MANIFEST = "manifest.json"
_RUN_TYPE_SOURCE = {"scheduled": "schedule", "manual": "api", "asset_triggered": "pipeline", "backfill": "api"}


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


class CIJobOperator(BaseOperator):
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
    """

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
        self._runner: ScriptRunner | None = None

    # -- run time -----------------------------------------------------------------------------

    def execute(self, context: Context) -> None:
        """Resolve, run, mask, hand on. Raises ``AirflowException`` when the job fails."""
        try:
            status = self._execute(context)
        except AirflowSkipException:
            self._report_status("skipped")
            raise
        except BaseException:
            self._report_status("failed")
            raise
        self._report_status(status)

    def _execute(self, context: Context) -> str:
        store = self._store()
        settings = self._load(store, self.project)
        project = self.project or settings.project or self.dag_id
        if settings.project is None and project != self.project:
            settings = self._load(store, project)
        dag_run = context["dag_run"]
        ti = context["ti"]
        conf: Mapping[str, Any] = dag_run.conf or {}
        ref = str(conf.get("ref") or settings.default_branch)
        try:
            pipeline = pipeline_variables(conf)
        except CIVarsError as err:
            raise AirflowException(f"Invalid pipeline variables in the run's conf: {err}") from None
        job = self._decide(ti, dag_run, settings, project, ref, conf, pipeline)
        self._check_dependencies(ti)
        sources = self._sources()
        dotenv = self._received_dotenv(ti, sources)

        with Workspace(self.project_dir) as workspace:
            self._restore_artifacts(ti, sources, workspace.project_dir)
            tracked = snapshot(workspace.project_dir) if job.artifacts.untracked else frozenset()
            run = self._run_context(
                job,
                settings,
                project,
                ref,
                conf,
                dag_run,
                pipeline_id=_numeric_id(dag_run.dag_id, dag_run.run_id),
                pipeline_created_at=dag_run.run_after.isoformat() if dag_run.run_after else None,
                job_id=_numeric_id(str(ti.id)),
                project_dir=str(workspace.project_dir),
                builds_dir=str(workspace.project_dir.parent),
                environment_action=job.environment.action if job.environment else None,
                environment_tier=job.environment.deployment_tier if job.environment else None,
                environment_url=job.environment.url if job.environment else None,
                job_timeout=int(self.execution_timeout.total_seconds()) if self.execution_timeout else None,
            )
            secrets = self._secrets(store)
            layers = VariableLayers(
                **settings.layers_for(project),
                secrets=secrets,
                default=job.default_variables,
                job=job.variables,
                inherit=job.inherit_variables,
                rules=job.rules_variables,
                dotenv=dotenv,
                pipeline=pipeline,
            )
            try:
                env = resolve(
                    layers,
                    run,
                    environment=job.environment.name if job.environment else None,
                    temp_dir=str(workspace.temp_dir),
                )
            except CIVarsError as err:
                raise AirflowException(f"{job.name}: {err}") from None
            masker = Masker(env.masked_values)
            self._register_masks(masker)
            workspace.write_files(env.files)

            self._runner = ScriptRunner(masker, self._emit)
            outcome = run_job(
                before_script=job.before_script,
                script=job.script,
                after_script=job.after_script,
                env={**clean_base_environment(), **env.environment},
                workspace=workspace,
                masker=masker,
                emit=self._emit,
                after_script_timeout=job.after_script_timeout,
                runner=self._runner,
            )
            artifacts = job.artifacts
            if (artifacts.paths or artifacts.untracked) and should_upload(artifacts, outcome.exit_code == 0):
                self._upload_artifacts(ti, workspace.project_dir, tracked, env.environment)
            if outcome.exit_code != 0:
                if job.allows_failure(outcome.exit_code):
                    self.log.warning(
                        "Job %r failed with exit code %d; allow_failure lets the pipeline continue",
                        job.name,
                        outcome.exit_code,
                    )
                    return "warning"
                raise AirflowException(f"Job {job.name!r} failed: exit code {outcome.exit_code}")
            report = self._read_dotenv_reports(workspace.project_dir, masker)
            self._push_environment_url(ti, env.environment, report, masker)
            if job.artifacts.dotenv:
                ti.xcom_push(key=DOTENV_XCOM_KEY, value=report)
        return "success"

    def on_kill(self) -> None:
        """Terminate the job's whole process group (files are removed by the workspace)."""
        if self._runner is not None:
            self._runner.kill()

    # -- helpers --------------------------------------------------------------------------------

    def _emit(self, line: str) -> None:
        self.log.info("%s", line)
        self._report({"job": self.job.name, "line": line})

    def _report_status(self, status: str) -> None:
        self._report({"job": self.job.name, "status": status})

    def _report(self, record: Mapping[str, str]) -> None:
        """``airflow-ci-vars run`` collects masked job output and statuses through this file."""
        path = os.environ.get(RUN_OUTPUT_ENV)
        if path:
            with open(path, "a", encoding="utf-8") as out:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")

    def _decide(
        self,
        ti: Any,
        dag_run: Any,
        settings: Settings,
        project: str,
        ref: str,
        conf: Mapping[str, Any],
        pipeline: list[Variable],
    ) -> JobSpec:
        """GitLab's decision, made at run time: ``rules`` (on the variables GitLab's rules see), then
        ``when`` against the states of the jobs before this one. Raises ``AirflowSkipException``
        for a job that does not run; returns the job with the matching rule's overrides."""
        job = self.job
        when = job.when
        if self.workflow_rules is not None:
            job = self._apply_workflow(job, settings, project, ref, conf, pipeline, dag_run)
        if job.rules is not None:
            run = self._run_context(job, settings, project, ref, conf, dag_run)
            layers = VariableLayers(
                **settings.layers_for(project),
                default=job.default_variables,
                job=job.variables,
                inherit=job.inherit_variables,
                pipeline=pipeline,
            )
            seen = rules_context(layers, run, environment=job.environment.name if job.environment else None)
            outcome = evaluate_rules(job.rules, seen, job_when=job.when, exists=self._exists)
            if outcome is None or outcome.when == "never":
                self.log.info("Job %r is not in this pipeline: no rule matched, or the rule says when: never", job.name)
                ti.xcom_push(key=EXCLUDED_XCOM_KEY, value=True)
                raise AirflowSkipException("excluded by rules")
            when = outcome.when
            rule_vars = tuple(
                Variable(k, "" if v is None else str(v), source=VariableSource(Layer.JOB, "rules"))
                for k, v in outcome.variables.items()
            )
            job = dataclasses.replace(
                job,
                when=when,
                rules_variables=rule_vars,
                allow_failure=outcome.allow_failure if outcome.allow_failure is not None else job.allow_failure,
            )
        dag = job.needs is not None
        states = self._previous_states(ti, dag_run)
        previous = composite_status(states, dag=dag)
        if not should_run(when, previous, dag=dag):
            self.log.info("Job %r skipped: when: %s and the previous jobs are %s", job.name, when, previous)
            raise AirflowSkipException(f"when: {when}, previous jobs {previous}")
        if when == "manual":
            played = conf.get("manual") or []
            if not isinstance(played, list) or not ({job.name, job_group_name(job.name)} & set(map(str, played))):
                self.log.info("Manual job %r was not played (list it in the run's conf 'manual' to play it)", job.name)
                raise AirflowSkipException("manual job not played")
        if when == "delayed" and job.start_in:
            self.log.info("Delayed job %r starts in %d seconds", job.name, job.start_in)
            time.sleep(job.start_in)
        return job

    def _run_context(
        self,
        job: JobSpec,
        settings: Settings,
        project: str,
        ref: str,
        conf: Mapping[str, Any],
        dag_run: Any,
        **extra: Any,
    ) -> RunContext:
        """The run's predefined-variable context; ``extra`` adds what only a running job knows."""
        return RunContext(
            job_name=job.name,
            stage=job.stage,
            project_path=project,
            ref=ref,
            ref_type="tag" if conf.get("ref_type") == "tag" else "branch",
            sha=str(conf.get("sha") or "0" * 40),
            default_branch=settings.default_branch,
            ref_protected=settings.is_protected(ref),
            pipeline_source=str(conf.get("pipeline_source") or _RUN_TYPE_SOURCE.get(str(dag_run.run_type), "api")),
            node_index=job.node_index,
            node_total=job.node_total,
            **extra,
        )

    def _apply_workflow(
        self,
        job: JobSpec,
        settings: Settings,
        project: str,
        ref: str,
        conf: Mapping[str, Any],
        pipeline: list[Variable],
        dag_run: Any,
    ) -> JobSpec:
        """``workflow:rules``: no matching rule (or ``when: never``) means GitLab creates no
        pipeline, so every job is skipped; a matching rule's variables join the top-level ones."""
        run = self._run_context(job, settings, project, ref, conf, dag_run)
        layers = VariableLayers(**settings.layers_for(project), default=job.default_variables, pipeline=pipeline)
        # R: context/global.rb -- workflow rules see no CI_JOB_* variables.
        seen = {k: v for k, v in rules_context(layers, run).items() if not k.startswith(("CI_JOB_", "CI_NODE_"))}
        outcome = evaluate_rules(self.workflow_rules, seen, job_when="always")
        if outcome is None or outcome.when == "never":
            self.log.info("workflow:rules create no pipeline for this run: job %r skipped", job.name)
            raise AirflowSkipException("workflow:rules create no pipeline")
        if not outcome.variables:
            return job
        source = VariableSource(Layer.DEFAULT, "workflow:rules")
        extra = tuple(Variable(k, "" if v is None else str(v), source=source) for k, v in outcome.variables.items())
        kept = tuple(v for v in job.default_variables if v.key not in outcome.variables)
        return dataclasses.replace(job, default_variables=extra + kept)

    def _check_dependencies(self, ti: Any) -> None:
        """A job listed in ``dependencies`` must exist in the pipeline (not left out by ``rules``)."""
        jobs = self._pipeline_jobs()
        for name in self.job.dependencies or ():
            if name in jobs and ti.xcom_pull(task_ids=jobs[name][0], key=EXCLUDED_XCOM_KEY):
                raise AirflowException(
                    f"{self.job.name} job: dependency {name} does not exist in the pipeline "
                    "(left out by rules); a job cannot depend on it"
                )

    def _exists(self, patterns: Sequence[str]) -> bool:
        """``rules:exists``: does any file of the project directory match one of the globs?"""
        if self.project_dir is None:
            return False
        root = Path(self.project_dir)
        for pattern in patterns:
            clean = pattern.strip().lstrip("/")
            if clean and ".." not in Path(clean).parts and next(iter(root.glob(clean)), None) is not None:
                return True
        return False

    def _previous_states(self, ti: Any, dag_run: Any) -> list[str | None]:
        """States of the needed jobs (``needs``) or of every job of an earlier stage.

        A needed job that ``rules`` left out of the pipeline is dropped when the need is
        ``optional``; otherwise the pipeline is invalid, as GitLab says when it refuses to create it.
        """
        jobs = self._pipeline_jobs()
        if self.job.needs is not None:
            task_ids = []
            for need in self.job.needs:
                if need.job not in jobs:
                    continue
                task_id = jobs[need.job][0]
                if ti.xcom_pull(task_ids=task_id, key=EXCLUDED_XCOM_KEY):
                    if need.optional:
                        continue
                    raise AirflowException(
                        f"'{self.job.name}' job needs '{need.job}' job, but '{need.job}' does not exist in the "
                        "pipeline. This might be because of the only, except, or rules keywords. To need a job "
                        "that sometimes does not exist in the pipeline, use needs:optional."
                    )
                task_ids.append(task_id)
        else:
            index = {s: i for i, s in enumerate(self.stages)}
            mine = index.get(self.job.stage, len(self.stages))
            task_ids = [t for t, j in jobs.values() if index.get(j.stage, len(self.stages)) < mine]
        if not task_ids:
            return []
        found = ti.get_task_states(dag_id=dag_run.dag_id, task_ids=task_ids, run_ids=[dag_run.run_id])
        states = found.get(dag_run.run_id, {}) if isinstance(found, Mapping) else {}
        return [None if states.get(t) is None else str(getattr(states[t], "value", states[t])) for t in task_ids]

    def _store(self) -> VariableStore:
        """The configured store: Vault when ``CIVaultBackend`` is Airflow's secrets backend, else the file."""
        from airflow_ci_vars.stores.configured import configured_store

        return configured_store(self.settings_file)

    def _load(self, store: VariableStore, project: str | None) -> Settings:
        try:
            return store.load(project)
        except CIVarsError as err:
            raise AirflowException(str(err)) from None

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

    def _pipeline_jobs(self) -> dict[str, tuple[str, JobSpec]]:
        """Every CI job of this DAG: job name -> (task_id, job)."""
        jobs: dict[str, tuple[str, JobSpec]] = {}
        for task in self.dag.task_dict.values():
            if isinstance(task, CIJobOperator):
                jobs[task.job.name] = (task.task_id, task.job)
        return jobs

    def _sources(self) -> list[tuple[str, str, JobSpec]]:
        """(job name, task_id, job) of the jobs this one receives artifacts from (GitLab spec §6.2)."""
        jobs = self._pipeline_jobs()
        names = dotenv_sources(self.job, [job for _, job in jobs.values()], stages=self.stages)
        return [(name, *jobs[name]) for name in names]

    def _received_dotenv(self, ti: Any, sources: list[tuple[str, str, JobSpec]]) -> list[Variable]:
        """dotenv variables of the source jobs, in source order (a later source wins a key)."""
        received: list[Variable] = []
        for name, task_id, producer in sources:
            if not producer.artifacts.dotenv:
                continue
            report = ti.xcom_pull(task_ids=task_id, key=DOTENV_XCOM_KEY)
            if isinstance(report, Mapping):
                source = VariableSource(Layer.DOTENV, name)
                received += [Variable(str(k), str(v), source=source) for k, v in report.items()]
        return received

    def _artifacts_location(self, ti: Any) -> Any:
        from airflow.sdk import ObjectStoragePath
        from airflow.sdk import conf as airflow_conf

        root = self.artifacts_root or airflow_conf.get("ci_vars", "artifacts_root", fallback="") or ""
        if not root:
            home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
            root = f"file://{home}/ci-artifacts"
        return ObjectStoragePath(root) / ti.dag_id / ti.run_id / ti.task_id

    def _upload_artifacts(
        self, ti: Any, project_dir: Path, tracked: frozenset[str], environment: Mapping[str, str]
    ) -> None:
        """Store the selected files and their manifest under the run-scoped location.

        Paths are expanded with the job's variables first, as gitlab-runner does (``${NAME}``).
        Only the location goes to XCom: file names may hold a masked value (a job may name a file
        after a token), and XCom is stored and served in clear.
        """

        def expand(text: str) -> str:
            return go_os_expand(text, lambda name: environment.get(name, ""))

        artifacts = dataclasses.replace(
            self.job.artifacts,
            paths=tuple(expand(p) for p in self.job.artifacts.paths),
            exclude=tuple(expand(p) for p in self.job.artifacts.exclude),
        )
        selection = select_artifacts(project_dir, artifacts, tracked=tracked)
        for warning in selection.warnings:
            self.log.warning("%s", warning)
        location = self._artifacts_location(ti)
        if location.exists():
            location.rmdir(recursive=True)  # a retry replaces the previous attempt's files
        files = location / "files"
        for rel in selection.files:
            target = files / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with (project_dir / rel).open("rb") as src, target.open("wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
        location.mkdir(parents=True, exist_ok=True)
        with (location / _MANIFEST).open("w") as manifest:
            json.dump({"files": list(selection.files)}, manifest)
        self.log.info("Uploaded %d artifact file(s) to %s", len(selection.files), location)
        ti.xcom_push(key=ARTIFACTS_XCOM_KEY, value={"location": str(location), "count": len(selection.files)})

    def _restore_artifacts(self, ti: Any, sources: list[tuple[str, str, JobSpec]], project_dir: Path) -> None:
        """Copy the source jobs' artifact files into the working directory (a later source wins)."""
        from airflow.sdk import ObjectStoragePath

        for name, task_id, producer in sources:
            if not (producer.artifacts.paths or producer.artifacts.untracked):
                continue
            manifest = ti.xcom_pull(task_ids=task_id, key=ARTIFACTS_XCOM_KEY)
            if not isinstance(manifest, Mapping):
                continue
            location: Any = ObjectStoragePath(str(manifest["location"]))
            with (location / _MANIFEST).open("r") as stored:
                files = relative_paths([str(f) for f in json.load(stored).get("files", [])])
            for rel in files:
                target = project_dir / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                with (location / "files" / rel).open("rb") as src, target.open("wb") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
            self.log.info("Downloaded %d artifact file(s) of job %r", len(files), name)

    def _register_masks(self, masker: Masker) -> None:
        """Give Airflow's own masker every phrase ours masks (logs, rendered fields, exceptions)."""
        from airflow.sdk.log import mask_secret

        for phrase in masker.phrases:
            mask_secret(phrase)

    def _read_dotenv_reports(self, project_dir: Path, masker: Masker) -> dict[str, str]:
        """Parse every ``artifacts:reports:dotenv`` file; fail before anything is handed on."""
        merged: dict[str, str] = {}
        for name in self.job.artifacts.dotenv:
            path = project_dir / name
            if not path.is_file():
                self.log.warning("dotenv report %s not found: nothing handed on from it", name)
                continue
            try:
                values = read_dotenv_file(
                    path, max_bytes=self.dotenv_max_bytes, max_variables=self.dotenv_max_variables
                )
            except DotenvError as err:
                raise AirflowException(str(err.with_file(name))) from None
            for key, value in values.items():
                if masker.mask(value) != value:
                    raise AirflowException(
                        f"{name}: {key}: the value holds a masked variable; dotenv reports are handed on "
                        "through XCom in clear, so this job refuses to hand it on"
                    )
            merged.update(values)
        return merged

    def _push_environment_url(
        self, ti: Any, environment: Mapping[str, str], report: Mapping[str, str], masker: Masker
    ) -> None:
        env = self.job.environment
        if env is None or not env.url:
            # Airflow reads every extra link's XCom after the task; an empty one means "no link".
            ti.xcom_push(key=EnvironmentLink().xcom_key, value="")
            return
        url = expand_value(env.url, {**environment, **report})
        if masker.mask(url) != url:
            self.log.warning("environment:url holds a masked value; no link is shown")
            url = ""
        ti.xcom_push(key=EnvironmentLink().xcom_key, value=url)
