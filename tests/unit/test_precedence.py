"""One precedence table: every view of a job's variables follows ``PRECEDENCE``, filtered by its step."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_ci_vars.cli import main
from airflow_ci_vars.errors import VariableValidationError
from airflow_ci_vars.pipeline.seed import seed_variables
from airflow_ci_vars.variables.model import Layer, Variable
from airflow_ci_vars.variables.precedence import PRECEDENCE, SEES_RULES_VARIABLES, Step, entries, layer_rank
from airflow_ci_vars.variables.predefined import RunContext
from airflow_ci_vars.variables.resolve import (
    VariableLayers,
    expanded_environment,
    include_context,
    keyword_context,
    resolve,
    rules_context,
    workflow_context,
)

# The VariableLayers fields a user fills; "groups" takes (path, variables) pairs.
FIELDS = ("predefined", "deployment", "default", "job", "rules", "dotenv", "instance", "groups", "project")
FIELDS += ("pipeline", "schedule", "manual", "secrets")
STORED = ("instance", "groups", "project")
RUN = RunContext(job_name="build", project_path="acme/etl")

Lookup = Callable[[VariableLayers, RunContext, str], str | None]

# What each step's public view says a key is worth (None: the key is not there).
VIEWS: dict[Step, Lookup] = {
    Step.INCLUDE: lambda layers, run, key: include_context(layers, run).get(key),
    Step.WORKFLOW: lambda layers, run, key: workflow_context(layers, run).get(key),
    Step.ENVIRONMENT: lambda layers, run, key: expanded_environment(layers, run, f"${key}"),
    Step.RULES: lambda layers, run, key: rules_context(layers, run).get(key),
    Step.KEYWORD: lambda layers, run, key: keyword_context(layers, run).get(key),
    Step.JOB: lambda layers, run, key: resolve(layers, run).environment.get(key),
}


def layers_with(values: dict[str, str], *, protected: frozenset[str] = frozenset()) -> VariableLayers:
    """``KEY`` defined once in each named field, with the given value (stored ones maybe protected)."""
    kwargs: dict[str, object] = {}
    for name, value in values.items():
        variable = Variable("KEY", value, protected=name in protected)
        kwargs[name] = [("acme", [variable])] if name == "groups" else [variable]
    return VariableLayers(**kwargs)  # type: ignore[arg-type]


def expected(step: Step, values: dict[str, str], *, applies: Callable[[str], bool] = lambda name: True) -> str | None:
    """The value of the highest table row ``step`` sees that defines ``KEY``."""
    winner = None
    for entry in PRECEDENCE:
        if not entry.steps & step:  # the job's value is what the runner ends with: JOB then RUNNER
            continue
        if entry.name == "yaml":
            order = ["default", "job"] + (["rules"] if step & SEES_RULES_VARIABLES else [])
            found = [values[f] for f in order if f in values]
            if found:
                winner = found[-1]
        elif entry.fields and entry.fields[0] in values and applies(entry.fields[0]):
            winner = values[entry.fields[0]]
    return winner


_STORED_ROWS = ["instance", "groups", "project"]
GITLAB_ORDER = {
    # R builder.rb config_variables
    Step.INCLUDE: ["predefined", "extra predefined", *_STORED_ROWS, "pipeline", "schedule"],
    # R context/global.rb: a stub build's scoped_variables (no dotenv: dependencies false)
    Step.WORKFLOW: ["predefined", "extra predefined", "deployment", "yaml", *_STORED_ROWS, "pipeline", "schedule"],
    # R context/build.rb: simple variables for environment nil
    Step.ENVIRONMENT: ["predefined", "extra predefined", "deployment", "yaml", *_STORED_ROWS, "pipeline", "schedule"],
    # R builder.rb scoped_variables_for_pipeline_seed: no dependencies in the seed step
    Step.RULES: ["predefined", "extra predefined", "deployment", "yaml", *_STORED_ROWS, "pipeline", "schedule"],
    # R Ci::Bridge#variables: a persisted job's scoped variables, no dependencies, no runner ones
    Step.KEYWORD: ["predefined", "extra predefined", "deployment", "yaml", *_STORED_ROWS, "pipeline", "schedule"],
    # R build.rb base_variables: persisted, scoped_variables, job_variables, persisted environment
    Step.JOB: [
        *["predefined", "extra predefined", "deployment", "yaml", "dotenv", *_STORED_ROWS],
        *["pipeline", "schedule", "manual", "persisted environment"],
    ],
    # GR build.go GetAllVariables: resolved secrets, then RUNNER_TEMP_PROJECT_DIR
    Step.RUNNER: ["secrets", "runner temp dir"],
}


@pytest.mark.parametrize("step", list(GITLAB_ORDER), ids=lambda s: s.name.lower())
def test_each_step_sees_gitlabs_layers_in_gitlabs_order(step: Step) -> None:
    assert [e.name for e in entries(step)] == GITLAB_ORDER[step]


def test_every_field_of_variable_layers_is_in_the_table() -> None:
    named = {f for entry in PRECEDENCE for f in entry.fields}
    assert named == set(FIELDS) | {"inherit"}


def test_layer_enum_lists_the_layers_in_the_tables_order() -> None:
    assert sorted(Layer, key=layer_rank) == list(Layer)


def test_each_view_sees_exactly_the_rows_of_its_step() -> None:
    for step, view in VIEWS.items():
        for field in FIELDS:
            seen = view(layers_with({field: "here"}), RUN, "KEY")
            sees = any(field in e.fields for e in entries(step) + (entries(Step.RUNNER) if step is Step.JOB else ()))
            if field == "rules":
                sees = step in SEES_RULES_VARIABLES
            assert (seen == "here") is sees, (step, field)


def test_each_view_yields_the_layers_in_the_tables_order() -> None:
    """One key per field: the rows the keys come out of follow the table, filtered by the step."""
    kwargs: dict[str, object] = {f: [Variable(f"K_{f.upper()}", "v")] for f in FIELDS if f not in ("groups", "rules")}
    kwargs["groups"] = [("acme", [Variable("K_GROUPS", "v")])]
    layers = VariableLayers(**kwargs)  # type: ignore[arg-type]
    row_of = {f"K_{f.upper()}": e.name for e in PRECEDENCE for f in e.fields if f in kwargs}

    def rows(keys: object) -> list[str]:
        out: list[str] = []
        for key in keys:  # type: ignore[attr-defined]
            if key in row_of and row_of[key] not in out[-1:]:
                out.append(row_of[key])
        return out

    def table(*steps: Step) -> list[str]:
        return [e.name for s in steps for e in entries(s) if set(e.fields) & set(kwargs)]

    assert rows(include_context(layers, RUN)) == table(Step.INCLUDE)
    assert rows(workflow_context(layers, RUN)) == table(Step.WORKFLOW)
    assert rows(rules_context(layers, RUN)) == table(Step.RULES)
    assert rows(keyword_context(layers, RUN)) == table(Step.KEYWORD)
    resolved = resolve(layers, RUN)
    assert rows(v.key for v in resolved.variables) == table(Step.JOB, Step.RUNNER)
    assert rows(resolved.environment) == table(Step.JOB, Step.RUNNER)


def test_explain_lists_the_definitions_of_a_key_in_the_tables_order() -> None:
    values = {f: f for f in FIELDS}
    found = resolve(layers_with(values), RUN).provenance["KEY"]
    ranks = [layer_rank(d.variable.source.layer) for d in found.definitions if d.variable.source]
    assert ranks == sorted(ranks)
    assert found.value is not None and found.value.value == "secrets"


@settings(max_examples=150, deadline=None)
@given(
    values=st.dictionaries(
        st.sampled_from(FIELDS), st.text("abcxyz019_", min_size=1, max_size=6), max_size=len(FIELDS)
    ),
    protected=st.frozensets(st.sampled_from(STORED)),
    ref_protected=st.booleans(),
)
def test_a_key_is_worth_the_highest_layer_its_step_sees(
    values: dict[str, str], protected: frozenset[str], ref_protected: bool
) -> None:
    layers = layers_with(values, protected=protected)
    run = RunContext(job_name="build", project_path="acme/etl", ref_protected=ref_protected)

    def applies(field: str) -> bool:
        return ref_protected or field not in protected

    for step, view in VIEWS.items():
        want = expected(step | Step.RUNNER if step is Step.JOB else step, values, applies=applies)
        assert view(layers, run, "KEY") == want, step


def test_include_rules_see_stored_variables_over_predefined_and_under_pipeline_ones() -> None:
    stored = {"project": [Variable("CI_DEFAULT_BRANCH", "stored"), Variable("ONLY_STORED", "s")]}
    seen = seed_variables(ref="main", project="acme/etl", stored=stored, pipeline={"ONLY_STORED": "given"})
    assert seen["CI_DEFAULT_BRANCH"] == "stored"
    assert seen["ONLY_STORED"] == "given"


def test_include_rules_see_protected_stored_variables_only_on_a_protected_ref() -> None:
    stored = {"instance": [Variable("TOKEN", "t", protected=True)]}
    assert "TOKEN" not in seed_variables(ref="feature", stored=stored)
    protected = seed_variables(ref="main", stored=stored, ref_protected=True)
    assert protected["TOKEN"] == "t" and protected["CI_COMMIT_REF_PROTECTED"] == "true"


def test_include_rules_see_no_environment_scoped_variable() -> None:
    stored = {"project": [Variable("URL", "prod", environment_scope="production"), Variable("URL", "any")]}
    assert seed_variables(ref="main", stored=stored)["URL"] == "any"


def test_seed_variables_refuse_a_layer_that_is_not_stored() -> None:
    with pytest.raises(VariableValidationError) as info:
        seed_variables(ref="main", stored={"manual": [Variable("X", "1")]})
    assert info.value.field == "stored"
    assert "manual" in info.value.message


def test_run_and_explain_resolve_an_include_location_with_the_same_variables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stored variables override predefined ones, and a protected ref says so, wherever includes are read."""
    monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND", "")
    monkeypatch.delenv("AIRFLOW__CI_VARS__SETTINGS_FILE", raising=False)
    pipeline = tmp_path / ".gitlab-ci.yml"
    pipeline.write_text(
        'include: [{local: "/conf/$CI_DEFAULT_BRANCH-$LEVEL-$CI_COMMIT_REF_PROTECTED.yml"}]\nbuild: {script: [echo]}\n'
    )
    settings = tmp_path / "settings.yml"
    settings.write_text(
        "project: g/p\nprotected_refs: [main]\nprojects:\n  g/p:\n    variables:\n"
        "      - {key: CI_DEFAULT_BRANCH, value: stored}\n      - {key: LEVEL, value: prot, protected: true}\n"
    )
    missing = f"{pipeline}:1:12: Local file `conf/stored-prot-true.yml` does not exist!\n"
    for command in (["run"], ["explain", "--job", "build"]):
        code = main([command[0], str(pipeline), "--settings", str(settings), *command[1:]])
        assert (code, capsys.readouterr().err) == (1, missing), command


