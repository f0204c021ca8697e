"""``secrets`` (Vault). R: ``config/entry/secrets.rb``; each secret is read by ``vault_secrets.parse_secrets``."""

from __future__ import annotations

from collections.abc import Mapping

from airflow_ci_vars.errors import JobConfigError
from airflow_ci_vars.vault_secrets import SecretSpec, parse_secrets


def parse(name: str, value: object) -> tuple[SecretSpec, ...]:
    """The job's secrets (none without the keyword)."""
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise JobConfigError(f"jobs:{name}:secrets config should be a hash", job=name, key="secrets")
    return parse_secrets(value, job=name) if value else ()
