"""Who may set pipeline variables: GitLab's ``ci_pipeline_variables_minimum_override_role``.

Spec §10 (R: ``app/models/project_ci_cd_setting.rb``, ``chain/build/associations.rb``): when a
project sets a minimum role, a pipeline that carries variables from a user below it is refused
with ``Insufficient permissions to set pipeline variables``; a pipeline without variables is not
affected, and a child pipeline is never checked (its variables come from its trigger job).

On Airflow the user is the run's triggering user. Their GitLab role comes from the project's
``members`` (``{user: role}``) when listed there, else from their Airflow role: ``Admin`` ->
owner, ``Op`` -> maintainer, ``User`` -> developer, ``Viewer`` -> reporter (the roles of Airflow's
FAB and Simple auth managers). A user with no known role has no access. Nothing here imports
Airflow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from airflow_ci_vars.errors import CIVarsError

__all__ = [
    "ACCESS_LEVELS",
    "AIRFLOW_ROLES",
    "MINIMUM_ROLES",
    "PipelineVariablesForbiddenError",
    "check_pipeline_variables",
    "gitlab_role",
    "may_set_pipeline_variables",
]

#: GitLab's access levels by role name.
ACCESS_LEVELS: Mapping[str, int] = {"guest": 10, "reporter": 20, "developer": 30, "maintainer": 40, "owner": 50}
#: The values of ``pipeline_variables_minimum_role``.
MINIMUM_ROLES = ("no_one_allowed", "developer", "maintainer", "owner")
#: Airflow roles (FAB and Simple auth managers, case-insensitive) -> GitLab roles.
AIRFLOW_ROLES: Mapping[str, str] = {"admin": "owner", "op": "maintainer", "user": "developer", "viewer": "reporter"}

FORBIDDEN = "Insufficient permissions to set pipeline variables"


class PipelineVariablesForbiddenError(CIVarsError, PermissionError):
    """A run carries pipeline variables its triggering user may not set."""


def gitlab_role(
    user: str | None,
    *,
    members: Mapping[str, str] | None = None,
    airflow_roles: Iterable[str] = (),
) -> str | None:
    """The GitLab role of ``user``: their ``members`` entry, else the highest mapped Airflow role."""
    if user is not None and members and user in members:
        return members[user]
    mapped = [AIRFLOW_ROLES[r.lower()] for r in airflow_roles if r.lower() in AIRFLOW_ROLES]
    return max(mapped, key=ACCESS_LEVELS.__getitem__, default=None)


def may_set_pipeline_variables(minimum_role: str | None, role: str | None) -> bool:
    """Spec §10: unrestricted without a minimum; ``no_one_allowed`` refuses everyone."""
    if minimum_role is None:
        return True
    if minimum_role == "no_one_allowed" or role is None:
        return False
    return ACCESS_LEVELS.get(role, 0) >= ACCESS_LEVELS[minimum_role]


def check_pipeline_variables(
    has_variables: bool,
    *,
    minimum_role: str | None,
    user: str | None,
    role: str | None,
) -> None:
    """Raise ``PipelineVariablesForbiddenError`` (GitLab's message) for a run ``user`` may not make."""
    if has_variables and not may_set_pipeline_variables(minimum_role, role):
        who = f"user {user!r}" if user else "a run without a triggering user"
        shown = f"role {role}" if role else "no role in this project"
        raise PipelineVariablesForbiddenError(
            f"{FORBIDDEN}: {who} has {shown}; the project's minimum role for pipeline variables is {minimum_role}"
        )
