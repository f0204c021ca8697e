"""``CIVaultBackend``: the hashicorp provider's ``VaultBackend`` plus the CI variable store.

Configured once::

    [secrets]
    backend = airflow_ci_vars.secrets.vault.CIVaultBackend
    backend_kwargs = {"url": "https://vault:8200", "auth_type": "approle", "role_id": "...",
                      "secret_id": "...", "ci_mount_point": "ci"}

Airflow Connections, Variables and config are served exactly as ``VaultBackend`` serves them;
``ci_store()`` gives the CI layers (``VaultStore``) of the same Vault. Both share one
authenticated client per process (one login), re-login once on 403 and retry 5xx answers and
connection errors with backoff. This module imports Airflow.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from airflow.providers.hashicorp._internal_client.vault_client import _VaultClient
from airflow.providers.hashicorp.secrets.vault import VaultBackend
from hvac.exceptions import InvalidPath  # type: ignore[import-untyped]

from airflow_ci_vars.stores.vault import (
    BACKEND_ONLY_KEYS,
    DEFAULT_MOUNT_POINT,
    RetryPolicy,
    VaultConnection,
    VaultStore,
    split_backend_kwargs,
)

__all__ = ["CIVaultBackend"]

T = TypeVar("T")


class _SharedVaultClient(_VaultClient):
    """The provider's client for Airflow's lookups, authenticated through the shared connection."""

    def __init__(self, connection: VaultConnection, retry: RetryPolicy, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._connection = connection
        self._retry = retry
        self._target = threading.local()

    @property
    def client(self) -> Any:
        """The process-wide authenticated ``hvac.Client`` (logging in on first use)."""
        return self._connection.client()[0]

    def _invalidate_client(self) -> None:
        self._connection.invalidate()

    def _run_with_reauth(self, operation: Callable[[Any], T]) -> T:
        mount, path = getattr(self._target, "value", (None, None))
        return self._connection.run(operation, retry=self._retry, mount=mount, path=path)

    def get_secret(self, secret_path: str, secret_version: int | None = None) -> dict[str, Any] | None:
        """As ``_VaultClient.get_secret``; errors name the mount and path read."""
        try:
            self._target.value = self._parse_secret_path(secret_path)
        except InvalidPath:
            self._target.value = (None, secret_path)
        try:
            result: dict[str, Any] | None = super().get_secret(secret_path, secret_version)
            return result
        finally:
            self._target.value = (None, None)


class CIVaultBackend(VaultBackend):
    """``VaultBackend`` (every key of its ``backend_kwargs``) that also serves the CI layers.

    Extra keys: ``ci_mount_point`` (KV v2 mount of the CI layers, default ``ci``),
    ``ci_cache_ttl`` (seconds reads are shared between tasks of a worker process, default 0 =
    off), ``ci_retry_attempts`` (5), ``ci_retry_delay`` (0.2 s, doubling) and
    ``ci_retry_max_delay`` (5 s). They are removed before ``VaultBackend`` sees the rest.
    """

    def __init__(self, ci_mount_point: str = DEFAULT_MOUNT_POINT, ci_cache_ttl: float = 0.0, **kwargs: Any) -> None:
        backend_kwargs, ci_options = split_backend_kwargs(kwargs)
        super().__init__(**backend_kwargs)
        self._store_kwargs: dict[str, Any] = {
            **backend_kwargs,
            **ci_options,
            "ci_mount_point": ci_mount_point,
            "ci_cache_ttl": ci_cache_ttl,
        }
        store = VaultStore.from_backend_kwargs(self._store_kwargs)  # checks the ci_* options
        client_kwargs = {k: v for k, v in backend_kwargs.items() if k not in BACKEND_ONLY_KEYS}
        self.vault_client = _SharedVaultClient(
            store.connection,
            store.retry,
            mount_point=self.mount_point,
            kv_engine_version=self.kv_engine_version,
            **client_kwargs,
        )

    def ci_store(self) -> VaultStore:
        """A new ``VaultStore`` of this configuration (one per task attempt or command).

        It shares this backend's authenticated client; with ``ci_cache_ttl`` also its reads.
        """
        return VaultStore.from_backend_kwargs(self._store_kwargs)
