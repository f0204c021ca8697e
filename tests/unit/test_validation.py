"""Rules for saving a stored variable (spec §1.6, §2, §4.1, §4.2)."""

from __future__ import annotations

import pytest

from airflow_ci_vars import KeyValidationError, Layer, MaskabilityError, Variable, VariableValidationError
from airflow_ci_vars.variables.validation import validate_variable


def test_valid_variable_is_returned_stripped() -> None:
    v = validate_variable(Variable(" KEY ", "v", environment_scope=" review/* "))
    assert (v.key, v.environment_scope) == ("KEY", "review/*")


def test_bad_key_is_refused() -> None:
    with pytest.raises(KeyValidationError, match="can contain only letters"):
        validate_variable(Variable("BAD-KEY", "v"))


def test_hidden_requires_masked() -> None:
    with pytest.raises(VariableValidationError, match="should be true when variable is hidden") as err:
        validate_variable(Variable("K", "longenough", hidden=True))
    assert err.value.key == "K" and err.value.field == "hidden"


def test_masked_value_must_be_maskable_and_error_hides_value() -> None:
    with pytest.raises(MaskabilityError) as err:
        validate_variable(Variable("K", "short", masked=True))
    assert "short" not in str(err.value)
    assert "'K'" in str(err.value)


def test_raw_masked_value_allows_symbols() -> None:
    assert validate_variable(Variable("K", "HelloWorld%#^", masked=True, raw=True)).masked
    with pytest.raises(MaskabilityError):
        validate_variable(Variable("K", "HelloWorld%#^", masked=True))


def test_instance_value_limit() -> None:
    validate_variable(Variable("K", "x" * 10_000), layer=Layer.INSTANCE)
    with pytest.raises(VariableValidationError, match="maximum is 10000"):
        validate_variable(Variable("K", "x" * 10_001), layer=Layer.INSTANCE)
    validate_variable(Variable("K", "x" * 10_001), layer=Layer.PROJECT)


def test_bad_scope_and_type_are_refused() -> None:
    with pytest.raises(VariableValidationError, match="Environment scope"):
        validate_variable(Variable("K", "v", environment_scope="a|b"))
    with pytest.raises(VariableValidationError, match="Variable type"):
        validate_variable(Variable("K", "v", variable_type="dir"))  # type: ignore[arg-type]


def test_every_save_rule_is_here_description_text_and_instance_scope() -> None:
    """The rules the stores and the settings parser used to add on their own live here too."""
    with pytest.raises(VariableValidationError, match=r"Description is too long \(maximum is 255 characters\)"):
        validate_variable(Variable("K", "v", description="d" * 256))
    with pytest.raises(VariableValidationError, match="Value of 'K' is not valid UTF-8 text") as err:
        validate_variable(Variable("K", "a\udc80b"))
    assert err.value.field == "value"
    with pytest.raises(VariableValidationError, match="instance variables cannot have an environment scope"):
        validate_variable(Variable("K", "v", environment_scope="production"), layer=Layer.INSTANCE)
    assert validate_variable(Variable("K", "v", environment_scope=" * "), layer=Layer.INSTANCE).environment_scope == "*"
