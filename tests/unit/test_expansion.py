"""Expansion rules: Rails sort_and_expand_all, ExpandVariables, and the runner's os.Expand pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_ci_vars import ExpansionError, Variable, expand_value, runner_expand, sort_and_expand
from airflow_ci_vars.variables.expansion import go_os_expand

DATA = Path(__file__).parent.parent / "data"


def values(variables: list[Variable]) -> dict[str, str]:
    return {v.key: v.value for v in variables}


# spec §3.1, runner-payload mode, A=x
@pytest.mark.parametrize(
    ("value", "payload", "default_mode"),
    [
        ("$A", "x", "x"),
        ("${A}", "x", "x"),
        ("%A%", "x", "x"),
        ("$$A", "$$A", "$$A"),
        ("$$$A", "$$x", "$$x"),
        ("$A$B", "x$B", "x"),
        ("a%b%c", "a%b%c", "ac"),
        ("${}", "${}", "${}"),
        ("$1A", "$1A", "$1A"),
        ("${A:-d}", "${A:-d}", "${A:-d}"),
        ("100%", "100%", "100%"),
        ("%A", "%A", "%A"),
        ("$A_B", "$A_B", ""),
    ],
)
def test_sort_and_expand_matches_gitlab_examples(value: str, payload: str, default_mode: str) -> None:
    got = sort_and_expand(
        [Variable("A", "x"), Variable("X", value)], keep_undefined=True, expand_file_refs=False, expand_raw_refs=False
    )
    assert values(got)["X"] == payload
    assert values(sort_and_expand([Variable("A", "x"), Variable("X", value)]))["X"] == default_mode


def test_nested_reference_resolves_to_final_precedence_value() -> None:
    got = sort_and_expand([Variable("A", "$B"), Variable("B", "yaml"), Variable("B", "proj")])
    assert values(got)["A"] == "proj"


def test_sort_and_expand_orders_dependencies_first() -> None:
    got = sort_and_expand({"C": "$B-c", "B": "$A-b", "A": "a"})
    assert [v.key for v in got] == ["A", "B", "C"]
    assert values(got) == {"A": "a", "B": "a-b", "C": "a-b-c"}


def test_cycle_is_refused_with_gitlab_message() -> None:
    with pytest.raises(ExpansionError) as err:
        sort_and_expand({"A": "$B", "B": "$A", "C": "ok"})
    assert str(err.value) == 'circular variable reference detected: ["A", "B"]'
    assert err.value.cycles == (("A", "B"),)


def test_two_cycles_are_all_reported() -> None:
    with pytest.raises(ExpansionError) as err:
        sort_and_expand({"A": "$B", "B": "$A", "C": "${D}", "D": "%C%"})
    assert str(err.value) == 'circular variable reference detected: ["A", "B"], ["C", "D"]'


def test_self_reference_is_not_a_cycle_and_uses_lower_definition() -> None:
    got = sort_and_expand([Variable("FOO", "base"), Variable("FOO", "$FOO-ext")])
    assert [v.value for v in got] == ["base", "base-ext"]


def test_lone_self_reference_is_kept_for_the_runner() -> None:
    got = sort_and_expand([Variable("PATH", "$PATH:/opt/bin")], keep_undefined=True)
    assert got[0].value == "$PATH:/opt/bin"


def test_raw_variable_is_never_expanded() -> None:
    got = sort_and_expand([Variable("A", "a"), Variable("R", "x-$A", raw=True)])
    assert values(got)["R"] == "x-$A"


def test_reference_to_raw_variable_is_left_for_the_runner() -> None:
    # collection.rb comment: A=normal, B(raw)=raw-$A, C=$B -> runner gets C=$B -> final raw-$A
    variables = [Variable("A", "normal"), Variable("B", "raw-$A", raw=True), Variable("C", "$B")]
    payload = sort_and_expand(variables, keep_undefined=True, expand_file_refs=False, expand_raw_refs=False)
    assert values(payload)["C"] == "$B"
    assert values(runner_expand(payload))["C"] == "raw-$A"


def test_reference_to_file_variable_becomes_its_path_at_run_time() -> None:
    variables = [
        Variable("RUNNER_TEMP_PROJECT_DIR", "/builds/p.tmp"),
        Variable("KUBECONFIG_DATA", "apiVersion: v1", variable_type="file"),
        Variable("ARG", "--kubeconfig=$KUBECONFIG_DATA"),
    ]
    payload = sort_and_expand(variables, keep_undefined=True, expand_file_refs=False, expand_raw_refs=False)
    assert values(runner_expand(payload))["ARG"] == "--kubeconfig=/builds/p.tmp/KUBECONFIG_DATA"
    # Rails-side keyword expansion inserts the content instead
    assert expand_value("$KUBECONFIG_DATA", variables) == "apiVersion: v1"


def test_long_reference_chain_does_not_hit_recursion_limit() -> None:
    chain = {"V0": "end"} | {f"V{i}": f"${{V{i - 1}}}" for i in range(1, 5000)}
    assert values(sort_and_expand(chain))["V4999"] == "end"


# spec §3.2: ExpandVariables (keywords)
def test_expand_value_has_no_dollar_escape() -> None:
    assert expand_value("$$FOO", {"FOO": "bar"}) == "$bar"


def test_expand_value_blanks_undefined_and_expand_existing_keeps_them() -> None:
    assert expand_value("a-$NOPE-${NOPE}-%NOPE%", {}) == "a---"
    assert expand_value("a-$NOPE", {}, keep_undefined=True) == "a-$NOPE"


def test_expand_value_is_single_pass() -> None:
    assert expand_value("$A", {"A": "$B", "B": "b"}) == "$B"


def test_expand_value_uses_last_definition() -> None:
    assert expand_value("$K", [Variable("K", "one"), Variable("K", "two")]) == "two"


def test_expand_value_keeps_file_reference_when_asked() -> None:
    variables = [Variable("F", "content", variable_type="file")]
    assert expand_value("$F", variables, expand_file_refs=False) == "$F"


# spec §3.3: runner os.Expand, A=x FOO_1=f
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$$A", "$A"),
        ("$$$A", "$x"),
        ("${}", ""),
        ("${A", "A"),
        ("${A:-d}", ""),
        ("$1", ""),
        ("$-", ""),
        ("$@", ""),
        ("$FOO_1x", ""),
        ("${FOO_1}x", "fx"),
        ("%A%", "%A%"),
        ("$ a", "$ a"),
        ("a$", "a$"),
        ("$é", "$é"),
    ],
)
def test_runner_expand_matches_go_os_expand(text: str, expected: str) -> None:
    got = runner_expand([Variable("A", "x"), Variable("FOO_1", "f"), Variable("T", text)])
    assert got[-1].value == expected


def test_runner_expand_is_not_recursive() -> None:
    got = values(runner_expand({"A": "x", "B": "$A", "C": "$B"}))
    assert got == {"A": "x", "B": "x", "C": "$A"}


def test_runner_expand_ignores_os_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME_FROM_OS", "leak")
    assert values(runner_expand({"P": "$HOME_FROM_OS:/x"}))["P"] == ":/x"


def test_runner_expand_leaves_raw_values() -> None:
    got = runner_expand([Variable("A", "x"), Variable("R", "pa$$word-$A", raw=True)])
    assert got[1].value == "pa$$word-$A"


def test_dollar_dollar_survives_rails_and_becomes_dollar_in_runner() -> None:
    payload = sort_and_expand(
        {"FLAGS": "-al", "LS_CMD": 'ls "$FLAGS" $$TMP_DIR'},
        keep_undefined=True,
        expand_file_refs=False,
        expand_raw_refs=False,
    )
    assert values(runner_expand(payload))["LS_CMD"] == 'ls "-al" $TMP_DIR'


def _glci_vectors() -> list[dict[str, object]]:
    data = json.loads((DATA / "gitlab-ci-local" / "expand_text.json").read_text())
    return [v for v in data["vectors"] if v["input"] is not None]


@pytest.mark.parametrize("vector", _glci_vectors(), ids=lambda v: str(v["name"]))
def test_gitlab_ci_local_expand_text_vectors(vector: dict[str, object]) -> None:
    variables = vector["variables"]
    assert isinstance(variables, dict)

    def get(name: str) -> str:
        return "$" if name == "$" else str(variables.get(name, ""))

    assert go_os_expand(str(vector["input"]), get) == vector["expected"]
