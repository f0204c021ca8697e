"""Retries with backoff on 5xx and connection errors, the outage path, and the TTL cache."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import start_bao

from airflow_ci_vars.errors import VaultError
from airflow_ci_vars.settings import load_settings
from airflow_ci_vars.stores.base import LayerRef
from airflow_ci_vars.stores.vault import RetryPolicy, VaultStore
from airflow_ci_vars.variables.model import Variable

if TYPE_CHECKING:
    from conftest import Proxy

pytestmark = pytest.mark.vault

ETL_SETTINGS = Path(__file__).resolve().parents[2] / "examples" / "etl" / "settings.yml"


@pytest.mark.parametrize("status", [503, 500, 502, 504, None])
def test_retries_a_flaky_server(
    make_store: Callable[..., VaultStore], proxy: Proxy, status: int | None, caplog: pytest.LogCaptureFixture
) -> None:
    make_store().set_variable(LayerRef("instance"), Variable("K", "v"))
    store = make_store(url=proxy.url)
    proxy.fail(2, status)  # two failures (None: the connection is dropped), then forwarded
    with caplog.at_level(logging.WARNING, logger="airflow_ci_vars.stores.vault"):
        assert store.load().instance[0].value == "v"
    assert proxy.count("GET") == 3
    assert len([r for r in caplog.records if "retrying in" in r.getMessage()]) == 2


def test_gives_up_after_the_configured_attempts(
    make_store: Callable[..., VaultStore], proxy: Proxy, mount: str
) -> None:
    store = make_store(url=proxy.url, retry=RetryPolicy(attempts=3, delay=0.05, max_delay=0.08))
    proxy.fail(10, 503)
    started = time.monotonic()
    with pytest.raises(VaultError) as exc:
        store.read_secret(mount, "ops/db")
    assert time.monotonic() - started >= 0.05 + 0.08
    assert proxy.count() == 3
    assert str(exc.value) == (f"vault {mount}/ops/db: Vault unavailable after 3 attempts (VaultDown: injected failure)")


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy()
    assert [policy.backoff(n) for n in range(1, 8)] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


def test_outage_while_resolving_fails_naming_the_path(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The server stops while a job reads its layers: retries, then VaultError naming the path."""
    server = start_bao(tmp_path / "outage")
    try:
        settings = load_settings(ETL_SETTINGS)
        root = server.root()
        root.sys.enable_secrets_engine("kv", path="ci", options={"version": "2"})
        kwargs = {"url": server.url, "token": server.root_token, "retry": RetryPolicy(attempts=4, delay=0.05)}
        VaultStore(**kwargs).import_settings(settings)
        store = VaultStore(**kwargs)
        with caplog.at_level(logging.DEBUG):
            store.list_variables(LayerRef("instance"))  # the job has started reading
            server.stop()
            started = time.monotonic()
            with pytest.raises(VaultError) as exc:
                store.load("acme/data/etl")
            elapsed = time.monotonic() - started
    finally:
        server.stop()
    error = exc.value
    assert (error.mount, error.path) == ("ci", "groups/acme")
    assert str(error).startswith("vault ci/groups/acme: Vault unavailable after 4 attempts (ConnectionError: ")
    assert elapsed >= 0.05 + 0.1 + 0.2
    retries = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) == 3 and all("ci/groups/acme" in m for m in retries)
    layers = (settings.instance, *settings.groups.values(), *settings.projects.values())
    secrets = [v.value for variables in layers for v in variables if v.masked]
    assert len(secrets) == 3
    logged = caplog.text + "\n".join(repr(r.args) for r in caplog.records)
    for text in (str(error), repr(error), logged):
        assert server.root_token not in text
        for value in secrets:
            assert value not in text


def test_ttl_cache_is_shared_between_stores(make_store: Callable[..., VaultStore], proxy: Proxy, mount: str) -> None:
    make_store().import_settings(load_settings(ETL_SETTINGS))
    make_store().set_variable(LayerRef("instance", None), Variable("EXTRA", "1"))
    make_store(url=proxy.url, cache_ttl=60).load("acme/data/etl")
    assert proxy.count() == 4
    warm = make_store(url=proxy.url, cache_ttl=60).load("acme/data/etl")
    assert proxy.count() == 4  # every layer served by the cache
    assert [v.key for v in warm.instance] == ["HTTP_PROXY_HOST", "LOG_LEVEL", "EXTRA"]
    make_store(url=proxy.url).load("acme/data/etl")  # cache off: reads again
    assert proxy.count() == 8
    # A write through the cache's configuration drops the cached layer.
    make_store(url=proxy.url, cache_ttl=60).set_variable(LayerRef("instance"), Variable("EXTRA", "2"))
    proxy.reset()
    assert make_store(url=proxy.url, cache_ttl=60).load().instance[-1].value == "2"
    assert proxy.count("GET") == 1


def test_ttl_cache_expires(make_store: Callable[..., VaultStore], proxy: Proxy, mount: str) -> None:
    make_store().set_variable(LayerRef("instance"), Variable("K", "v"))
    make_store(url=proxy.url, cache_ttl=0.3).read_secret(mount, "instance")
    make_store(url=proxy.url, cache_ttl=0.3).read_secret(mount, "instance")
    assert proxy.count() == 1
    time.sleep(0.4)
    make_store(url=proxy.url, cache_ttl=0.3).read_secret(mount, "instance")
    assert proxy.count() == 2
