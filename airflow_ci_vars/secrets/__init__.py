"""Airflow secrets backends of airflow-ci-vars.

``CIVaultBackend`` is exported lazily: importing this package does not import Airflow, only
``airflow_ci_vars.secrets.vault`` (or the attribute access) does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_ci_vars.secrets.vault import CIVaultBackend

__all__ = ["CIVaultBackend"]


def __getattr__(name: str) -> Any:
    if name == "CIVaultBackend":
        from airflow_ci_vars.secrets.vault import CIVaultBackend

        return CIVaultBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
