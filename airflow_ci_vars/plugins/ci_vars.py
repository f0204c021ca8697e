"""The provider's Airflow plugin, registered through provider metadata (``get_provider_info()["plugins"]``).

It adds the api-server middleware that enforces GitLab's permission model on the requests that
start or change CI runs (``plugins.gate``). The plugin manager of every Airflow component loads
this module; only the api-server uses the middleware, and nothing heavy is imported here.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_ci_vars.plugins.gate import PermissionGate

__all__ = ["CIVarsPlugin"]


class CIVarsPlugin(AirflowPlugin):
    """airflow-ci-vars: who may run, play and change CI pipelines (docs/security.md)."""

    name = "airflow_ci_vars"
    fastapi_root_middlewares = [  # noqa: RUF012 - AirflowPlugin's own class attribute
        {"middleware": PermissionGate, "args": [], "kwargs": {}, "name": "airflow-ci-vars permissions"}
    ]
