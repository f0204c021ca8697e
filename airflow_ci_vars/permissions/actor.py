"""Who a run acts for, and how it started: GitLab's pipeline user and ``CI_PIPELINE_SOURCE`` on Airflow.

GitLab runs every pipeline as a user, and records how it was created (``source``). On Airflow:

===================================  ==============================================  ===============
how the run started (Airflow)        whose rights it carries                         source
===================================  ==============================================  ===============
REST ``POST .../dagRuns``            the token's user (``triggering_user_name``)      ``api``
the UI's trigger form                the logged-in user                               ``web``
the DAG's schedule                   the project's ``schedule_owner``, else the        ``schedule``
                                     deployment's maintainer rights (the schedule is
                                     part of the DAG file, which deployers write)
an Asset event (``dotenv_asset``)    the same as a schedule                            ``pipeline``
a ``trigger:project`` job upstream   the user the upstream job ran for                 ``pipeline``
``airflow-ci-vars run`` / dag.test   the local user: trusted (owner)                   ``api``, or conf
===================================  ==============================================  ===============

The api-server plugin of this provider writes a *trigger stamp* (``conf["ci_trigger"]``) into
every run it lets through: the source it saw (a ``Referer`` header: the UI) and the Airflow
roles of the user, as the auth manager reported them. It refuses a stamp, or a
``pipeline_source``, sent by a caller; a ``trigger:project`` job writes one for its downstream
run. A task sees only ``run_type``, ``triggering_user_name`` and ``conf`` of its run, so the stamp
is how the roles of an auth manager that workers cannot read (FAB, Keycloak) reach the job.
A stamp of a REST or form run counts only for the user Airflow recorded as triggering it.

Never imports Airflow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from airflow_ci_vars.permissions.access import ProjectAccess
from airflow_ci_vars.permissions.roles import AIRFLOW_ROLES, gitlab_role

__all__ = [
    "CALLER_SOURCES",
    "SCHEDULE_ROLE",
    "STAMP_KEY",
    "Actor",
    "RunTrigger",
    "answer_stamp",
    "read_answer_stamp",
    "read_stamp",
    "run_trigger",
    "trigger_stamp",
]

ActorKind = Literal["user", "schedule", "local"]
#: The ``conf`` key of the trigger stamp (written by the api-server plugin and trigger jobs only).
STAMP_KEY = "ci_trigger"
#: Sources a REST caller or the UI can start a run with.
CALLER_SOURCES = ("api", "web")
#: The rights of a scheduled run whose project names no ``schedule_owner``.
SCHEDULE_ROLE = "maintainer"
_MAX_ROLES = 64


@dataclass(frozen=True, slots=True)
class Actor:
    """Whose rights a run, or the play of a manual job, carries.

    ``kind``: ``user`` (an Airflow user), ``schedule`` (a scheduled or Asset-triggered run: its
    ``user`` is the project's ``schedule_owner``, if any) or ``local`` (``airflow-ci-vars run``).
    ``airflow_roles``: the user's roles in Airflow's auth manager, as far as they are known.
    """

    kind: ActorKind = "user"
    user: str | None = None
    airflow_roles: tuple[str, ...] = field(default=())

    def role_in(self, access: ProjectAccess, mapping: Mapping[str, str] = AIRFLOW_ROLES) -> str | None:
        """The actor's GitLab role in a project with ``access`` (None: no role, no rights)."""
        if self.kind == "local":
            return "owner"
        if self.kind == "schedule" and self.user is None:
            return SCHEDULE_ROLE
        return gitlab_role(self.user, members=access.members, airflow_roles=self.airflow_roles, mapping=mapping)

    def __str__(self) -> str:
        if self.kind == "local":
            return "the local user (airflow-ci-vars run)"
        if self.kind == "schedule":
            return f"the schedule (owner {self.user!r})" if self.user else "the schedule"
        return f"user {self.user!r}" if self.user else "a run without a triggering user"


@dataclass(frozen=True, slots=True)
class RunTrigger:
    """How a run started: ``CI_PIPELINE_SOURCE``, the actor, and the upstream project of a multi-project run."""

    source: str
    actor: Actor
    upstream_project: str | None = None


def trigger_stamp(source: str, actor: Actor, *, upstream_project: str | None = None) -> dict[str, Any]:
    """The stamp a run carries in ``conf[STAMP_KEY]`` (JSON data)."""
    stamp: dict[str, Any] = {
        "source": source,
        "kind": actor.kind,
        "user": actor.user,
        "roles": list(actor.airflow_roles),
    }
    if upstream_project is not None:
        stamp["project"] = upstream_project
    return stamp


def answer_stamp(actor: Actor) -> dict[str, Any]:
    """The stamp the api-server plugin puts into a manual job's answer (``params_input[STAMP_KEY]``)."""
    return {"user": actor.user, "roles": list(actor.airflow_roles)}


def read_answer_stamp(params_input: Mapping[str, Any] | None, user: str | None) -> tuple[str, ...] | None:
    """The Airflow roles an answer's stamp gives ``user`` (who Airflow recorded as answering);
    None without a well-formed stamp for that very user."""
    raw = (params_input or {}).get(STAMP_KEY)
    if not isinstance(raw, Mapping) or raw.get("user") != user:
        return None
    roles = raw.get("roles")
    if not isinstance(roles, list) or len(roles) > _MAX_ROLES or not all(isinstance(r, str) for r in roles):
        return None
    return tuple(roles)


def read_stamp(conf: Mapping[str, Any] | None) -> RunTrigger | None:
    """The run's stamp, or None when it has none or it is malformed (a malformed stamp counts for nothing)."""
    raw = (conf or {}).get(STAMP_KEY)
    if not isinstance(raw, Mapping):
        return None
    source, kind, user, roles = raw.get("source"), raw.get("kind", "user"), raw.get("user"), raw.get("roles", [])
    project = raw.get("project")
    if not isinstance(source, str) or kind not in ("user", "schedule"):
        return None
    if user is not None and not isinstance(user, str):
        return None
    if not isinstance(roles, list) or len(roles) > _MAX_ROLES or not all(isinstance(r, str) for r in roles):
        return None
    if project is not None and not isinstance(project, str):
        return None
    return RunTrigger(source, Actor(kind, user, tuple(roles)), project)


def run_trigger(
    *,
    run_type: str,
    triggering_user: str | None,
    conf: Mapping[str, Any] | None,
    schedule_owner: str | None,
    roles_of: Callable[[str | None], Sequence[str] | None],
    local: bool = False,
    local_source: str | None = None,
) -> RunTrigger:
    """How a run started and whose rights it carries (see the module docstring).

    ``run_type`` is Airflow's (``manual``, ``scheduled``, ``asset_triggered``, ``backfill``).
    ``roles_of(user)`` gives the Airflow roles a worker can read itself (the Simple auth
    manager's configuration), or None where it cannot (FAB, Keycloak...): only then do the roles
    of the stamp count. A stamp counts only for the user Airflow recorded as triggering the run
    (a ``trigger:project`` run inherits the upstream run's). ``local`` marks ``airflow-ci-vars
    run``, whose ``local_source`` (the run's ``conf["pipeline_source"]``) is trusted.
    """
    if local:
        return RunTrigger(local_source or "api", Actor("local"))
    if run_type in ("scheduled", "asset_triggered"):
        owner = Actor("schedule", schedule_owner, tuple(roles_of(schedule_owner) or ()) if schedule_owner else ())
        return RunTrigger("schedule" if run_type == "scheduled" else "pipeline", owner)
    own = roles_of(triggering_user)
    stamp = read_stamp(conf)
    if stamp is not None and _stamp_fits(stamp, triggering_user):
        actor = stamp.actor
        if actor.kind == "schedule":
            roles = tuple(roles_of(actor.user) or ()) if actor.user else ()
        else:
            roles = actor.airflow_roles if own is None else tuple(own)
        return RunTrigger(stamp.source, Actor(actor.kind, actor.user, roles), stamp.upstream_project)
    return RunTrigger("api", Actor("user", triggering_user, tuple(own or ())))


def _stamp_fits(stamp: RunTrigger, triggering_user: str | None) -> bool:
    """A stamp is the run's own: a caller's names the triggering user; a trigger job's names the
    user the upstream run acted for (Airflow gives the downstream run that user) or its schedule."""
    if stamp.source in CALLER_SOURCES:
        return stamp.actor.kind == "user" and stamp.actor.user == triggering_user
    if stamp.source != "pipeline" or stamp.upstream_project is None:
        return False
    if stamp.actor.kind == "schedule":
        return triggering_user is None
    return stamp.actor.user == triggering_user
