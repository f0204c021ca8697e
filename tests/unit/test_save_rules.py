"""One set of save rules (``variables.validation``) behind every front end: the CLI, the settings file.

The Vault store's records and the CLI on Vault: ``tests/vault/test_vault_save_rules.py``. Each
``test_disagreement_*`` pins a case where two copies of a rule disagreed before the rules lived in
one module; it fails on the code before that change.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from airflow_ci_vars.cli import main
from airflow_ci_vars.errors import KeyValidationError, MaskabilityError, VariableValidationError
from airflow_ci_vars.variables.model import Layer, Variable, VariableSource
from airflow_ci_vars.variables.validation import (
    LAYER_LIMITS,
    check_save,
    json_raw,
    read_variable,
    yaml_raw,
)

from test_settings import error_of, project_vars  # isort: skip  # the settings file's helpers

SECRET = "s3cret-Value-that-never-shows"


@pytest.fixture(autouse=True)
def file_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CIVaultBackend: ``--settings`` picks the file store."""
    monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND", "")
    monkeypatch.delenv("AIRFLOW__CI_VARS__SETTINGS_FILE", raising=False)


def cli_set(capsys: pytest.CaptureFixture[str], path: Path, layer: str, *argv: str) -> str:
    """``variables set`` that must fail: its one line of stderr."""
    code = main(["variables", "set", *argv, "--layer", layer, "--settings", str(path)])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    return err.rstrip("\n")


# --- the rules themselves ------------------------------------------------------------------------


def test_check_save_create_update_and_unknown_layer() -> None:
    hidden = Variable("H", "hidden-value-123", masked=True, hidden=True)
    stored = [Variable("A", "a"), hidden]
    checked, index = check_save(Variable(" NEW ", "v"), layer=Layer.PROJECT, current=stored)
    assert (checked.key, index) == ("NEW", None)
    checked, index = check_save(hidden, layer=Layer.PROJECT, current=stored)
    assert index == 1
    with pytest.raises(VariableValidationError, match="Updating hidden attribute"):
        check_save(Variable("A", "abcdefgh", masked=True, hidden=True), layer=Layer.PROJECT, current=stored)
    # Without the layer (the CLI before it opens a store) the create-or-update rules wait for the store.
    assert check_save(Variable("H", "v", hidden=True), layer=Layer.PROJECT, current=None)[1] is None
    with pytest.raises(VariableValidationError, match="should be true when variable is hidden"):
        check_save(Variable("H2", "v", hidden=True), layer=Layer.PROJECT, current=stored)


def test_layer_limit_counts_creates_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(LAYER_LIMITS, Layer.GROUP, 2)
    stored = [Variable("A", "a"), Variable("B", "b")]
    assert check_save(Variable("A", "new"), layer=Layer.GROUP, current=stored)[1] == 0
    with pytest.raises(VariableValidationError, match=r"^Maximum number of group ci variables \(2\) exceeded$"):
        check_save(Variable("C", "c"), layer=Layer.GROUP, current=stored)


@pytest.mark.parametrize(
    ("yaml_text", "json_value"),
    [("'x'", "x"), ("012", 10), ("1.5", 1.5), ("true", True), ("~", None), ("[a]", ["a"]), ("{a: 1}", {"a": 1})],
)
def test_both_adapters_give_the_rules_the_same_kinds(yaml_text: str, json_value: object) -> None:
    node = yaml.compose(f"v: {yaml_text}").value[0][1]
    assert yaml_raw(node).kind == json_raw(json_value).kind
    assert yaml_raw(node).what == json_raw(json_value).what


def test_read_variable_reports_every_field_type_then_the_first_rule() -> None:
    fields = {"key": json_raw("K"), "value": json_raw(1.5), "masked": json_raw("yes"), "colour": json_raw("red")}
    variable, problems = read_variable(fields, source=_source(), where="w", index=3)
    assert variable is None
    assert [str(p) for p in problems] == [
        "w variable 'K': unknown field 'colour'; allowed: key, value, variable_type, masked, hidden, protected, raw, "
        "environment_scope, description",
        "w variable 'K': 'value' must be a string, not a float (quote it)",
        "w variable 'K': 'masked' must be true or false",
    ]
    fields = {"key": json_raw("K"), "value": json_raw("short"), "masked": json_raw(True)}
    variable, problems = read_variable(fields, source=_source(), where="w", index=3)
    assert [(p.field, p.at) for p in problems] == [("masked", "value")]  # located at the value


def _source() -> VariableSource:
    return VariableSource(Layer.PROJECT, "g/p")


# --- disagreements between the copies, now one rule -------------------------------------------


