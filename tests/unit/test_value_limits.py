"""Bounds on expanded values and on a job's environment (airflow_ci_vars.variables.limits)."""

from __future__ import annotations

import pickle

import pytest

from airflow_ci_vars.errors import EnvironmentSizeError, ExpansionError
from airflow_ci_vars.variables import Variable
from airflow_ci_vars.variables.expansion import expand_value, runner_expand, sort_and_expand
from airflow_ci_vars.variables.limits import (
    ENVIRONMENT_MARGIN,
    MAX_ARG_STRLEN,
    MAX_EXPANDED_TOTAL,
    MAX_EXPANDED_VALUE,
    check_environment,
)


def test_a_value_of_exactly_the_limit_expands() -> None:
    half = "x" * (MAX_EXPANDED_VALUE // 2)
    out = {v.key: v.value for v in sort_and_expand({"H": half, "FULL": "$H$H"})}
    assert len(out["FULL"]) == MAX_EXPANDED_VALUE


def test_one_character_more_is_refused_naming_the_key() -> None:
    half = "x" * (MAX_EXPANDED_VALUE // 2)
    with pytest.raises(ExpansionError) as info:
        sort_and_expand({"H": half, "OVER": "$H$H!"})
    assert (info.value.key, info.value.limit) == ("OVER", MAX_EXPANDED_VALUE)
    assert str(info.value).startswith("variable OVER: its expanded value would exceed 1048576 characters")
    assert "xxx" not in str(info.value)


def test_the_total_of_one_expansion_is_bounded() -> None:
    chunk = "y" * (MAX_EXPANDED_VALUE // 2)
    count = MAX_EXPANDED_TOTAL // len(chunk) + 1
    variables = {"C": chunk, **{f"V{i}": "$C" for i in range(count)}}
    with pytest.raises(ExpansionError) as info:
        sort_and_expand(variables)
    assert info.value.key == f"V{count - 1}" and info.value.limit == MAX_EXPANDED_TOTAL
    assert "together" in info.value.message


def test_runner_pass_and_keyword_expansion_are_bounded_too() -> None:
    raw = Variable("R", "r" * 1000, raw=True)
    with pytest.raises(ExpansionError) as info:
        runner_expand([raw, Variable("MANY", "$R" * 2000)])
    assert info.value.key == "MANY"
    with pytest.raises(ExpansionError, match="variable environment:name: its expanded value would exceed"):
        expand_value("$R" * 2000, [raw], key="environment:name")


def test_expansion_errors_pickle_with_their_key() -> None:
    err = pickle.loads(pickle.dumps(ExpansionError("m", key="K", limit=3, cycles=[["A", "B"]])))
    assert (err.key, err.limit, err.cycles) == ("K", 3, (("A", "B"),))


def test_one_environment_string_at_linux_limit() -> None:
    key = "K"
    fits = "v" * (MAX_ARG_STRLEN - len(key) - 2)  # K=VALUE and the NUL: exactly MAX_ARG_STRLEN
    check_environment({key: fits}, arg_max=1 << 21)
    with pytest.raises(EnvironmentSizeError) as info:
        check_environment({key: fits + "v", "SMALL": "1"}, arg_max=1 << 21)
    assert info.value.keys == ("K",) and info.value.limit == MAX_ARG_STRLEN
    assert "file-type variable" in str(info.value) and "vvv" not in str(info.value)


def test_value_size_is_counted_in_utf8_bytes() -> None:
    with pytest.raises(EnvironmentSizeError):
        check_environment({"K": "é" * (MAX_ARG_STRLEN // 2)}, arg_max=1 << 21)


def test_the_total_against_arg_max_less_the_margin_names_the_largest() -> None:
    env = {f"V{i}": "z" * 100_000 for i in range(3)} | {"TINY": "t"}
    arg_max = ENVIRONMENT_MARGIN + 250_000
    with pytest.raises(EnvironmentSizeError) as info:
        check_environment(env, arg_max=arg_max)
    assert info.value.limit == 250_000
    assert info.value.keys[:3] == ("V0", "V1", "V2") and "TINY" in info.value.keys
    assert "over the limit of 250000 bytes (ARG_MAX less 65536" in str(info.value)
    check_environment(env, arg_max=ENVIRONMENT_MARGIN + 400_000)


def test_environment_errors_pickle() -> None:
    err = pickle.loads(pickle.dumps(EnvironmentSizeError("m", keys=["A"], limit=5)))
    assert (err.keys, err.limit, err.message) == (("A",), 5, "m")
