"""YAML variables: stringification, hash form, inherit:variables, variables: {} (spec §1.3, seed 001)."""

from __future__ import annotations

import pytest
import yaml

from airflow_ci_vars import Layer, VariableValidationError
from airflow_ci_vars.variables.yaml_values import merge_yaml_variables, yaml_value_to_string, yaml_variables


def load(text: str) -> dict[str, object]:
    data = yaml.load(text, Loader=yaml.CSafeLoader)
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("VAR1: 012345", "5349"),  # YAML 1.1 octal, as Psych does (GitLab docs example)
        ('VAR1: "012345"', "012345"),
        ("VAR1: 8080", "8080"),
        ("VAR1: 0x1F", "31"),
        ("VAR1: 1_000", "1000"),
        ("VAR1:", ""),
        ("VAR1: null", ""),
        ("VAR1: hello world", "hello world"),
    ],
)
def test_yaml_values_are_stringified_like_gitlab(yaml_text: str, expected: str) -> None:
    assert yaml_value_to_string(load(yaml_text)["VAR1"], key="VAR1") == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "true"),
        (False, "false"),
        (1.5, "1.5"),
        (1.0, "1.0"),
        (-0.25, "-0.25"),
        (0.0001, "0.0001"),
        (1e-05, "1.0e-05"),  # Ruby's Float#to_s: an exponent below 1e-4, always with a fraction
        (1e15, "1000000000000000.0"),
        (1e16, "1.0e+16"),
        (2.5e20, "2.5e+20"),
        (float("inf"), "Infinity"),
        (float("nan"), "NaN"),
    ],
)
def test_boolean_and_float_values_are_stringified_like_ruby(value: object, expected: str) -> None:
    # GitLab's SimpleVariable takes any scalar (ScalarValidator) and keeps its Ruby to_s.
    (v,) = yaml_variables({"VAR1": value})
    assert v.value == expected
    (hashed,) = yaml_variables({"VAR1": {"value": value}})
    assert hashed.value == expected


@pytest.mark.parametrize("value", [["a", "b"], {"x": {"y": 1}}, {}])
def test_list_and_nested_mapping_values_are_refused(value: object) -> None:
    with pytest.raises(
        VariableValidationError, match="variables:VAR1 variable definition must be either a string or a hash"
    ):
        yaml_variables({"VAR1": {"value": value}} if isinstance(value, dict) else {"VAR1": value})


def test_hash_form_expand_false_makes_raw() -> None:
    (v,) = yaml_variables({"PW": {"value": "pa$$", "expand": False, "description": "a password"}})
    assert v.raw and v.value == "pa$$" and v.description == "a password"


def test_hash_form_unknown_key_is_refused() -> None:
    with pytest.raises(VariableValidationError, match="uses invalid data keys: colour"):
        yaml_variables({"X": {"value": "1", "colour": "red"}})


def test_yaml_variables_carry_their_layer() -> None:
    (v,) = yaml_variables({"A": "1"}, layer=Layer.DEFAULT)
    assert v.source is not None and v.source.layer is Layer.DEFAULT


DEFAULTS = yaml_variables({"ALL_JOBS_VAR": "A default variable", "OTHER": "o"}, layer=Layer.DEFAULT)


def as_dict(vs: list) -> dict[str, str]:  # type: ignore[type-arg]
    return {v.key: v.value for v in vs}


def test_job_variable_overrides_default() -> None:
    job = yaml_variables({"ALL_JOBS_VAR": "Different value than default", "JOB2_VAR": "Job 2 variable"})
    assert as_dict(merge_yaml_variables(DEFAULTS, job)) == {
        "ALL_JOBS_VAR": "Different value than default",
        "JOB2_VAR": "Job 2 variable",
        "OTHER": "o",
    }


def test_job_without_variables_keyword_inherits_defaults() -> None:
    assert as_dict(merge_yaml_variables(DEFAULTS, None)) == {"ALL_JOBS_VAR": "A default variable", "OTHER": "o"}


def test_empty_job_variables_drop_defaults() -> None:
    # Seed 001 "Skip default variables in a single job" wins over GitLab's code.
    assert merge_yaml_variables(DEFAULTS, []) == []


@pytest.mark.parametrize(
    ("inherit", "expected"),
    [(True, {"ALL_JOBS_VAR", "OTHER"}), (False, set()), (["OTHER"], {"OTHER"}), ([], set())],
)
def test_inherit_variables(inherit: bool | list[str], expected: set[str]) -> None:
    assert set(as_dict(merge_yaml_variables(DEFAULTS, None, inherit=inherit))) == expected


def test_inherit_variables_must_be_bool_or_list_of_strings() -> None:
    with pytest.raises(VariableValidationError, match="should be a bool or array of strings"):
        merge_yaml_variables(DEFAULTS, None, inherit=[1])  # type: ignore[list-item]


def test_rules_variables_override_job_variables() -> None:
    job = yaml_variables({"DEPLOY": "no"})
    rules = yaml_variables({"DEPLOY": "yes"})
    assert as_dict(merge_yaml_variables(DEFAULTS, job, rules=rules))["DEPLOY"] == "yes"
