"""One execution of a job as its task sees it: the run's settings, ref and conf, whose rights it
carries, and the run's context as every decision sees it.

Built once per task attempt from the task's Airflow context (``start_run``) and passed, frozen,
to everything the operator calls: the store (Vault when ``CIVaultBackend`` is Airflow's secrets
backend, else the settings file), the project and its access settings, the run's trigger
(``authorization.trigger_of_run``) and the actor's GitLab role, and ``pipeline.decision.pipeline_run``
(``CI_PIPELINE_SOURCE``: how the run started; ``parent_pipeline`` for a child pipeline's jobs, never
what a caller wrote in the conf). Nothing is kept between calls.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from airflow_ci_vars.auth import role_mapping
from airflow_ci_vars.jobs import JobSpec
from airflow_ci_vars.operators.authorization import trigger_of_run
from airflow_ci_vars.operators.failures import job_failure
from airflow_ci_vars.parameters import run_ref
from airflow_ci_vars.permissions import Actor, ProjectAccess, RunTrigger
from airflow_ci_vars.pipeline.decision import PipelineRun, pipeline_run
from airflow_ci_vars.pipeline.downstream import CHILD_PIPELINE_SOURCE
from airflow_ci_vars.pipeline.environment import environment_name
from airflow_ci_vars.settings import LayerArguments, Settings
from airflow_ci_vars.stores.base import VariableStore
from airflow_ci_vars.stores.configured import configured_store, project_settings

__all__ = ["JobRun", "role_of", "start_run"]


@dataclasses.dataclass(frozen=True)
class JobRun:
    """One execution of a job: the task's context, the run's settings, ref and conf, whose rights
    it carries (``trigger``; ``role``: the actor's GitLab role in ``project``) and the run's
    context as every decision sees it (``pipeline``; ``top``: the top pipeline's)."""

    context: Any  # airflow.sdk.Context
    store: VariableStore
    settings: Settings
    project: str
    ref: str
    conf: Mapping[str, Any]
    access: ProjectAccess
    trigger: RunTrigger
    role: str | None
    pipeline: PipelineRun
    top: PipelineRun

    @property
    def ti(self) -> Any:
        """The running task instance."""
        return self.context["ti"]

    @property
    def dag_run(self) -> Any:
        """The DAG run (GitLab's pipeline)."""
        return self.context["dag_run"]

    @property
    def stored(self) -> LayerArguments:
        """The stored variable layers of the run's project (``Settings.layers_for``)."""
        return self.settings.layers_for(self.project)

    def environment_of(self, job: JobSpec) -> str | None:
        """``job``'s ``environment:name``; a job without one takes the run's ``conf["environment"]``."""
        return environment_name(job, self.conf)


def role_of(actor: Actor, access: ProjectAccess) -> str | None:
    """``actor``'s GitLab role in the project (Airflow roles through ``[ci_vars]`` role mapping)."""
    with job_failure():
        return actor.role_in(access, role_mapping())


def start_run(context: Any, *, settings_file: str | None, project: str | None, dag_id: str, child: bool) -> JobRun:
    """The run as the task of ``dag_id`` sees it in ``context`` (``child``: a child pipeline's job).
    A store or settings that do not load fail the task with their located message."""
    store = configured_store(settings_file)
    with job_failure():
        name, settings = project_settings(store, project, dag_id)
    conf: Mapping[str, Any] = context["dag_run"].conf or {}
    access = settings.access(name)
    trigger = trigger_of_run(context["dag_run"], conf, access)
    role = role_of(trigger.actor, access)
    ref = str(run_ref(conf, access.default_branch))
    top = pipeline_run(conf, access, project=name, source=trigger.source)
    mine = dataclasses.replace(top, pipeline_source=CHILD_PIPELINE_SOURCE) if child else top
    return JobRun(context, store, settings, name, ref, conf, access, trigger, role, mine, top)
