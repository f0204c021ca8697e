"""The save rules (``variables.validation``) behind a real OpenBao: Vault records, ``VaultStore.set``
and the CLI's ``variables set`` on Vault give the messages the settings file gives.

Each ``test_disagreement_*`` pins a case where the Vault copy of a rule disagreed with another
copy; it fails on the code before the rules lived in one module.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from airflow_ci_vars.cli import main
from airflow_ci_vars.errors import VariableValidationError
from airflow_ci_vars.stores.base import LayerRef
from airflow_ci_vars.stores.vault import VaultRecordError, VaultStore
from airflow_ci_vars.variables.model import Variable

if TYPE_CHECKING:
    from conftest import Vault

pytestmark = pytest.mark.vault

PROJECT = LayerRef("project", "acme/app")
INSTANCE = LayerRef("instance")
SECRET = "s3cret-Value-that-never-shows"


def _put(vault: Vault, mount: str, path: str, data: dict[str, Any]) -> None:
    vault.root().secrets.kv.v2.create_or_update_secret(path=path, secret=data, mount_point=mount)


def record_error(store: VaultStore, ref: LayerRef = PROJECT) -> VaultRecordError:
    with pytest.raises(VaultRecordError) as info:
        store.list_variables(ref)
    return info.value


# --- disagreements -------------------------------------------------------------------------------


def test_disagreement_null_key_is_blank(vault: Vault, mount: str, make_store: Callable[..., VaultStore]) -> None:
    """``"key": null``: Vault records said the key was missing, the settings file that it must be
    a string; GitLab (``key.to_s.strip``) says it can't be blank."""
    _put(vault, mount, "projects/acme/app", {"variables": [{"key": None, "value": "v"}]})
    error = record_error(make_store())
    assert str(error) == f"vault:{mount}/projects/acme/app: variable #1: Validation failed: Key can't be blank"
    assert (error.key, error.field) == (None, "key")


def test_disagreement_numbers_in_text_fields(vault: Vault, mount: str, make_store: Callable[..., VaultStore]) -> None:
    """Numbers as key, scope or description: the settings file took them as text, Vault records
    refused them; GitLab stringifies them (``to_s``)."""
    records = [
        {"key": 123, "value": "a"},
        {"key": "SCOPED", "value": "b", "environment_scope": 5, "description": 7},
    ]
    _put(vault, mount, "projects/acme/app", {"variables": records})
    store = make_store()
    loaded = store.list_variables(PROJECT)
    assert [(v.key, v.environment_scope, v.description) for v in loaded] == [("123", "*", None), ("SCOPED", "5", "7")]
    assert make_store().unset_variable(PROJECT, "123")  # found by the same reading of its key
    assert [v.key for v in make_store().list_variables(PROJECT)] == ["SCOPED"]


def test_disagreement_value_kind_message(vault: Vault, mount: str, make_store: Callable[..., VaultStore]) -> None:
    """A float as value: Vault records said 'not a number', the settings file 'not a float (quote it)'."""
    _put(vault, mount, "projects/acme/app", {"variables": [{"key": "F", "value": 1.5}]})
    error = record_error(make_store())
    assert error.message == "variable 'F': 'value' must be a string, not a float (quote it)"
    assert (error.key, error.field) == ("F", "value")


def test_disagreement_variable_type_message(vault: Vault, mount: str, make_store: Callable[..., VaultStore]) -> None:
    """A list as ``variable_type``: Vault records said 'must be a string', the settings file
    'must be a string (env_var or file)'."""
    _put(vault, mount, "projects/acme/app", {"variables": [{"key": "T", "value": "v", "variable_type": ["file"]}]})
    assert record_error(make_store()).message == "variable 'T': 'variable_type' must be a string (env_var or file)"


