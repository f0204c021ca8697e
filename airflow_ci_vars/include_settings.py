"""The include sources of this deployment, from ``[ci_vars] include_*`` and the settings file.

The Airflow side of ``pipeline.external.sources``: reads the options, adds the settings file's
projects with ``git:``, and resolves credentials from Airflow connections when a source needs
them (never earlier: a parse whose includes are all cached reads no connection). The pure rules
(what the options mean, which project may be included) live in ``pipeline.external.sources``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from airflow_ci_vars.errors import SettingsError
from airflow_ci_vars.pipeline.external.sources import GitProject, IncludeSources, parse_include_sources

__all__ = ["OPTIONS", "include_sources"]

#: The ``[ci_vars]`` options of includes (provider_info.py documents each).
OPTIONS = (
    "include_projects",
    "include_templates_dir",
    "include_cache_dir",
    "include_remote_allowed",
    "include_remote_auth",
    "include_remote_ttl",
    "include_git_refresh",
    "include_timeout",
    "include_total_timeout",
    "include_server_fqdn",
)


def include_sources(
    *,
    settings_file: str | os.PathLike[str] | None = None,
    offline: bool = False,
    options: Mapping[str, str] | None = None,
) -> IncludeSources:
    """The deployment's ``IncludeSources``: ``[ci_vars] include_*`` (or ``options``), plus the
    projects with ``git:`` of ``settings_file`` (default: ``[ci_vars] settings_file``).

    ``offline`` forbids every network call (``lint --offline``). Raises ``SettingsError`` naming the
    option or the file and line of a bad setting.
    """
    from airflow.configuration import AIRFLOW_HOME, conf

    if options is None:
        options = {name: str(conf.get("ci_vars", name, fallback="") or "") for name in OPTIONS}
    options = dict(options)
    if not options.get("include_cache_dir", "").strip():
        options["include_cache_dir"] = str(Path(AIRFLOW_HOME) / "cache" / "airflow-ci-vars-includes")
    return parse_include_sources(
        options,
        projects=_settings_projects(settings_file),
        credentials=_connection_credentials,
        remote_headers=_remote_headers(options.get("include_remote_auth", "")),
        offline=offline,
    )


def _settings_projects(settings_file: str | os.PathLike[str] | None) -> dict[str, GitProject]:
    from airflow_ci_vars.stores.configured import settings_file_path

    path = settings_file_path(settings_file)
    if path is None or not os.path.exists(path):
        return {}
    from airflow_ci_vars.settings import load_settings

    return dict(load_settings(path).git_projects)


def _connection_credentials(conn_id: str) -> tuple[str, str] | None:
    """(login, password) of an Airflow connection, or None when it does not exist."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        connection = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
    return connection.login or "", connection.password or ""


def _remote_headers(text: str):  # type: ignore[no-untyped-def]
    """``[ci_vars] include_remote_auth`` -> ``headers(url)``: the Authorization of the longest matching prefix."""
    text = text.strip()
    if not text:
        return None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise SettingsError(f"[ci_vars] include_remote_auth is not JSON: {err.msg} at column {err.colno}") from None
    if not isinstance(document, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in document.items()
    ):
        raise SettingsError("[ci_vars] include_remote_auth must map URL prefixes to connection ids")
    prefixes = sorted(document.items(), key=lambda item: -len(item[0]))

    def headers(url: str) -> dict[str, str]:
        import base64

        for prefix, conn_id in prefixes:
            if url.startswith(prefix):
                found = _connection_credentials(conn_id)
                if found is None:
                    raise SettingsError(f"[ci_vars] include_remote_auth: connection `{conn_id}` does not exist")
                login, password = found
                if login:
                    token = base64.b64encode(f"{login}:{password}".encode()).decode()
                    return {"Authorization": f"Basic {token}"}
                return {"Authorization": f"Bearer {password}"}
        return {}

    return headers
