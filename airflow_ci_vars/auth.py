"""What Airflow's configuration says about users: their roles, and the GitLab role of each.

Shell side of ``permissions.roles`` (this module reads Airflow's configuration):

- ``simple_auth_roles(user)``: the Simple auth manager keeps its users in configuration
  (``[core] simple_auth_manager_users = "alice:admin,bob:user"``; all-admins mode makes everyone an
  admin), which every component can read. Under any other auth manager (FAB, Keycloak...) a
  worker cannot know a user's roles (Airflow 3 workers have no database access): None. Those roles
  reach a job through the trigger stamp the api-server plugin writes (``permissions.actor``), or
  the project's ``members``.
- ``role_mapping()``: Airflow role names -> GitLab roles, ``AIRFLOW_ROLES`` updated with
  ``[ci_vars] role_mapping`` (JSON, e.g. ``{"DataEngineer": "maintainer"}``).
- ``is_local_run(user)``: ``airflow-ci-vars run`` marks its own process (``LOCAL_RUN_ENV``); the
  local user, who holds the settings file and the pipeline, is trusted. Never set it on a worker.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from airflow_ci_vars.errors import CIVarsError
from airflow_ci_vars.permissions.roles import ACCESS_LEVELS, AIRFLOW_ROLES

__all__ = ["LOCAL_RUN_ENV", "SIMPLE_AUTH_MANAGER", "is_local_run", "role_mapping", "simple_auth_roles"]

SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
#: Set to ``1`` by ``airflow-ci-vars run`` in its own process: runs there act for the local user.
LOCAL_RUN_ENV = "AIRFLOW_CI_VARS_LOCAL_RUN"
#: The triggering user ``dag.test()`` records (what ``airflow-ci-vars run`` uses).
DAG_TEST_USER = "dag_test"


def simple_auth_roles(user: str | None) -> list[str] | None:
    """``user``'s roles under the Simple auth manager; None under any other auth manager."""
    from airflow.configuration import conf

    if conf.get("core", "auth_manager", fallback=SIMPLE_AUTH_MANAGER) != SIMPLE_AUTH_MANAGER:
        return None
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


def role_mapping() -> Mapping[str, str]:
    """Airflow role -> GitLab role: the defaults, updated with ``[ci_vars] role_mapping``."""
    from airflow.configuration import conf

    text = (conf.get("ci_vars", "role_mapping", fallback="") or "").strip()
    if not text:
        return AIRFLOW_ROLES
    try:
        extra = json.loads(text)
    except ValueError:
        extra = None
    roles = ", ".join(ACCESS_LEVELS)
    if not isinstance(extra, dict) or not all(isinstance(k, str) and v in ACCESS_LEVELS for k, v in extra.items()):
        raise CIVarsError(f"[ci_vars] role_mapping must be a JSON object of Airflow role names to one of: {roles}")
    merged = {k.lower(): v for k, v in AIRFLOW_ROLES.items()}
    merged.update({k.lower(): v for k, v in extra.items()})
    return merged


def is_local_run(triggering_user: str | None) -> bool:
    """Whether this run is ``airflow-ci-vars run`` on the local user's machine."""
    return os.environ.get(LOCAL_RUN_ENV) == "1" and triggering_user == DAG_TEST_USER