def test_a_keyword_sees_what_rules_see_plus_the_pipeline_id_and_no_runner_variable() -> None:
    """A trigger job's forwarded values and a ``needs:project`` entry see ``$CI_PIPELINE_ID`` of
    their pipeline (``PARENT_PIPELINE_ID: $CI_PIPELINE_ID``), which ``rules:if`` cannot see yet."""
    run = RunContext(job_name="deploy", project_path="acme/etl", pipeline_id="4242", job_id="7")
    layers = VariableLayers(job={"FROM_YAML": "y"}, rules={"FROM_RULE": "r"})
    seen = keyword_context(layers, run)
    rules = rules_context(layers, run)
    assert seen["CI_PIPELINE_ID"] == "4242" and "CI_PIPELINE_ID" not in rules
    assert {k: v for k, v in seen.items() if k != "CI_PIPELINE_ID"} == rules
    assert "CI_JOB_ID" not in seen and "CI_PROJECT_DIR" not in seen and "FROM_RULE" not in seen


def test_a_keyword_sees_the_scoped_variables_of_the_jobs_expanded_environment() -> None:
    stored = [
        Variable("URL", "any"),
        Variable("URL", "prod", environment_scope="production"),
        Variable("E", "production"),
    ]
    seen = keyword_context(VariableLayers(project=stored), RUN, environment="$E")
    assert seen["URL"] == "prod"
