"""Auth types (token, AppRole, JWT), one client per process, re-login once on 403."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from airflow_ci_vars.errors import VaultError
from airflow_ci_vars.stores.base import LayerRef
from airflow_ci_vars.stores.vault import VaultStore, vault_connection
from airflow_ci_vars.variables.model import Variable

if TYPE_CHECKING:
    from conftest import Proxy, Vault

pytestmark = pytest.mark.vault

INSTANCE = LayerRef("instance")


def _seed(make_store: Callable[..., VaultStore]) -> None:
    make_store().set_variable(INSTANCE, Variable("SEEDED", "yes"))
    make_store().set_variable(LayerRef("group", "acme"), Variable("IN_GROUP", "yes"))


def test_token_auth(make_store: Callable[..., VaultStore], proxy: Proxy) -> None:
    _seed(make_store)
    store = make_store(url=proxy.url)
    assert store.load().instance[0].value == "yes"
    assert store.connection.logins == 1
    assert proxy.count("POST") == 0  # a token needs no login request


def test_approle_auth_logs_in_once_per_process(
    vault: Vault, make_store: Callable[..., VaultStore], proxy: Proxy
) -> None:
    _seed(make_store)
    role_id, secret_id = vault.approle_credentials()
    first = make_store(url=proxy.url, auth_type="approle", role_id=role_id, secret_id=secret_id)
    second = make_store(url=proxy.url, auth_type="approle", role_id=role_id, secret_id=secret_id)
    assert first.connection is second.connection
    assert first.load("acme/app").groups["acme"][0].key == "IN_GROUP"
    assert second.load("acme/app").instance[0].key == "SEEDED"
    assert proxy.count("POST", "/v1/auth/approle/login") == 1
    assert first.connection.logins == 1
    assert secret_id not in repr(first) and secret_id not in repr(first.connection)


def test_distinct_configurations_get_distinct_clients(vault: Vault, mount: str) -> None:
    role_id, secret_id = vault.approle_credentials()
    _, other_secret = vault.approle_credentials()
    a = vault_connection({"url": vault.url, "auth_type": "approle", "role_id": role_id, "secret_id": secret_id})
    b = vault_connection({"url": vault.url, "auth_type": "approle", "role_id": role_id, "secret_id": other_secret})
    c = vault_connection({"url": vault.url, "auth_type": "approle", "role_id": role_id, "secret_id": secret_id})
    assert a is c and a is not b
    assert secret_id not in a.key and vault.root_token not in a.key


def test_jwt_auth(vault: Vault, make_store: Callable[..., VaultStore], proxy: Proxy) -> None:
    _seed(make_store)
    token = vault.jwt_issuer.token("acme/data/etl")
    store = make_store(url=proxy.url, auth_type="jwt", jwt_role="ci", jwt_token=token)
    assert store.load("acme/data/etl").instance[0].key == "SEEDED"
    assert proxy.count("POST", "/v1/auth/jwt/login") == 1


def test_jwt_refused_names_the_path_not_the_token(vault: Vault, make_store: Callable[..., VaultStore]) -> None:
    token = vault.jwt_issuer.token("other/project")  # outside the role's bound claims
    store = make_store(auth_type="jwt", jwt_role="ci", jwt_token=token)
    with pytest.raises(VaultError) as exc:
        store.load()
    text = str(exc.value)
    assert text.startswith(f"vault {store.mount_point}/instance: jwt login failed (InvalidRequest: ")
    assert token not in text and token[-20:] not in text
    assert exc.value.path == "instance"


def test_bad_approle_secret_fails_without_retry(
    vault: Vault, make_store: Callable[..., VaultStore], proxy: Proxy
) -> None:
    role_id, _ = vault.approle_credentials()
    store = make_store(url=proxy.url, auth_type="approle", role_id=role_id, secret_id="not-the-secret-id-123")
    with pytest.raises(VaultError, match="approle login failed") as exc:
        store.load()
    assert "not-the-secret-id-123" not in str(exc.value)
    assert proxy.count() == 1


def test_invalid_configuration(make_store: Callable[..., VaultStore]) -> None:
    with pytest.raises(VaultError, match="invalid Vault configuration: The 'approle' authentication type requires"):
        make_store(auth_type="approle").load()


def test_relogin_once_after_the_token_is_revoked(
    vault: Vault, make_store: Callable[..., VaultStore], proxy: Proxy
) -> None:
    _seed(make_store)
    role_id, secret_id = vault.approle_credentials()
    kwargs = {"url": proxy.url, "auth_type": "approle", "role_id": role_id, "secret_id": secret_id}
    make_store(**kwargs).load()
    client, _ = make_store(**kwargs).connection.client()
    vault.root().auth.token.revoke(client.token)
    proxy.reset()
    settings = make_store(**kwargs).load("acme/app")  # 403, login, retry, then the other layers
    assert settings.instance[0].key == "SEEDED"
    assert proxy.count("POST", "/v1/auth/approle/login") == 1
    mount = make_store().mount_point
    assert proxy.count("GET", f"/v1/{mount}/data/instance") == 2
    assert make_store(**kwargs).connection.logins == 2


def test_a_revoked_token_fails_after_one_relogin(
    vault: Vault, make_store: Callable[..., VaultStore], proxy: Proxy
) -> None:
    _seed(make_store)
    token = vault.root().auth.token.create(policies=["ci-rw"], ttl="1h")["auth"]["client_token"]
    store = make_store(url=proxy.url, token=token)
    store.list_variables(INSTANCE)
    vault.root().auth.token.revoke(token)
    proxy.reset()
    with pytest.raises(VaultError) as exc:
        store.load("acme/app")
    assert str(exc.value).startswith(f"vault {store.mount_point}/groups/acme: permission denied after logging in again")
    assert token not in str(exc.value)
    assert proxy.count() == 2  # the request, then once more after the new "login"
