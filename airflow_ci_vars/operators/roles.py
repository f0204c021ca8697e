"""The Airflow roles of a user, as far as a worker can know them.

Airflow 3 workers have no database access, so the roles stored by the FAB auth manager are out of
reach: such users are given a GitLab role through the project's ``members`` setting. The Simple
auth manager keeps its users in configuration (``[core] simple_auth_manager_users =
"alice:admin,bob:user"``), which a worker can read; in all-admins mode everyone is an admin.
"""

from __future__ import annotations

__all__ = ["simple_auth_roles"]

_SIMPLE = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"


def simple_auth_roles(user: str | None) -> list[str]:
    """``user``'s roles under the Simple auth manager (``[]`` under any other auth manager)."""
    from airflow.configuration import conf

    if conf.get("core", "auth_manager", fallback=_SIMPLE) != _SIMPLE:
        return []
    if conf.getboolean("core", "simple_auth_manager_all_admins", fallback=False):
        return ["admin"]
    if user is None:
        return []
    roles = []
    for entry in conf.get("core", "simple_auth_manager_users", fallback="").split(","):
        name, _, role = entry.strip().partition(":")
        if name == user and role:
            roles.append(role.strip())
    return roles
