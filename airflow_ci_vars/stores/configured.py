"""One configuration: which store the operator and the CLI use.

When Airflow's ``[secrets] backend`` is ``CIVaultBackend``, the CI layers come from Vault with the
backend's ``backend_kwargs`` (configured once for Airflow and for CI); otherwise from the settings
file (the operator's ``settings_file``, else ``[ci_vars] settings_file``). Reading Airflow's
configuration imports Airflow, so this module belongs to the Airflow shell.
"""

from __future__ import annotations

import json
import os
from typing import Any

from airflow_ci_vars.settings import Settings
from airflow_ci_vars.stores.base import VariableStore

__all__ = ["CI_VAULT_BACKEND", "configured_store", "project_settings", "settings_file_path"]

CI_VAULT_BACKEND = "airflow_ci_vars.secrets.vault.CIVaultBackend"


def _airflow_conf(given: Any = None) -> Any:
    if given is not None:  # e.g. airflow_config.AirflowOptions, for run's direct engine
        return given
    from airflow.sdk import conf

    return conf


def settings_file_path(settings_file: str | os.PathLike[str] | None = None, conf: Any = None) -> str | None:
    """The settings file to use: the argument, else ``[ci_vars] settings_file`` (of ``conf``, by
    default Airflow's configuration), else None."""
    if settings_file:
        return str(settings_file)
    value = _airflow_conf(conf).get("ci_vars", "settings_file", fallback="")
    return str(value) if value else None


def configured_store(settings_file: str | os.PathLike[str] | None = None, conf: Any = None) -> VariableStore:
    """The store configured for this Airflow installation (Vault or the settings file); ``conf``:
    where the options are read (default Airflow's configuration)."""
    conf = _airflow_conf(conf)
    backend = (conf.get("secrets", "backend", fallback="") or "").strip()
    if backend == CI_VAULT_BACKEND:
        raw = conf.get("secrets", "backend_kwargs", fallback="") or "{}"
        kwargs = json.loads(raw)
        from airflow_ci_vars.stores.vault import VaultStore

        return VaultStore.from_backend_kwargs(kwargs)
    from airflow_ci_vars.stores.file import FileStore

    return FileStore(settings_file_path(settings_file, conf))


def project_settings(store: VariableStore, project: str | None, dag_id: str) -> tuple[str, Settings]:
    """The project a pipeline's DAG belongs to, and its settings: the DAG's ``project``, else the
    settings' own ``project``, else the DAG id. Raises ``CIVarsError`` when the store says so."""
    settings = store.load(project)
    path = project or settings.project or dag_id
    if settings.project is None and path != project:
        settings = store.load(path)
    return path, settings
