"""CIVaultBackend: Airflow Variables and Connections as VaultBackend serves them, plus the CI layers."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from airflow_ci_vars.errors import VaultError
from airflow_ci_vars.stores.base import LayerRef
from airflow_ci_vars.stores.vault import VaultStore
from airflow_ci_vars.variables.model import Variable

if TYPE_CHECKING:
    from conftest import Proxy, Vault

pytestmark = pytest.mark.vault


@pytest.fixture
def airflow_secrets(vault: Vault, mount: str) -> Iterator[str]:
    """Airflow Variables and Connections in the dev server's ``secret/`` mount, under a test prefix."""
    prefix = mount  # one prefix per test
    kv = vault.root().secrets.kv.v2
    kv.create_or_update_secret(f"{prefix}/variables/greeting", {"value": "hello"}, mount_point="secret")
    kv.create_or_update_secret(f"{prefix}/variables/no_value", {"other": "x"}, mount_point="secret")
    kv.create_or_update_secret(
        f"{prefix}/connections/warehouse",
        {"conn_uri": "postgresql://etl:pw-w4reh0use@db.acme.internal:5432/warehouse"},
        mount_point="secret",
    )
    kv.create_or_update_secret(
        f"{prefix}/connections/api",
        {"conn_type": "http", "host": "api.acme.internal", "login": "bot", "password": "pw-4p1-t0ken", "port": 443},
        mount_point="secret",
    )
    kv.create_or_update_secret(f"{prefix}/config/smtp_host", {"value": "smtp.acme.internal"}, mount_point="secret")
    yield prefix


def _kwargs(vault: Vault, prefix: str, **extra: Any) -> dict[str, Any]:
    return {
        "url": vault.url,
        "token": vault.root_token,
        "variables_path": f"{prefix}/variables",
        "connections_path": f"{prefix}/connections",
        "config_path": f"{prefix}/config",
        **extra,
    }


def test_serves_airflow_variables_and_connections_like_vault_backend(
    vault: Vault, airflow_secrets: str, mount: str
) -> None:
    from airflow.providers.hashicorp.secrets.vault import VaultBackend

    from airflow_ci_vars.secrets.vault import CIVaultBackend

    kwargs = _kwargs(vault, airflow_secrets)
    ours = CIVaultBackend(**kwargs, ci_mount_point=mount, ci_cache_ttl=5)
    theirs = VaultBackend(**kwargs)
    assert isinstance(ours, VaultBackend)
    for key in ("greeting", "no_value", "missing"):
        assert ours.get_variable(key) == theirs.get_variable(key)
    assert ours.get_variable("greeting") == "hello"
    assert ours.get_config("smtp_host") == theirs.get_config("smtp_host") == "smtp.acme.internal"
    for conn_id in ("warehouse", "api"):
        assert ours.get_conn_value(conn_id) == theirs.get_conn_value(conn_id)
        a, b = ours.get_connection(conn_id), theirs.get_connection(conn_id)
        assert a is not None and b is not None
        assert (a.conn_type, a.host, a.login, a.password, a.port, a.schema) == (
            b.conn_type,
            b.host,
            b.login,
            b.password,
            b.port,
            b.schema,
        )
    assert ours.get_connection("missing") is None
    warehouse = ours.get_connection("warehouse")
    assert warehouse is not None and warehouse.host == "db.acme.internal" and warehouse.port == 5432


def test_ci_store_shares_the_configuration_and_the_login(
    vault: Vault, airflow_secrets: str, mount: str, proxy: Proxy
) -> None:
    from airflow_ci_vars.secrets import CIVaultBackend

    role_id, secret_id = vault.approle_credentials()
    kwargs = _kwargs(vault, airflow_secrets, url=proxy.url, auth_type="approle", role_id=role_id, secret_id=secret_id)
    del kwargs["token"]
    backend = CIVaultBackend(**kwargs, ci_mount_point=mount, ci_retry_attempts=2)
    store = backend.ci_store()
    assert isinstance(store, VaultStore)
    assert (store.mount_point, store.retry.attempts) == (mount, 2)
    store.set_variable(LayerRef("instance"), Variable("FROM_CI", "1"))
    assert backend.get_variable("greeting") == "hello"
    assert backend.ci_store().load().instance[0].key == "FROM_CI"
    assert backend.ci_store() is not store  # one store per task attempt; one client per process
    assert proxy.count("POST", "/v1/auth/approle/login") == 1
    # The same backend_kwargs in the CLI or the operator (configured_store) share that client too.
    assert VaultStore.from_backend_kwargs({**kwargs, "ci_mount_point": mount}).connection is store.connection


def test_backend_relogs_in_and_retries(vault: Vault, airflow_secrets: str, mount: str, proxy: Proxy) -> None:
    from airflow_ci_vars.secrets.vault import CIVaultBackend

    role_id, secret_id = vault.approle_credentials()
    kwargs = _kwargs(vault, airflow_secrets, url=proxy.url, auth_type="approle", role_id=role_id, secret_id=secret_id)
    del kwargs["token"]
    backend = CIVaultBackend(**kwargs, ci_mount_point=mount, ci_retry_delay=0.01)
    assert backend.get_variable("greeting") == "hello"
    vault.root().auth.token.revoke(backend.vault_client.client.token)
    proxy.fail(2, 503)
    assert backend.get_variable("greeting") == "hello"  # 503, 503, 403, login, read
    assert proxy.count("POST", "/v1/auth/approle/login") == 2
    proxy.fail(10, 502)
    with pytest.raises(VaultError) as exc:
        backend.get_variable("greeting")
    assert str(exc.value).startswith(f"vault secret/{airflow_secrets}/variables/greeting: Vault unavailable after 5")


def test_unknown_ci_option_is_refused(vault: Vault) -> None:
    from airflow_ci_vars.secrets.vault import CIVaultBackend

    with pytest.raises(ValueError, match="unknown backend_kwargs ci_mount"):
        CIVaultBackend(url=vault.url, token=vault.root_token, ci_mount="ci")


def test_backend_kwargs_json_as_airflow_passes_them(vault: Vault, airflow_secrets: str, mount: str) -> None:
    """``[secrets] backend_kwargs`` is JSON; per-key environment overrides arrive as strings."""
    from airflow_ci_vars.secrets.vault import CIVaultBackend

    raw = json.dumps({**_kwargs(vault, airflow_secrets), "ci_mount_point": mount, "ci_cache_ttl": "60"})
    backend = CIVaultBackend(**json.loads(raw))
    assert backend.get_variable("greeting") == "hello"
    assert backend.ci_store().cache_ttl == 60.0


def test_importing_the_package_does_not_import_airflow() -> None:
    code = (
        "import sys, airflow_ci_vars, airflow_ci_vars.secrets, airflow_ci_vars.stores.vault\n"
        "loaded = sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.'))\n"
        "assert not loaded, loaded\n"
        "from airflow_ci_vars.secrets import CIVaultBackend\n"
        "assert 'airflow.providers.hashicorp.secrets.vault' in sys.modules\n"
        "print(CIVaultBackend.__mro__[1].__name__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "VaultBackend"
