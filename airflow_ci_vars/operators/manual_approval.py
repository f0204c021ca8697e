"""``when: manual``: GitLab's "play" is a Human-in-the-loop request in Airflow.

A manual job that nobody decided on yet writes a Human-in-the-loop request ("Run" / "Skip" and a
field for variables) and waits, as the standard provider's ``HITLOperator`` does; the answer
resumes the task in ``execute_manual``. A run's ``conf["manual"]`` decides up front instead (REST
callers and ``airflow-ci-vars run``). See docs/pipelines.md, "Manual jobs".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

import airflow.sdk.exceptions as _sdk_exceptions
from airflow.sdk import Param
from airflow.sdk.exceptions import AirflowException, AirflowSkipException, TaskDeferred

from airflow_ci_vars.errors import CIVarsError
from airflow_ci_vars.operators.authorization import responder
from airflow_ci_vars.operators.failures import job_failure
from airflow_ci_vars.operators.job_run import JobRun, role_of
from airflow_ci_vars.operators.pipeline_tasks import MANUAL_BLOCKED_XCOM_KEY
from airflow_ci_vars.permissions import check_play
from airflow_ci_vars.pipeline.durations import parse_duration
from airflow_ci_vars.pipeline.manual import is_blocking_manual, manual_job_variables, manual_request, played_in_conf
from airflow_ci_vars.variables.predefined import job_group_name

if TYPE_CHECKING:
    from airflow_ci_vars.jobs import JobSpec
    from airflow_ci_vars.variables import Variable

__all__ = [
    "DEFAULT_MANUAL_TIMEOUT",
    "MANUAL_BLOCKED_XCOM_KEY",
    "MANUAL_REQUEST_XCOM_KEY",
    "MANUAL_RUN",
    "MANUAL_SKIP",
    "PARKED",
    "ManualApprovalMixin",
    "check_player",
    "record_request",
]

#: What a manual job waiting to be played records for the api-server plugin's check of who may play it.
MANUAL_REQUEST_XCOM_KEY = "ci_manual_request"
MANUAL_RUN = "Run"
MANUAL_SKIP = "Skip"
DEFAULT_MANUAL_TIMEOUT = "7d"
# Airflow 3.3+ parks a Human-in-the-loop task in AWAITING_INPUT (no trigger); older 3.x defer.
_AWAITING_INPUT: Any = getattr(_sdk_exceptions, "TaskAwaitingInput", None)
#: what a task raises while it waits for an answer (it has no status yet)
PARKED: tuple[type[BaseException], ...] = (TaskDeferred, *((_AWAITING_INPUT,) if _AWAITING_INPUT else ()))


_VARIABLES_PARAM = Param(
    "",
    type="string",
    title="Variables",
    description="Variables for this job, one KEY=VALUE per line; they override the pipeline's variables.",
    format="multiline",
)


def _responder(answer: Mapping[str, Any]) -> str:
    user = answer.get("responded_by_user")
    return str(user.get("name") or user.get("id")) if isinstance(user, Mapping) else "someone"


def _request_body(job: JobSpec, *, blocking: bool, timeout: timedelta | None) -> str:
    """The Human-in-the-loop request's text (Markdown), shown in Airflow's "Required actions"."""
    lines = [f"GitLab CI manual job **{job.name}** (stage `{job.stage}`) waits to be played."]
    if blocking:
        lines.append("It is **blocking**: later stages wait for it, and do not run if it is skipped.")
    else:
        lines.append("It is optional: the pipeline goes on without it.")
    lines.append(f"**{MANUAL_RUN}** plays it; **{MANUAL_SKIP}** leaves it unplayed.")
    if timeout:
        lines.append(f"Without an answer within {timeout}, it counts as not played.")
    return "\n\n".join(lines)


def record_request(run: JobRun, job: JobSpec, environment: str | None) -> None:
    """Record what the api-server plugin checks when someone answers the manual job's request
    (its environment and ref); refused when it would write a stored masked value in clear."""
    with job_failure():
        request = manual_request(job, environment, run.ref, run.stored)
    run.ti.xcom_push(key=MANUAL_REQUEST_XCOM_KEY, value=request)


def check_player(
    run: JobRun, job: JobSpec, environment: str | None, approval: Mapping[str, Any] | None, typed: Sequence[str]
) -> None:
    """GitLab's ``PlayBuildService``: whoever played the manual job (who answered its request,
    ``approval``; or the run's user for ``conf["manual"]``) needs the rights to play it, to deploy
    to its ``environment`` and to set the variables ``typed`` in; else the job fails."""
    player = run.trigger.actor if approval is None else responder(approval, run.trigger)
    role = run.role if player == run.trigger.actor else role_of(player, run.access)
    with job_failure():
        check_play(
            run.access, player, role, project=run.project, job=job.name, ref=run.ref, environment=environment,
            variables=list(typed),
        )  # fmt: skip


if TYPE_CHECKING:
    from airflow.sdk import BaseOperator as _Operator
else:
    _Operator = object


class ManualApprovalMixin(_Operator):
    """The manual-job decision of ``CIJobOperator`` (which provides ``job`` and ``manual_timeout``)."""

    if TYPE_CHECKING:
        job: JobSpec
        manual_timeout: timedelta | None

    def _manual(self, ti: Any, job: JobSpec, conf: Mapping[str, Any], approval: Mapping[str, Any] | None) -> None:
        """Return when the manual job is played; else raise ``AirflowSkipException`` (not played)
        or Airflow's signal to wait for an answer.

        Who decides: the answer to the Human-in-the-loop request when resuming; else the run's
        ``conf["manual"]`` (REST callers and ``airflow-ci-vars run`` decide up front: a ``manual``
        key, even ``[]``, plays exactly the jobs it lists); else a person, who is asked.
        """
        if approval is not None:
            if "error" not in approval and MANUAL_RUN in (approval.get("chosen_options") or ()):
                self.log.info("Manual job %r played by %s", job.name, _responder(approval))
                return
            if "error" in approval:
                why = str(approval["error"])
            elif approval.get("timedout"):
                why = "nobody answered in time"
            else:
                why = f"{MANUAL_SKIP} chosen by {_responder(approval)}"
            self._not_played(ti, job, why)
        played = played_in_conf((job.name, job_group_name(job.name)), conf)
        if played:
            return
        if played is False:
            self._not_played(ti, job, "not listed in the run's conf 'manual'")
        self._ask_to_play(ti, job)

    def _not_played(self, ti: Any, job: JobSpec, why: str) -> NoReturn:
        blocking = is_blocking_manual(job.when, job.allow_failure)
        if blocking:
            ti.xcom_push(key=MANUAL_BLOCKED_XCOM_KEY, value=True)
        self.log.info(
            "Manual job %r was not played (%s)%s", job.name, why, "; the later stages stay blocked" if blocking else ""
        )
        raise AirflowSkipException(f"manual job not played: {why}")

    def _ask_to_play(self, ti: Any, job: JobSpec) -> NoReturn:
        """Write a Human-in-the-loop request ("Run" / "Skip" and a variables field) and wait for the
        answer, as the standard provider's ``HITLOperator.execute`` does; ``execute_manual`` resumes."""
        from airflow.sdk.execution_time.hitl import upsert_hitl_detail

        timeout = self._manual_timeout()
        # On timeout, Airflow answers with the defaults: "Skip", i.e. not played.
        defaults = [MANUAL_SKIP] if timeout else None
        params = {"variables": _VARIABLES_PARAM.serialize()}
        blocking = is_blocking_manual(job.when, job.allow_failure)
        upsert_hitl_detail(
            ti_id=ti.id,
            options=[MANUAL_RUN, MANUAL_SKIP],
            subject=f"Run manual job {job.name}?",
            body=_request_body(job, blocking=blocking, timeout=timeout),
            defaults=defaults,
            multiple=False,
            params=params,
        )
        self.log.info("Manual job %r waits to be played (Airflow: Required actions)", job.name)
        if _AWAITING_INPUT is not None:
            raise _AWAITING_INPUT(method_name="execute_manual", timeout=timeout)
        from airflow.providers.standard.triggers.hitl import HITLTrigger
        from airflow.sdk.timezone import utcnow

        self.defer(
            trigger=HITLTrigger(
                ti_id=ti.id,
                options=[MANUAL_RUN, MANUAL_SKIP],
                params=params,
                defaults=defaults,
                multiple=False,
                timeout_datetime=utcnow() + timeout if timeout else None,
            ),
            method_name="execute_manual",
        )
        raise AssertionError("defer() returns only by raising")

    def _manual_timeout(self) -> timedelta | None:
        """``manual_timeout``, else ``[ci_vars] manual_approval_timeout``; ``None``: wait forever."""
        timeout = self.manual_timeout
        if timeout is None:
            from airflow.sdk import conf as airflow_conf

            text = airflow_conf.get("ci_vars", "manual_approval_timeout", fallback="") or DEFAULT_MANUAL_TIMEOUT
            seconds = parse_duration(text)
            if seconds is None:
                raise AirflowException(
                    f"[ci_vars] manual_approval_timeout: {text!r} is not a duration (e.g. 7d, 12h; 0: no timeout)"
                )
            timeout = timedelta(seconds=seconds)
        return timeout if timeout > timedelta(0) else None

    def _manual_variables(self, approval: Mapping[str, Any] | None) -> list[Variable]:
        """The variables typed in when the job was played (the request's ``variables`` field)."""
        if approval is None:
            return []
        given = (approval.get("params_input") or {}).get("variables")
        try:
            return manual_job_variables(given)
        except CIVarsError as err:
            raise AirflowException(f"{self.job.name}: {err}") from None