def test_disagreement_instance_scope_on_set(vault: Vault, mount: str, make_store: Callable[..., VaultStore]) -> None:
    """``set`` of an instance variable with a malformed scope: the store complained about the
    scope's characters, its records (and the settings file) that an instance variable has no scope."""
    with pytest.raises(VariableValidationError) as info:
        make_store().set_variable(INSTANCE, Variable("K", "v", environment_scope="a|b"))
    assert info.value.message == "instance variables cannot have an environment scope (GitLab's are not scoped)"
    _put(vault, mount, "instance", {"variables": [{"key": "K", "value": "v", "environment_scope": "a|b"}]})
    assert record_error(make_store(), INSTANCE).message == f"variable 'K': {info.value.message}"


def test_disagreement_scope_before_value_in_records(
    vault: Vault, mount: str, make_store: Callable[..., VaultStore]
) -> None:
    """A bad scope and an unmaskable value: ``set`` reported the scope, the records the value."""
    with pytest.raises(VariableValidationError) as info:
        make_store().set_variable(PROJECT, Variable("K", "short", masked=True, environment_scope="a|b"))
    record = {"key": "K", "value": "short", "masked": True, "environment_scope": "a|b"}
    _put(vault, mount, "projects/acme/app", {"variables": [record]})
    error = record_error(make_store())
    assert error.message == f"variable 'K': {info.value.message}"
    assert error.field == info.value.field == "environment_scope"


# --- misuse: one located message from every front end --------------------------------------------

MISUSES = [
    pytest.param(
        "instance",
        {"key": "BIG", "value": "x" * 10_001},
        ["BIG", "x" * 10_001],
        "variable 'BIG': Validation failed: Value of 'BIG' is too long (maximum is 10000 characters)",
        id="value-over-the-size-bound",
    ),
    pytest.param(
        "project:acme/app",
        {"key": "TOKEN", "value": f"{SECRET} x", "masked": True},
        ["TOKEN", f"{SECRET} x", "--masked"],
        "variable 'TOKEN': Validation failed: Value of variable 'TOKEN' cannot be masked: must be a single line "
        "with no spaces",
        id="masked-value-that-cannot-be-masked",
    ),
    pytest.param(
        "project:acme/app",
        {"key": "API-TOKEN", "value": SECRET},
        ["API-TOKEN", SECRET],
        "variable 'API-TOKEN': Validation failed: Key can contain only letters, digits and '_'.",
        id="key-with-bad-characters",
    ),
    pytest.param(
        "project:acme/app",
        {"key": "TOKEN", "value": SECRET, "hidden": True},
        ["TOKEN", SECRET, "--hidden"],
        "variable 'TOKEN': Validation failed: Masked of 'TOKEN' should be true when variable is hidden",
        id="hidden-but-not-masked",
    ),
]


@pytest.mark.parametrize(("layer", "record", "argv", "message"), MISUSES)
def test_misuse_same_located_message_from_vault_records_and_the_cli_on_vault(
    vault: Vault,
    mount: str,
    make_store: Callable[..., VaultStore],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    layer: str,
    record: dict[str, Any],
    argv: list[str],
    message: str,
) -> None:
    ref = LayerRef.parse(layer)
    path = "instance" if ref.kind == "instance" else "projects/acme/app"
    # The CLI with CIVaultBackend configured: the store is this OpenBao mount.
    monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND", "airflow_ci_vars.secrets.vault.CIVaultBackend")
    kwargs = {"url": vault.url, "auth_type": "token", "token": vault.root_token, "ci_mount_point": mount}
    monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND_KWARGS", json.dumps(kwargs))
    code = main(["variables", "set", *argv, "--layer", layer])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    assert err.startswith(f"{layer} {message}") and err.count("\n") == 1
    assert make_store().list_variables(ref) == ()  # nothing was written
    # The same record written to Vault by someone else is refused when read, with the same message.
    _put(vault, mount, path, {"variables": [record]})
    error = record_error(make_store(), ref)
    assert str(error).startswith(f"vault:{mount}/{path}: {message}")
    for shown in (err, str(error), repr(error.args)):
        assert record["value"] not in shown and SECRET not in shown
