"""GitLab roles, and the GitLab role of an Airflow user in one project.

GitLab's access levels (R: ``lib/gitlab/access.rb``): guest 10, reporter 20, developer 30,
maintainer 40, owner 50. A user's role in a project is their ``members`` entry there, else the
highest GitLab role their Airflow roles map to (``AIRFLOW_ROLES``, or the deployment's own
mapping, ``[ci_vars] role_mapping``). A user with neither has no role, and no rights.

Owns: role names, their order, the Airflow-role mapping. Never imports Airflow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = [
    "ACCESS_LEVELS",
    "AIRFLOW_ROLES",
    "ALLOWED_ROLES",
    "MINIMUM_ROLES",
    "NO_ONE",
    "gitlab_role",
    "has_role",
]

#: GitLab's access levels by role name.
ACCESS_LEVELS: Mapping[str, int] = {"guest": 10, "reporter": 20, "developer": 30, "maintainer": 40, "owner": 50}
#: GitLab's "No one" (R: ``Gitlab::Access::NO_ACCESS``): not even an owner.
NO_ONE = "no_one_allowed"
#: The values of ``pipeline_variables_minimum_role`` (R: ``project_ci_cd_setting.rb``).
MINIMUM_ROLES = (NO_ONE, "developer", "maintainer", "owner")
#: Who may run on a protected ref or deploy to a protected environment (GitLab's "Allowed to ..." lists).
ALLOWED_ROLES = ("developer", "maintainer", "owner", NO_ONE)
#: Airflow roles (FAB and Simple auth managers, case-insensitive) -> GitLab roles.
AIRFLOW_ROLES: Mapping[str, str] = {"admin": "owner", "op": "maintainer", "user": "developer", "viewer": "reporter"}


def gitlab_role(
    user: str | None,
    *,
    members: Mapping[str, str] | None = None,
    airflow_roles: Iterable[str] = (),
    mapping: Mapping[str, str] = AIRFLOW_ROLES,
) -> str | None:
    """The GitLab role of ``user``: their ``members`` entry, else the highest mapped Airflow role.

    ``mapping`` keys are compared case-insensitively (``Admin`` and ``admin`` are one role).
    """
    if user is not None and members and user in members:
        return members[user]
    folded = {name.lower(): role for name, role in mapping.items()}
    mapped = [folded[r.lower()] for r in airflow_roles if r.lower() in folded]
    return max(mapped, key=ACCESS_LEVELS.__getitem__, default=None)


def has_role(role: str | None, minimum: str) -> bool:
    """Whether ``role`` is at least ``minimum``; nobody reaches ``no_one_allowed``, nor a user without a role."""
    if minimum == NO_ONE or role is None:
        return False
    return ACCESS_LEVELS.get(role, 0) >= ACCESS_LEVELS[minimum]
