"""A job GitLab decided to run, from its workspace to its results: the one copy of that sequence.

``CIJobOperator`` (on a worker) and ``airflow-ci-vars run``'s direct engine (``direct_run``) both
call :func:`execute_job`: a fresh workspace inside the job boundary (``sandboxing``) -> the source
jobs' artifact files -> the job's predefined context and ``resolve()`` -> the masker -> the
scripts through the runner (``runner``, or ``containers``) -> artifacts stored -> the job's exit
code against ``allow_failure`` -> dotenv reports parsed (refused before anything is handed on)
-> the environment's URL. What differs between the two is the :class:`JobHost`: where artifacts
are kept, where the log goes, who holds the runner to kill it. Imports no Airflow, so ``run``
starts in well under a second; failures are the core's typed errors (the operator turns them
into a failed task with ``failures.job_failure``). Nothing is kept between calls.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from airflow_ci_vars.artifacts import should_upload, snapshot
from airflow_ci_vars.clear_text import holds_secret
from airflow_ci_vars.errors import CIVarsError, JobFailedError
from airflow_ci_vars.jobs import JobSpec
from airflow_ci_vars.masking import Masker
from airflow_ci_vars.operators.container_jobs import job_environment, job_runner, seen_paths, worker_files
from airflow_ci_vars.operators.dotenv_handoff import read_dotenv_reports
from airflow_ci_vars.operators.sandboxing import JobBoundary
from airflow_ci_vars.pipeline.decision import PipelineRun, job_layers
from airflow_ci_vars.pipeline.environment import environment_url, environment_variables
from airflow_ci_vars.runner import JobRunner, Workspace, run_job
from airflow_ci_vars.stores.base import VariableStore
from airflow_ci_vars.variables import Variable, resolve
from airflow_ci_vars.variables.limits import check_environment
from airflow_ci_vars.vault_secrets import resolve_secrets

if TYPE_CHECKING:
    from airflow.sdk.types import Logger

__all__ = ["JobExecution", "JobHost", "JobResult", "execute_job", "job_secrets"]


@dataclass(frozen=True, slots=True)
class JobExecution:
    """What one run of a decided ``job`` is given: the run's context (``run``, ``project``), the
    variable layers (stored, pipeline, ``secrets:``, received dotenv, typed in when played), its
    environment, GitLab's ids and its timeout (``CI_JOB_TIMEOUT``), and the dotenv limits."""

    job: JobSpec
    run: PipelineRun
    project: str
    stored: Mapping[str, Any]
    pipeline: Sequence[Variable]
    environment: str | None
    pipeline_id: str
    job_id: str
    dotenv_max_bytes: int
    dotenv_max_variables: int
    secrets: Sequence[Variable] = ()
    dotenv: Sequence[Variable] = ()
    manual: Sequence[Variable] = ()
    pipeline_created_at: str | None = None
    timeout: int | None = None


@dataclass(frozen=True, slots=True)
class JobResult:
    """A job that ran to the end: ``success``, or ``warning`` (failed, ``allow_failure``); its
    parsed dotenv report, its environment URL (``""``: none, or it held a masked value) and the
    masker of its variables (what is handed on in clear is checked against it)."""

    status: Literal["success", "warning"]
    exit_code: int
    dotenv: dict[str, str]
    url: str
    masker: Masker


class JobHost(Protocol):
    """What runs the job around :func:`execute_job`: the log, the job's output lines, the artifact
    store, and a hold on the masker and the runner (Airflow's masker, the kill handle)."""

    @property
    def log(self) -> Logger:
        """Where the run's own messages go (the task log)."""

    def emit(self, line: str) -> None:
        """One masked line of the job's output."""

    def restore_artifacts(self, project_dir: Path) -> None:
        """Copy the source jobs' artifact files into ``project_dir``."""

    def store_artifacts(
        self, job: JobSpec, project_dir: Path, tracked: frozenset[str], environment: Mapping[str, str], masker: Masker
    ) -> None:
        """Keep the job's ``artifacts:paths`` files for later jobs."""

    def masking(self, masker: Masker) -> None:
        """The job's masker, before anything of the job is written."""

    def started(self, runner: JobRunner) -> None:
        """The runner about to run the scripts (to kill it; to show its plan)."""