def test_disagreement_instance_scope_before_scope_syntax(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An instance variable with a malformed scope: the settings file said it cannot be scoped,
    ``variables set`` (and both stores' ``set``) complained about the scope's characters."""
    err = cli_set(capsys, tmp_path / "settings.yml", "instance", "K", "v", "--scope", "a|b")
    assert err == "instance variable 'K': instance variables cannot have an environment scope (GitLab's are not scoped)"
    error = error_of("instance:\n  variables:\n    - {key: K, value: v, environment_scope: 'a|b'}\n")
    assert error.message.endswith(
        "variable 'K': instance variables cannot have an environment scope (GitLab's are not scoped)"
    )


def test_disagreement_key_before_instance_scope(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad key on a scoped instance variable: the settings file reported the scope, ``set`` the key."""
    error = error_of("instance:\n  variables:\n    - {key: BAD-KEY, value: v, environment_scope: prod}\n")
    assert (
        error.message == "instance variable 'BAD-KEY': Validation failed: Key can contain only letters, digits and '_'."
    )
    assert (error.line, error.field) == (3, "key")
    err = cli_set(capsys, tmp_path / "settings.yml", "instance", "BAD-KEY", "v", "--scope", "prod")
    assert err == "instance variable 'BAD-KEY': Validation failed: Key can contain only letters, digits and '_'."


def test_disagreement_scope_before_value_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad scope and an unmaskable value: the stores' ``set`` reported the scope, the settings
    file and ``variables set`` the value."""
    scope_message = (
        "variable 'K': Validation failed: Environment scope can contain only letters, digits, "
        "'-', '_', '/', '$', '{', '}', '.', '*' and spaces"
    )
    err = cli_set(capsys, tmp_path / "settings.yml", "project:g/p", "K", "short", "--masked", "--scope", "a|b")
    assert err == f"project:g/p {scope_message}"
    error = error_of(project_vars("{key: K, value: short, masked: true, environment_scope: 'a|b'}"))
    assert error.message == f"project g/p {scope_message}"
    assert error.field == "environment_scope"


def test_disagreement_description_last() -> None:
    """A bad key and a long description: the settings file reported only the description (the
    stores' ``set`` and the CLI report the key, the description's length is checked last)."""
    error = error_of(project_vars(f"{{key: BAD-KEY, value: v, description: {'d' * 256}}}"))
    assert (
        error.message
        == "project g/p variable 'BAD-KEY': Validation failed: Key can contain only letters, digits and '_'."
    )


def test_disagreement_null_key_is_blank() -> None:
    """``key: null``: the settings file said it must be a string, Vault records that it is
    missing; GitLab (``key.to_s.strip``) says the key can't be blank."""
    error = error_of(project_vars("{key: ~, value: v}"))
    assert error.message == "project g/p variable #1: Validation failed: Key can't be blank"
    assert (error.line, error.field) == (4, "key")


def test_disagreement_value_type_names_its_kind() -> None:
    """A list as value: Vault records named the kind, the settings file did not."""
    error = error_of(project_vars("{key: K, value: [a, b]}"))
    assert error.message == "project g/p variable 'K': 'value' must be a string, not a list"


def test_disagreement_flag_type_message() -> None:
    """A list as a flag: the settings file said 'must be a boolean (true or false)', Vault records
    'must be true or false'."""
    error = error_of(project_vars("{key: K, value: v, masked: [true]}"))
    assert error.message == "project g/p variable 'K': 'masked' must be true or false"


def test_disagreement_long_keys_are_shortened_in_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A long (valid) key in an error: the settings file and Vault shortened it, ``set`` did not."""
    key = "K" * 70
    err = cli_set(capsys, tmp_path / "settings.yml", "project:g/p", key, "short", "--masked")
    assert err.startswith(f"project:g/p variable '{'K' * 40}...': Validation failed: ")
    error = error_of(project_vars(f"{{key: {key}, value: short, masked: true}}"))
    assert error.message.startswith(f"project g/p variable '{'K' * 40}...': Validation failed: ")


# --- misuse: the same located message through the CLI and the settings file ----------------------

MISUSES = [
    pytest.param(
        "instance",
        "{key: BIG, value: " + "x" * 10_001 + "}",
        ["BIG", "x" * 10_001],
        "variable 'BIG': Validation failed: Value of 'BIG' is too long (maximum is 10000 characters)",
        VariableValidationError,
        id="value-over-the-size-bound",
    ),
    pytest.param(
        "project:g/p",
        f"{{key: TOKEN, value: '{SECRET} x', masked: true}}",
        ["TOKEN", f"{SECRET} x", "--masked"],
        "variable 'TOKEN': Validation failed: Value of variable 'TOKEN' cannot be masked: must be a single line "
        "with no spaces",
        MaskabilityError,
        id="masked-value-that-cannot-be-masked",
    ),
    pytest.param(
        "project:g/p",
        f"{{key: 'API-TOKEN', value: {SECRET}}}",
        ["API-TOKEN", SECRET],
        "variable 'API-TOKEN': Validation failed: Key can contain only letters, digits and '_'.",
        KeyValidationError,
        id="key-with-bad-characters",
    ),
    pytest.param(
        "project:g/p",
        f"{{key: TOKEN, value: {SECRET}, hidden: true}}",
        ["TOKEN", SECRET, "--hidden"],
        "variable 'TOKEN': Validation failed: Masked of 'TOKEN' should be true when variable is hidden",
        VariableValidationError,
        id="hidden-but-not-masked",
    ),
]


@pytest.mark.parametrize(("layer", "record", "argv", "message", "error_type"), MISUSES)
def test_misuse_same_located_message_from_cli_and_settings_file(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    layer: str,
    record: str,
    argv: list[str],
    message: str,
    error_type: type[Exception],
) -> None:
    value = argv[1]
    text = "instance:\n  variables:\n" if layer == "instance" else "projects:\n  g/p:\n    variables:\n"
    text += f"{'  ' if layer == 'instance' else '    '}  - {record}\n"
    error = error_of(text)
    where = "instance" if layer == "instance" else "project g/p"
    assert str(error).startswith(f"settings.yml:{3 if layer == 'instance' else 4}: {where} {message}")
    err = cli_set(capsys, tmp_path / "settings.yml", layer, *argv)
    assert err.startswith(f"{layer} {message}")
    assert not (tmp_path / "settings.yml").exists()  # refused before anything was written
    for shown in (str(error), err):
        assert value not in shown and SECRET not in shown
    # The rules raise the typed error the front ends render.
    with pytest.raises(error_type):
        check_save(
            Variable(argv[0], value, masked="--masked" in argv, hidden="--hidden" in argv),
            layer=Layer.INSTANCE if layer == "instance" else Layer.PROJECT,
            current=[],
        )
