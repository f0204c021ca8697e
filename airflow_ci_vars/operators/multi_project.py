"""A trigger job that starts another project's pipeline (``trigger: {project, branch, strategy, forward}``).

The trigger job decides like any job (``rules``, ``when``, ``workflow:rules``, manual); if it
runs, it starts the project's DAG with Airflow's ``TriggerDagRunOperator``, passing what GitLab
passes downstream (spec §6.3): its YAML variables (``forward:yaml_variables``, default true) and
the run's pipeline variables (``forward:pipeline_variables``), each expanded once with the trigger
job's variables, as the downstream run's ``conf["variables"]``; ``branch`` as its ``ref`` and
``CI_PIPELINE_SOURCE=pipeline``. With ``strategy: depend`` it waits for the downstream run and
fails when it fails.

The target project must let this one trigger it (its ``ci_job_token_allowlist``), or the job
fails with GitLab's ``insufficient_bridge_permissions`` message and starts nothing. The downstream
run acts for the user this run acts for: the trigger stamp of its conf says so, and names this
project, which the downstream jobs check again (docs/security.md).

The downstream run's conf is stored and shown in clear: a forwarded variable (key or value) or a
``branch`` that holds a stored masked value is refused (the job fails naming the variable's
position, never its key or value), as a dotenv report holding one is (``clear_text``).
"""

from __future__ import annotations

from typing import Any

from airflow_ci_vars.clear_text import stored_masker
from airflow_ci_vars.operators.ci_job import CIJobOperator
from airflow_ci_vars.operators.cross_pipeline import project_access
from airflow_ci_vars.operators.dotenv_handoff import received_dotenv
from airflow_ci_vars.operators.failures import job_failure
from airflow_ci_vars.permissions import STAMP_KEY, check_downstream, trigger_stamp
from airflow_ci_vars.pipeline.children import Bridge, Forward
from airflow_ci_vars.pipeline.downstream import trigger_variables
from airflow_ci_vars.variables import expand_value

__all__ = ["MultiProjectTriggerOperator"]


class MultiProjectTriggerOperator(CIJobOperator):
    """``trigger:project``: start the project's DAG (``trigger_dag_id``; ``target_project``: its
    project path) with the forwarded variables."""

    ui_color = "#e1d5f5"

    def __init__(
        self,
        *,
        trigger_dag_id: str,
        target_project: str | None = None,
        branch: str | None = None,
        depend: bool = False,
        forward: Forward | None = None,
        poke_interval: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.trigger_dag_id = trigger_dag_id
        self.target_project = target_project
        self.branch = branch
        self.depend = depend
        self.forward = forward or Forward()
        self.poke_interval = poke_interval

    def _run_job(self, run: Any, job: Any, pipeline: Any, *args: Any, **kwargs: Any) -> str:
        from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

        target = (self.target_project or self.trigger_dag_id).strip("/")
        with job_failure(f"Trigger job {job.name!r}: "):
            check_downstream(target, project_access(run.store, target), run.project)
        variables, seen = trigger_variables(
            Bridge(job, self.forward, self.depend),
            run.pipeline,
            stored=run.stored,
            pipeline=pipeline,
            pipeline_id=self._pipeline_id(run.dag_run),
            dotenv=lambda bridge: received_dotenv(run.ti, self._sources()),
        )
        conf: dict[str, Any] = {
            "variables": [
                {"key": v.key, "value": v.value, "variable_type": v.variable_type, "raw": v.raw} for v in variables
            ],
            STAMP_KEY: trigger_stamp("pipeline", run.trigger.actor, upstream_project=run.project),
        }
        if self.branch:
            conf["ref"] = expand_value(self.branch, seen)
        # Each field on its own, so that the error can say which (by position: a key may be the secret).
        masker = stored_masker(run.stored)
        fields = [(f"forwarded variable #{n}", v) for n, v in enumerate(conf["variables"], start=1)]
        fields += [(name, value) for name, value in conf.items() if name != "variables"]
        for field, value in fields:
            self._check_clear(value, masker, f"Trigger job {job.name!r}: {field}", "a downstream run's conf")
        self.log.info("Trigger job %r starts %s (%d variables)", job.name, self.trigger_dag_id, len(variables))
        TriggerDagRunOperator(
            task_id=self.task_id,
            trigger_dag_id=self.trigger_dag_id,
            conf=conf,
            wait_for_completion=self.depend,
            failed_states=["failed"],
            poke_interval=self.poke_interval,
        ).execute(run.context)  # raises Airflow's signal to trigger (and wait for) the run
        return "success"
