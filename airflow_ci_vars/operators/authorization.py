"""The operator's side of the permission model: whose rights a run carries, as a task can know it.

A task sees its run's ``run_type``, ``triggering_user_name`` and ``conf``; this module turns them
(with what Airflow's configuration says about users, ``airflow_ci_vars.auth``) into the run's
``RunTrigger`` and the actor who played a manual job. The decisions themselves are
``permissions.decisions``; the operator calls them before it reads any secret or runs any script.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_ci_vars.auth import is_local_run, simple_auth_roles
from airflow_ci_vars.permissions import Actor, ProjectAccess, RunTrigger, run_trigger
from airflow_ci_vars.permissions.actor import read_answer_stamp

__all__ = ["responder", "trigger_of_run"]


def trigger_of_run(dag_run: Any, conf: Mapping[str, Any], access: ProjectAccess) -> RunTrigger:
    """How ``dag_run`` started and whose rights it carries (``permissions.actor.run_trigger``).

    An Asset-triggered run carries the schedule's rights only when every event that started it was
    published by a task: an event created through the REST API carries no user, so no rights.
    """
    user = getattr(dag_run, "triggering_user_name", None)
    run_type = str(getattr(dag_run.run_type, "value", dag_run.run_type))
    local = is_local_run(user)
    if run_type == "asset_triggered" and not local:
        events = getattr(dag_run, "consumed_asset_events", None) or ()
        if any(getattr(e, "source_task_id", None) is None for e in events):
            return RunTrigger("pipeline", Actor("user", None))
    source = conf.get("pipeline_source")
    return run_trigger(
        run_type=run_type,
        triggering_user=user,
        conf=conf,
        schedule_owner=access.schedule_owner,
        roles_of=simple_auth_roles,
        local=local,
        local_source=source if isinstance(source, str) and source else None,
    )


def responder(approval: Mapping[str, Any], trigger: RunTrigger) -> Actor:
    """Who answered a manual job's Human-in-the-loop request (the actor whose rights its play carries).

    Airflow records the responder (``responded_by_user``); the api-server plugin stamps their
    Airflow roles into the answer (``permissions.actor.answer_stamp``), which counts only for that
    user and only where a worker cannot read roles itself. A local run's answers are the local user's.
    """
    if trigger.actor.kind == "local":
        return trigger.actor
    who = approval.get("responded_by_user")
    name = who.get("name") if isinstance(who, Mapping) else None
    user = str(name) if name else None
    own = simple_auth_roles(user)
    roles = tuple(own) if own is not None else read_answer_stamp(approval.get("params_input"), user) or ()
    return Actor("user", user, roles)
