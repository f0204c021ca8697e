"""Key rules (spec §1.6) and CircleCI parameter names (seed 000)."""

from __future__ import annotations

import pytest

from airflow_ci_vars import KeyValidationError, VariableValidationError
from airflow_ci_vars.variables.keys import validate_environment_scope, validate_key, validate_parameter_name


@pytest.mark.parametrize("key", ["A", "a_b", "1VAR", "_", "X" * 255, "CI_JOB_TOKEN"])
def test_valid_keys(key: str) -> None:
    assert validate_key(key) == key


def test_key_is_stripped_before_validation() -> None:
    assert validate_key("  KEY1 ") == "KEY1"


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "Validation failed: Key can't be blank"),
        ("   ", "Validation failed: Key can't be blank"),
        ("K E Y", "Validation failed: Key can contain only letters, digits and '_'."),
        ("🛹", "Validation failed: Key can contain only letters, digits and '_'."),
        ("export KEY", "Validation failed: Key can contain only letters, digits and '_'."),
        ("a-b", "Validation failed: Key can contain only letters, digits and '_'."),
        ("X" * 256, "Validation failed: Key is too long (maximum is 255 characters)"),
    ],
)
def test_invalid_keys_get_gitlab_messages(key: str, message: str) -> None:
    with pytest.raises(KeyValidationError) as err:
        validate_key(key)
    assert str(err.value) == message


@pytest.mark.parametrize("name", ["param1", "_x", "P_2"])
def test_valid_parameter_names(name: str) -> None:
    assert validate_parameter_name(name) == name


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "at least one character"),
        ("1abc", "must not begin with a number"),
        ("a-b", "only ASCII"),
        ("é", "only ASCII"),
    ],
)
def test_invalid_parameter_names_are_named_in_the_error(name: str, why: str) -> None:
    with pytest.raises(KeyValidationError, match=why) as err:
        validate_parameter_name(name)
    assert repr(name) in str(err.value)


@pytest.mark.parametrize("scope", ["*", "production", "review/*", "review/${CI_COMMIT_REF_SLUG}", "a b.c-d_e"])
def test_valid_environment_scopes(scope: str) -> None:
    assert validate_environment_scope(scope) == scope


@pytest.mark.parametrize("scope", ["", "review?", "a#b", "prod|dev"])
def test_invalid_environment_scopes(scope: str) -> None:
    with pytest.raises(VariableValidationError, match="Environment scope"):
        validate_environment_scope(scope)