def job_secrets(job: JobSpec, store: VariableStore) -> list[Variable]:
    """The job's ``secrets:``, each distinct Vault path read once (masked, raw, file by default).
    Raises ``JobFailedError`` when the store is not Vault, ``VaultError`` when a read fails."""
    if not job.secrets:
        return []
    read = getattr(store, "read_secret", None)
    if read is None:
        raise JobFailedError(
            f"jobs:{job.name}:secrets needs the Vault store: set [secrets] backend to "
            "airflow_ci_vars.secrets.vault.CIVaultBackend"
        )
    return resolve_secrets(job.secrets, read, job=job.name)


@contextmanager
def _located(job: JobSpec) -> Iterator[None]:
    """Errors of resolution, prefixed with the job's name as the task log shows them."""
    try:
        yield
    except CIVarsError as err:
        raise JobFailedError(f"{job.name}: {err}") from None


def execute_job(execution: JobExecution, *, boundary: JobBoundary, project_dir: str | None, host: JobHost) -> JobResult:
    """Run ``execution``'s job in a fresh copy of ``project_dir`` inside ``boundary``.

    Returns its result; raises ``JobFailedError`` when its scripts failed without
    ``allow_failure``, and the core's located errors (never quoting a secret) when it cannot run.
    The workspace is removed on every path, Ctrl-C and kills included.
    """
    job = execution.job
    with Workspace(project_dir, root=boundary.workspace_root, exclude=boundary.hidden) as workspace:
        host.restore_artifacts(workspace.project_dir)
        tracked = snapshot(workspace.project_dir) if job.artifacts.untracked else frozenset()
        seen = seen_paths(boundary, workspace, execution.project)  # /builds/<project> in a container
        context = execution.run.context(
            job,
            pipeline_id=execution.pipeline_id,
            pipeline_created_at=execution.pipeline_created_at,
            job_id=execution.job_id,
            project_dir=seen.project_dir,
            builds_dir=seen.builds_dir,
            job_timeout=execution.timeout,
            job_manual=job.when == "manual",  # CI_JOB_MANUAL: only a played manual job runs
            **environment_variables(job),
        )
        layers = job_layers(
            job,
            execution.stored,
            execution.pipeline,
            secrets=list(execution.secrets),
            dotenv=list(execution.dotenv),
            manual=list(execution.manual),
        )
        with _located(job):
            env = resolve(layers, context, environment=execution.environment, temp_dir=seen.temp_dir)
            job_env = job_environment(boundary, env)
            check_environment(job_env)  # a clear error, not execve's E2BIG
        masker = Masker(env.masked_values)
        host.masking(masker)
        workspace.write_files(worker_files(env, workspace))
        runner = job_runner(boundary, job, env, job_env, seen, masker, host.emit, host.log)
        host.started(runner)
        outcome = run_job(
            before_script=job.before_script,
            script=job.script,
            after_script=job.after_script,
            env=job_env,
            workspace=workspace,
            masker=masker,
            emit=host.emit,
            after_script_timeout=job.after_script_timeout,
            runner=runner,
        )
        artifacts = job.artifacts
        if (artifacts.paths or artifacts.untracked) and should_upload(artifacts, outcome.exit_code == 0):
            host.store_artifacts(job, workspace.project_dir, tracked, env.environment, masker)
        if outcome.exit_code != 0:
            if job.allows_failure(outcome.exit_code):
                host.log.warning(
                    "Job %r failed with exit code %d; allow_failure lets the pipeline continue",
                    job.name,
                    outcome.exit_code,
                )
                return JobResult("warning", outcome.exit_code, {}, "", masker)
            raise JobFailedError(f"Job {job.name!r} failed: exit code {outcome.exit_code}")
        report = read_dotenv_reports(
            job,
            workspace.project_dir,
            masker,
            max_bytes=execution.dotenv_max_bytes,
            max_variables=execution.dotenv_max_variables,
            log=host.log,
        )
        url = environment_url(job, env.environment, report)
        if holds_secret(url, masker):
            host.log.warning("environment:url holds a masked value; no link is shown")
            url = ""
        return JobResult("success", 0, report, url, masker)
