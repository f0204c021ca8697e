"""Pipeline variables from a REST conf: GitLab ``variables`` and CircleCI ``build_parameters``."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from airflow_ci_vars.errors import ParameterError
from airflow_ci_vars.parameters import (
    BUILD_PARAMETERS_SOURCE,
    VARIABLES_SOURCE,
    build_parameter_text,
    pipeline_variables,
)
from airflow_ci_vars.variables.model import Layer, VariableSource


def as_dict(conf: Mapping[str, object] | None) -> dict[str, str]:
    return {v.key: v.value for v in pipeline_variables(conf)}


def error_of(conf: Mapping[str, object]) -> ParameterError:
    with pytest.raises(ParameterError) as info:
        pipeline_variables(conf)
    return info.value


# --- empty and ignored ------------------------------------------------------------------


@pytest.mark.parametrize("conf", [None, {}, {"ref": "main", "sha": "abc"}, {"variables": None}])
def test_no_variables(conf: Mapping[str, object] | None) -> None:
    assert pipeline_variables(conf) == []


def test_other_conf_keys_are_ignored() -> None:
    assert as_dict({"ref": "main", "variables": {"A": "1"}}) == {"A": "1"}


def test_conf_must_be_a_mapping() -> None:
    assert error_of(["A"]).names == ("conf",)  # type: ignore[arg-type]


# --- GitLab mapping form ----------------------------------------------------------------


def test_gitlab_mapping_form() -> None:
    variables = pipeline_variables({"variables": {"A": "1", "B": "two"}})
    assert [(v.key, v.value, v.raw, v.variable_type) for v in variables] == [
        ("A", "1", False, "env_var"),
        ("B", "two", False, "env_var"),
    ]
    assert {v.source for v in variables} == {VariableSource(Layer.PIPELINE, "conf:variables")}


def test_gitlab_numbers_become_text() -> None:
    assert as_dict({"variables": {"I": 5, "F": 1.5, "Z": 0}}) == {"I": "5", "F": "1.5", "Z": "0"}


@pytest.mark.parametrize(
    ("value", "kind"),
    [(True, "a boolean"), (None, "null"), ([1], "a list"), ({"a": 1}, "an object"), (float("nan"), "a float")],
)
def test_gitlab_non_scalar_values_are_refused_naming_the_key(value: object, kind: str) -> None:
    err = error_of({"variables": {"GOOD": "x", "BAD": value}})
    assert err.names == ("BAD",)
    assert f"value must be a string or a number, not {kind}" in err.message


def test_gitlab_keys_may_start_with_a_digit() -> None:
    assert as_dict({"variables": {"1VAR": "x"}}) == {"1VAR": "x"}


def test_gitlab_keys_are_stripped() -> None:
    assert as_dict({"variables": {" A\t": "x"}}) == {"A": "x"}


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("A-B", "Key can contain only letters, digits and '_'."),
        ("A B", "Key can contain only letters, digits and '_'."),
        ("\u00a0A", "Key can contain only letters, digits and '_'."),
        ("É", "Key can contain only letters, digits and '_'."),
        ("", "Key can't be blank"),
        ("  ", "Key can't be blank"),
        ("K" * 256, "Key is too long (maximum is 255 characters)"),
    ],
)
def test_gitlab_key_rules(key: str, reason: str) -> None:
    err = error_of({"variables": {key: "x"}})
    assert reason in err.message
    assert err.names == (key,)


def test_gitlab_key_of_255_characters_is_accepted() -> None:
    assert as_dict({"variables": {"K" * 255: "x"}}) == {"K" * 255: "x"}


def test_gitlab_non_string_key_is_refused() -> None:
    err = error_of({"variables": {5: "x"}})
    assert "key must be a string" in err.message
    assert err.names == ("5",)


def test_gitlab_value_length_limit() -> None:
    class Long(str):
        def __len__(self) -> int:
            return 500_000_001

    err = error_of({"variables": {"BIG": Long("x")}})
    assert "value is too long (maximum is 500000000 characters)" in err.message
    assert err.names == ("BIG",)


def test_gitlab_mapping_keys_equal_after_strip_are_duplicates() -> None:
    err = error_of({"variables": {"A": "1", "A ": "2"}})
    assert err.message == "Duplicate variable name: A"


# --- GitLab list form -------------------------------------------------------------------


def test_gitlab_list_form() -> None:
    variables = pipeline_variables(
        {
            "variables": [
                {"key": "A", "value": "1"},
                {"key": "CERT", "value": "pem", "variable_type": "file"},
                {"key": "R", "value": "$X", "variable_type": "env_var", "raw": True},
            ]
        }
    )
    assert [(v.key, v.value, v.variable_type, v.raw) for v in variables] == [
        ("A", "1", "env_var", False),
        ("CERT", "pem", "file", False),
        ("R", "$X", "env_var", True),
    ]
    assert {v.source for v in variables} == {VARIABLES_SOURCE}


def test_duplicate_variable_name_exact_gitlab_wording() -> None:
    err = error_of({"variables": [{"key": "A", "value": "1"}, {"key": "A", "value": "2"}]})
    assert err.message == "Duplicate variable name: A"
    assert err.names == ("A",)


def test_duplicate_variable_names_plural_exact_gitlab_wording() -> None:
    items = [{"key": k, "value": "v"} for k in ["A", "B", "A", "C", "B"]]
    err = error_of({"variables": items})
    assert err.message == "Duplicate variable names: A, B"
    assert err.names == ("A", "B")


def test_unknown_item_field_names_the_index_and_field() -> None:
    err = error_of({"variables": [{"key": "A", "value": "1"}, {"key": "B", "value": "2", "masked": True}]})
    assert "variables[1]" in err.message
    assert "'masked'" in err.message
    assert err.names == ("B",)


@pytest.mark.parametrize("missing", ["key", "value"])
def test_item_needs_key_and_value(missing: str) -> None:
    item = {"key": "A", "value": "1"}
    del item[missing]
    err = error_of({"variables": [item]})
    assert "variables[0]" in err.message
    assert f"missing '{missing}'" in err.message


def test_item_must_be_an_object() -> None:
    err = error_of({"variables": ["A=1"]})
    assert err.names == ("variables[0]",)
    assert "must be an object" in err.message


def test_variable_type_must_be_env_var_or_file() -> None:
    err = error_of({"variables": [{"key": "A", "value": "1", "variable_type": "secret"}]})
    assert "variable_type must be 'env_var' or 'file'" in err.message
    assert err.names == ("A",)


def test_raw_must_be_a_boolean() -> None:
    err = error_of({"variables": [{"key": "A", "value": "1", "raw": "yes"}]})
    assert "raw must be true or false" in err.message


@pytest.mark.parametrize("variables", ["A=1", 5, True])
def test_variables_of_another_shape_are_refused(variables: object) -> None:
    err = error_of({"variables": variables})
    assert err.names == ("variables",)
    assert "conf['variables'] must be an object" in err.message


# --- every bad name at once -------------------------------------------------------------


def test_every_bad_name_is_listed_at_once() -> None:
    err = error_of(
        {
            "variables": [
                {"key": "OK", "value": "1"},
                {"key": "BAD-1", "value": "1"},
                {"key": "BAD_VALUE", "value": None},
                {"key": "BAD 2", "value": "1"},
                {"key": "TYPE", "value": "1", "variable_type": "nope"},
            ],
            "build_parameters": {"1param": "x", "fine": "y", "with-dash": "z"},
        }
    )
    assert err.names == ("BAD-1", "BAD_VALUE", "BAD 2", "TYPE", "1param", "with-dash")
    for name in err.names:
        assert repr(name) in err.message


def test_duplicates_and_other_problems_are_reported_together() -> None:
    err = error_of({"variables": [{"key": "A", "value": "1"}, {"key": "A", "value": "2"}, {"key": "B-", "value": ""}]})
    assert err.message.startswith("Duplicate variable name: A; Invalid pipeline variables: ")
    assert err.names == ("A", "B-")


def test_errors_never_echo_values() -> None:
    secret = "s3cr3t-value"
    err = error_of(
        {
            "variables": [
                {"key": "A B", "value": secret},
                {"key": "C", "value": secret, "variable_type": "x", "extra": secret},
                {"key": "C", "value": secret},
            ],
            "build_parameters": {"bad-name": secret, "ok": {secret: float("inf")}},
        }
    )
    assert secret not in err.message
    assert all(secret not in name for name in err.names)


# --- CircleCI build_parameters (seed 000) -----------------------------------------------


def test_circleci_seed_example() -> None:
    conf = {
        "build_parameters": {
            "foo": "bar",
            "baz": 5,
            "qux": {"quux": 1},
            "list": ["a", "list", "of", "strings"],
        }
    }
    assert as_dict(conf) == {
        "foo": "bar",
        "baz": "5",
        "qux": '{"quux": 1}',
        "list": '["a", "list", "of", "strings"]',
    }


def test_circleci_trigger_example() -> None:
    assert as_dict({"build_parameters": {"param1": "value1", "param2": 500}}) == {
        "param1": "value1",
        "param2": "500",
    }


def test_build_parameters_are_raw_pipeline_variables() -> None:
    variables = pipeline_variables({"build_parameters": {"A": "$B", "B": "x"}})
    assert [(v.key, v.value, v.raw) for v in variables] == [("A", "$B", True), ("B", "x", True)]
    assert {v.source for v in variables} == {VariableSource(Layer.PIPELINE, "conf:build_parameters")}
    assert BUILD_PARAMETERS_SOURCE.name == "conf:build_parameters"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("bar", "bar"),
        (5, "5"),
        (-2, "-2"),
        (1.5, "1.5"),
        (True, "true"),
        (False, "false"),
        (None, ""),
        ({"quux": 1}, '{"quux": 1}'),
        ({"a": [1, {"b": None}]}, '{"a": [1, {"b": null}]}'),
        (["é", 'q"'], '["é", "q\\""]'),
        ([], "[]"),
    ],
)
def test_build_parameter_text(value: object, text: str) -> None:
    assert build_parameter_text(value) == text


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {1, 2}, object()])
def test_build_parameter_value_must_be_json_data(value: object) -> None:
    err = error_of({"build_parameters": {"p": value}})
    assert err.names == ("p",)
    assert "value must be JSON data" in err.message


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("1abc", "must not begin with a number"),
        ("", "must contain at least one character"),
        ("a-b", "must contain only ASCII letters, digits and the underscore character"),
        ("é", "must contain only ASCII letters, digits and the underscore character"),
        ("a b", "must contain only ASCII letters, digits and the underscore character"),
        ("p" * 256, "is too long (maximum is 255 characters)"),
    ],
)
def test_build_parameter_name_rules(name: str, reason: str) -> None:
    err = error_of({"build_parameters": {name: "x"}})
    assert reason in err.message
    assert err.names == (name,)


@pytest.mark.parametrize("name", ["_", "a", "_1", "camelCase", "UPPER_9"])
def test_build_parameter_valid_names(name: str) -> None:
    assert as_dict({"build_parameters": {name: "x"}}) == {name: "x"}


def test_build_parameters_must_be_a_mapping() -> None:
    err = error_of({"build_parameters": [["a", "b"]]})
    assert err.names == ("build_parameters",)


# --- both forms -------------------------------------------------------------------------


def test_both_forms_are_accepted_variables_first() -> None:
    variables = pipeline_variables({"build_parameters": {"p": 1}, "variables": {"V": "x"}})
    assert [(v.key, v.source) for v in variables] == [
        ("V", VARIABLES_SOURCE),
        ("p", BUILD_PARAMETERS_SOURCE),
    ]


def test_same_name_in_both_forms_is_a_duplicate() -> None:
    err = error_of({"variables": {"A": "1"}, "build_parameters": {"A": "2"}})
    assert err.message == "Duplicate variable name: A"
    assert err.names == ("A",)


def test_no_variables_at_all_on_error() -> None:
    with pytest.raises(ParameterError):
        pipeline_variables({"variables": {"GOOD": "1"}, "build_parameters": {"0bad": "2"}})


def test_non_string_key_in_an_item_is_named_by_index() -> None:
    err = error_of({"variables": [{"key": None, "value": "1"}]})
    assert err.names == ("variables[0]",)
    assert "key must be a string, not null" in err.message
