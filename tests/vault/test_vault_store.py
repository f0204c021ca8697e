"""VaultStore against a real OpenBao: layout, round trip, request counts, writes and GitLab's rules."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_ci_vars.errors import KeyValidationError, MaskabilityError, VariableValidationError, VaultError
from airflow_ci_vars.settings import load_settings
from airflow_ci_vars.stores.base import LayerRef
from airflow_ci_vars.stores.vault import VaultRecordError, VaultStore
from airflow_ci_vars.variables.model import Layer, Variable, VariableSource

if TYPE_CHECKING:
    from conftest import Proxy, Vault

pytestmark = pytest.mark.vault

ETL_SETTINGS = Path(__file__).resolve().parents[2] / "examples" / "etl" / "settings.yml"

PROJECT = LayerRef("project", "acme/data/etl")
GROUP = LayerRef("group", "acme")
INSTANCE = LayerRef("instance")


def _kv(vault: Vault, mount: str, path: str) -> dict[str, Any] | None:
    from hvac.exceptions import InvalidPath

    try:
        response = vault.root().secrets.kv.v2.read_secret_version(
            path=path, mount_point=mount, raise_on_deleted_version=True
        )
    except InvalidPath:
        return None
    data: dict[str, Any] = response["data"]["data"]
    return data


def _put(vault: Vault, mount: str, path: str, data: dict[str, Any]) -> None:
    vault.root().secrets.kv.v2.create_or_update_secret(path=path, secret=data, mount_point=mount)


def test_import_then_load_gives_the_settings_file_layers(make_store: Callable[..., VaultStore]) -> None:
    settings = load_settings(ETL_SETTINGS)
    written = make_store().import_settings(settings)
    assert written == (
        "instance",
        "groups/acme",
        "groups/acme/data",
        "projects/acme/data/etl",
    )
    loaded = make_store().load("acme/data/etl")
    assert loaded.project == settings.project == "acme/data/etl"
    assert loaded.access() == settings.access()
    assert [r.name for r in loaded.access().ref_rules] == ["main", "release/*"]
    assert loaded.instance == settings.instance
    assert dict(loaded.groups) == dict(settings.groups)
    assert dict(loaded.projects) == dict(settings.projects)
    assert loaded.layers_for() == settings.layers_for()
    hidden = next(v for v in loaded.projects["acme/data/etl"] if v.key == "DB_PASSWORD")
    assert hidden.hidden and hidden.masked and hidden.source == VariableSource(Layer.PROJECT, "acme/data/etl")


def test_pipeline_variable_restriction_round_trips_through_the_project_record(
    vault: Vault, mount: str, make_store: Callable[..., VaultStore]
) -> None:
    loaded_file = load_settings(ETL_SETTINGS)
    access = dataclasses.replace(
        loaded_file.access_defaults, pipeline_variables_minimum_role="maintainer", members={"alice": "owner"}
    )
    settings = dataclasses.replace(loaded_file, access_defaults=access)
    make_store().import_settings(settings)
    record = _kv(vault, mount, "projects/acme/data/etl")
    assert record is not None
    assert (record["pipeline_variables_minimum_role"], record["members"]) == ("maintainer", {"alice": "owner"})
    loaded = make_store().load("acme/data/etl")
    assert (loaded.access().pipeline_variables_minimum_role, dict(loaded.access().members)) == (
        "maintainer",
        {"alice": "owner"},
    )
    _put(vault, mount, "projects/acme/data/etl", {**record, "pipeline_variables_minimum_role": "admin"})
    with pytest.raises(VaultRecordError, match="pipeline_variables_minimum_role must be one of: no_one_allowed"):
        make_store().load("acme/data/etl")


def test_layers_are_stored_with_their_metadata(vault: Vault, mount: str, make_store: Callable[..., VaultStore]) -> None:
    make_store().import_settings(load_settings(ETL_SETTINGS))
    project = _kv(vault, mount, "projects/acme/data/etl")
    assert project is not None
    assert "default_branch" not in project  # settings at their defaults are left out
    assert project["protected_refs"] == ["main", "release/*"]
    gcp = next(r for r in project["variables"] if r["key"] == "GCP_KEY_JSON")
    assert gcp == {
        "key": "GCP_KEY_JSON",
        "value": '{"type": "service_account"}',
        "variable_type": "file",
        "masked": False,
        "hidden": False,
        "protected": False,
        "raw": False,
        "environment_scope": "*",
    }
    group = _kv(vault, mount, "groups/acme/data")
    assert group is not None
    assert {(r["key"], r["environment_scope"]) for r in group["variables"]} == {
        ("LOG_LEVEL", "*"),
        ("S3_BUCKET", "review/*"),
        ("S3_BUCKET", "production"),
    }


def test_load_reads_each_layer_once(make_store: Callable[..., VaultStore], proxy: Proxy, mount: str) -> None:
    make_store().import_settings(load_settings(ETL_SETTINGS))
    store = make_store(url=proxy.url)
    store.load("acme/data/etl")
    assert sorted(proxy.requests) == sorted(
        ("GET", f"/v1/{mount}/data/{path}")
        for path in ("instance", "groups/acme", "groups/acme/data", "projects/acme/data/etl")
    )
    store.load("acme/data/etl")
    store.list_variables(GROUP)
    store.list_variables(PROJECT)
    assert len(proxy.requests) == 4
    # Another project of the same group: only its own missing layers are read.
    other = store.load("acme/data/other")
    assert len(proxy.requests) == 5
    assert other.projects == {} and list(other.groups) == ["acme", "acme/data"]


def test_missing_layers_are_empty(make_store: Callable[..., VaultStore], proxy: Proxy) -> None:
    store = make_store(url=proxy.url)
    store.set_variable(GROUP, Variable("GROUP_ONLY", "1"))
    proxy.reset()
    settings = make_store(url=proxy.url).load("acme/new/app")
    assert proxy.count("GET") == 4  # instance, acme, acme/new, the project: 404s are not errors
    assert settings.instance == ()
    assert list(settings.groups) == ["acme"]
    assert settings.projects == {}
    assert settings.access().default_branch == "main" and [r.name for r in settings.access().ref_rules] == ["main"]
    assert make_store().load().instance == ()


def test_set_list_unset(make_store: Callable[..., VaultStore]) -> None:
    store = make_store()
    store.set_variable(PROJECT, Variable("A", "1"))
    store.set_variable(PROJECT, Variable("A", "prod", environment_scope="production"))
    store.set_variable(PROJECT, Variable("CERT", "-----BEGIN-----", variable_type="file", description="tls"))
    store.set_variable(PROJECT, Variable(" A ", "2"))  # same key (stripped) and scope: replaced
    listed = make_store().list_variables(PROJECT)
    source = VariableSource(Layer.PROJECT, "acme/data/etl")
    assert listed == (
        Variable("A", "2", source=source),
        Variable("A", "prod", environment_scope="production", source=source),
        Variable("CERT", "-----BEGIN-----", variable_type="file", description="tls", source=source),
    )
    assert store.list_variables(PROJECT) == listed  # the store remembers its own writes
    assert store.unset_variable(PROJECT, "A", "production") is True
    assert store.unset_variable(PROJECT, "A", "production") is False
    assert store.unset_variable(LayerRef("project", "nobody/here"), "A") is False
    assert [v.key for v in make_store().list_variables(PROJECT)] == ["A", "CERT"]


def test_set_keeps_the_project_settings(make_store: Callable[..., VaultStore]) -> None:
    make_store().import_settings(load_settings(ETL_SETTINGS))
    make_store().set_variable(PROJECT, Variable("NEW", "x"))
    loaded = make_store().load("acme/data/etl")
    assert [r.name for r in loaded.access().ref_rules] == ["main", "release/*"]
    assert "NEW" in {v.key for v in loaded.projects["acme/data/etl"]}


def test_gitlab_update_rules(make_store: Callable[..., VaultStore]) -> None:
    store = make_store()
    store.set_variable(PROJECT, Variable("TOKEN", "hidden-value-1234", masked=True, hidden=True))
    store.set_variable(PROJECT, Variable("PLAIN", "visible"))
    with pytest.raises(VariableValidationError) as exc:
        store.set_variable(PROJECT, Variable("TOKEN", "hidden-value-1234", masked=True))
    assert exc.value.message == "Updating hidden attribute is not allowed on updates."
    assert exc.value.field == "hidden"
    with pytest.raises(VariableValidationError, match=r"^Updating hidden attribute is not allowed on updates\.$"):
        store.set_variable(PROJECT, Variable("PLAIN", "visible-12345", masked=True, hidden=True))
    with pytest.raises(VariableValidationError) as exc:
        store.set_variable(PROJECT, Variable("TOKEN", "hidden-value-1234", masked=False, hidden=True))
    # On update GitLab checks the update rules, not "hidden requires masked" (a create rule).
    assert exc.value.message == "Updating masked attribute is not allowed on updates for hidden variables."
    with pytest.raises(VariableValidationError, match=r"^Updating hidden attribute is not allowed on updates\.$"):
        store.set_variable(PROJECT, Variable("PLAIN", "visible", hidden=True))
    # The value of a hidden variable can change; the rule on masked applies to hidden variables.
    store.set_variable(PROJECT, Variable("TOKEN", "new-hidden-value-99", masked=True, hidden=True))
    store.set_variable(PROJECT, Variable("PLAIN", "now-masked-1234", masked=True))
    store.set_variable(PROJECT, Variable("PLAIN", "unmasked again"))
    values = {v.key: v for v in make_store().list_variables(PROJECT)}
    assert values["TOKEN"].value == "new-hidden-value-99" and values["TOKEN"].hidden
    assert values["PLAIN"].value == "unmasked again" and not values["PLAIN"].masked


def test_masked_of_hidden_cannot_change(vault: Vault, mount: str, make_store: Callable[..., VaultStore]) -> None:
    # A hidden record with masked: false can only come from outside (GitLab refuses it on create).
    _put(vault, mount, "projects/acme/data/etl", {"variables": [{"key": "H", "value": "x", "hidden": True}]})
    with pytest.raises(VariableValidationError) as exc:
        make_store().set_variable(PROJECT, Variable("H", "hidden-value-1234", masked=True, hidden=True))
    assert exc.value.message == "Updating masked attribute is not allowed on updates for hidden variables."


def test_set_validates_like_gitlab(vault: Vault, mount: str, make_store: Callable[..., VaultStore]) -> None:
    store = make_store()
    with pytest.raises(KeyValidationError):
        store.set_variable(PROJECT, Variable("BAD-KEY", "x"))
    with pytest.raises(MaskabilityError) as masked:
        store.set_variable(PROJECT, Variable("SHORT", "sh0rt", masked=True))
    assert "sh0rt" not in str(masked.value)
    with pytest.raises(VariableValidationError, match="should be true when variable is hidden"):
        store.set_variable(PROJECT, Variable("HIDDEN", "long-enough-value", hidden=True))
    with pytest.raises(VariableValidationError, match="instance variables cannot have an environment scope"):
        store.set_variable(INSTANCE, Variable("SCOPED", "x", environment_scope="production"))
    with pytest.raises(VariableValidationError, match="Description is too long"):
        store.set_variable(GROUP, Variable("DESC", "x", description="d" * 256))
    with pytest.raises(VariableValidationError, match="Value of 'SURROGATE' is not valid UTF-8 text"):
        store.set_variable(GROUP, Variable("SURROGATE", "a\udc80b"))
    assert _kv(vault, mount, "projects/acme/data/etl") is None  # nothing was written
    assert _kv(vault, mount, "instance") is None
    assert _kv(vault, mount, "groups/acme") is None


def test_bad_records_name_path_and_key_never_value(
    vault: Vault, mount: str, make_store: Callable[..., VaultStore]
) -> None:
    _put(vault, mount, "instance", {"variables": [{"key": "SHORT_ONE", "value": "t1ny", "masked": True}]})
    with pytest.raises(VaultRecordError) as exc:
        make_store().load()
    text = str(exc.value)
    assert text.startswith(f"vault:{mount}/instance: variable 'SHORT_ONE': ")
    assert "t1ny" not in text
    assert (exc.value.mount, exc.value.path, exc.value.key) == (mount, "instance", "SHORT_ONE")

    _put(
        vault,
        mount,
        "projects/acme/data/etl",
        {
            "variables": [
                {"key": "bad-key", "value": "s3cr3t-one"},
                {"key": "FLAG", "value": True},
                {"key": "EXTRA", "value": "s3cr3t-two", "colour": "red"},
                {"key": "DUP", "value": "s3cr3t-three"},
                {"key": "DUP", "value": "s3cr3t-four"},
                {"value": "s3cr3t-five"},
            ],
            "default_branch": "",
        },
    )
    _put(vault, mount, "instance", {"variables": []})
    with pytest.raises(VaultRecordError) as exc:
        make_store().load("acme/data/etl")
    text = str(exc.value)
    assert all(f"s3cr3t-{n}" not in text for n in ("one", "two", "three", "four", "five"))
    assert f"vault:{mount}/projects/acme/data/etl" in text
    for expected in (
        "variable 'bad-key'",
        "variable 'FLAG': 'value' must be a string, not a boolean",
        "variable 'EXTRA': unknown field 'colour'",
        "Key (DUP) has already been taken for environment scope '*'",
        "variable #6: missing 'key'",
        "default_branch must be a non-empty string",
    ):
        assert expected in text
    assert len(exc.value.errors) == 6

    _put(vault, mount, "groups/acme", {"vars": []})
    with pytest.raises(VaultRecordError, match="unknown key 'vars'"):
        make_store().list_variables(GROUP)


def test_a_bad_record_can_be_fixed_with_set_and_unset(
    vault: Vault, mount: str, make_store: Callable[..., VaultStore]
) -> None:
    _put(vault, mount, "groups/acme", {"variables": [{"key": "OK", "value": "1"}, {"key": "BROKEN", "value": 1.5}]})
    with pytest.raises(VaultRecordError):
        make_store().list_variables(GROUP)
    make_store().set_variable(GROUP, Variable("BROKEN", "1.5"))
    assert [v.value for v in make_store().list_variables(GROUP)] == ["1", "1.5"]


def test_read_secret_once_per_store(
    vault: Vault, mount: str, make_store: Callable[..., VaultStore], proxy: Proxy
) -> None:
    _put(vault, mount, "ops/db", {"user": "etl", "password": "pw-9911-xyz", "port": 5432})
    store = make_store(url=proxy.url)
    assert store.read_secret(mount, "ops/db") == {"user": "etl", "password": "pw-9911-xyz", "port": 5432}
    store.read_secret(mount, "/ops/db/")["user"] = "changed"  # callers get copies
    assert store.secret_field(mount, "ops/db", "user") == "etl"
    assert store.secret_field(mount, "ops/db", "port") == "5432"
    assert proxy.count() == 1
    with pytest.raises(VaultError) as missing_field:
        store.secret_field(mount, "ops/db", "token")
    assert str(missing_field.value) == f"vault {mount}/ops/db (field token): field not found in the secret"
    assert "pw-9911-xyz" not in str(missing_field.value)
    with pytest.raises(VaultError) as missing:
        store.read_secret(mount, "ops/nothing")
    assert (missing.value.mount, missing.value.path) == (mount, "ops/nothing")
    store.read_secret(mount, "ops/db")
    with pytest.raises(VaultError):
        store.read_secret(mount, "ops/nothing")
    assert proxy.count() == 2
    with pytest.raises(VaultError, match="invalid secret path"):
        store.read_secret(mount, "ops/../instance")


def test_concurrent_writers_lose_nothing(make_store: Callable[..., VaultStore]) -> None:
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            make_store().set_variable(GROUP, Variable(f"K{n}", str(n)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(v.key for v in make_store().list_variables(GROUP)) == ["K0", "K1", "K2", "K3"]


def test_from_backend_kwargs(vault: Vault, mount: str) -> None:
    kwargs = {
        "url": vault.url,
        "token": vault.root_token,
        "connections_path": "connections",
        "variables_path": "variables",
        "config_path": None,
        "mount_point": "secret",
        "kv_engine_version": 2,
        "ci_mount_point": mount,
        "ci_cache_ttl": "30",
        "ci_retry_attempts": "3",
    }
    store = VaultStore.from_backend_kwargs(kwargs)
    assert (store.mount_point, store.cache_ttl, store.retry.attempts) == (mount, 30.0, 3)
    store.set_variable(INSTANCE, Variable("K", "v"))
    assert VaultStore.from_backend_kwargs({**kwargs, "ci_cache_ttl": 0}).load().instance[0].value == "v"
    default = VaultStore.from_backend_kwargs({"url": vault.url, "token": vault.root_token})
    assert (default.mount_point, default.cache_ttl) == ("ci", 0.0)
    with pytest.raises(ValueError, match="unknown backend_kwargs ci_mountpoint"):
        VaultStore.from_backend_kwargs({**kwargs, "ci_mountpoint": "x"})
