"""GitLab's Run pipeline form as Airflow's trigger form: inputs and prefilled variables as params."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from airflow_ci_vars.errors import ParameterError, PipelineError
from airflow_ci_vars.pipeline.cache import ParseCache
from airflow_ci_vars.pipeline.loader import load_pipeline
from airflow_ci_vars.pipeline.model import Pipeline, PipelineInvalidError
from airflow_ci_vars.pipeline.run_form import FORM_SOURCE, RunForm, run_pipeline_variables
from airflow_ci_vars.pipeline.run_inputs import job_with_inputs
from airflow_ci_vars.variables.model import Layer

CI = """
spec:
  inputs:
    target:
      description: Where to deploy
      options: [staging, production]
      default: staging
    replicas:
      type: number
      default: 2
    release:
      regex: '^v\\d+$'
---
variables:
  LOG_LEVEL:
    value: info
    description: How much to log
    options: [debug, info, warn]
  NOTE:
    description: Free text
  PLAIN: not in the form
  HIDDEN_HASH: {value: x}

deploy:
  script: ["deploy $[[ inputs.target ]] x$[[ inputs.replicas ]] $[[ inputs.release ]]"]
"""


def write(tmp_path: Path, text: str) -> Path:
    ci = tmp_path / ".gitlab-ci.yml"
    ci.write_text(textwrap.dedent(text).lstrip("\n"))
    return ci


def form_of(tmp_path: Path, text: str = CI, **inputs: object) -> RunForm:
    pipeline = load_pipeline(write(tmp_path, text), inputs=inputs or {"release": "v1"})
    assert pipeline.form is not None
    return pipeline.form


def test_inputs_and_described_variables_become_fields_in_file_order(tmp_path: Path) -> None:
    form = form_of(tmp_path)
    assert [(f.name, f.kind) for f in form.fields] == [
        ("target", "input"),
        ("replicas", "input"),
        ("release", "input"),
        ("LOG_LEVEL", "variable"),
        ("NOTE", "variable"),
    ]


def test_each_field_has_the_json_schema_of_its_declaration(tmp_path: Path) -> None:
    fields = {f.name: f for f in form_of(tmp_path).fields}
    assert fields["target"].schema == {
        "type": "string",
        "section": "Inputs",
        "title": "target",
        "description": "Where to deploy",
        "enum": ["staging", "production"],
    }
    assert fields["replicas"].schema["type"] == "number"
    assert fields["LOG_LEVEL"].schema == {
        "type": "string",
        "section": "Variables",
        "title": "LOG_LEVEL",
        "description": "How much to log",
        "enum": ["debug", "info", "warn"],
    }
    assert fields["NOTE"].default == ""  # no value: prefilled with an empty string


def test_a_regex_is_shown_and_checked_with_re2_not_given_to_airflow(tmp_path: Path) -> None:
    # Airflow would check a schema `pattern` with Python's backtracking `re`: the form only shows it.
    schema = {f.name: f for f in form_of(tmp_path).fields}["release"].schema
    assert "pattern" not in schema
    assert schema["description"] == "Must match the RE2 pattern ^v\\d+$"
    form = form_of(tmp_path)
    assert form.run_inputs({"release": "v12"})["release"] == "v12"
    for refused in ("v12\n", "x1"):  # RE2's `$` is the end of the text
        with pytest.raises(PipelineError, match="`release` input: provided value does not match required RegEx"):
            form.run_inputs({"release": refused})


def test_defaults_are_the_values_the_pipeline_was_built_with(tmp_path: Path) -> None:
    fields = {f.name: f.default for f in form_of(tmp_path, replicas=5, release="v3").fields}
    assert fields["target"] == "staging"
    assert fields["replicas"] == 5
    assert fields["release"] == "v3"  # a required input: the factory's value
    assert fields["LOG_LEVEL"] == "info"


def test_a_prefilled_value_outside_its_options_is_refused_where_it_is_written(tmp_path: Path) -> None:
    text = "variables:\n  LEVEL:\n    value: trace\n    options: [debug, info]\n    description: d\nj: {script: [a]}\n"
    with pytest.raises(PipelineError) as err:
        load_pipeline(write(tmp_path, text))
    assert err.value.message == "variables:LEVEL config value must be present in options"
    assert (err.value.line, err.value.column) == (2, 3)


def test_options_must_be_strings(tmp_path: Path) -> None:
    text = "variables:\n  N: {value: '1', options: [1, 2], description: d}\nj: {script: [a]}\n"
    with pytest.raises(PipelineError, match="variables:N config options should be an array of strings"):
        load_pipeline(write(tmp_path, text))


@pytest.mark.parametrize("name", ["ref", "variables", "inputs", "environment"])
def test_a_field_named_like_a_reserved_conf_key_is_refused(tmp_path: Path, name: str) -> None:
    text = f"spec:\n  inputs:\n    {name}: {{default: x}}\n---\nj: {{script: [a]}}\n"
    with pytest.raises(PipelineError, match=f"`{name}` cannot be an input's name here") as err:
        load_pipeline(write(tmp_path, text))
    assert (err.value.line, err.value.column) == (3, 5)


def test_an_input_and_a_prefilled_variable_of_one_name_are_refused(tmp_path: Path) -> None:
    text = (
        "spec:\n  inputs:\n    MODE: {default: a}\n---\n"
        "variables:\n  MODE: {value: b, description: d}\nj: {script: [a]}\n"
    )
    with pytest.raises(PipelineError, match="`MODE` is both a spec:inputs input") as err:
        load_pipeline(write(tmp_path, text))
    assert err.value.line == 6


def test_a_file_without_inputs_or_described_variables_has_no_form(tmp_path: Path) -> None:
    assert load_pipeline(write(tmp_path, "variables: {A: b}\nj: {script: [a]}\n")).form is None


# --- a run's conf ------------------------------------------------------------------------------------------


def test_a_run_without_inputs_keeps_the_build_values(tmp_path: Path) -> None:
    form = form_of(tmp_path)
    values = form.run_inputs({"variables": {"A": "b"}})
    assert not form.inputs_differ(values)


def test_the_trigger_form_values_and_conf_inputs_give_the_run_inputs(tmp_path: Path) -> None:
    form = form_of(tmp_path)
    values = form.run_inputs({"target": "production", "replicas": 2, "inputs": {"replicas": 4}})
    assert values == {"target": "production", "replicas": 4, "release": "v1"}
    assert form.inputs_differ(values)


def test_run_inputs_are_checked_like_include_inputs(tmp_path: Path) -> None:
    form = form_of(tmp_path)
    with pytest.raises(PipelineError, match="`replicas` input: provided value is not a number"):
        form.run_inputs({"inputs": {"replicas": "four"}})
    with pytest.raises(PipelineError, match="unknown input arguments: colour"):
        form.run_inputs({"inputs": {"colour": "red"}})
    with pytest.raises(ParameterError):
        form.run_inputs({"inputs": ["replicas"]})


def test_an_integer_and_a_float_input_are_different_runs(tmp_path: Path) -> None:
    form = form_of(tmp_path)
    assert form.inputs_differ(form.run_inputs({"replicas": 2.0}))


def test_prefilled_variables_in_conf_are_pipeline_variables(tmp_path: Path) -> None:
    form = form_of(tmp_path)
    found = form.prefilled_variables({"LOG_LEVEL": "debug", "PLAIN": "x", "target": "staging"})
    assert [(v.key, v.value) for v in found] == [("LOG_LEVEL", "debug")]
    assert found[0].source == FORM_SOURCE and FORM_SOURCE.layer is Layer.PIPELINE


def test_a_rest_call_without_a_prefilled_variable_gives_none(tmp_path: Path) -> None:
    assert form_of(tmp_path).prefilled_variables({"variables": {"LOG_LEVEL": "warn"}}) == []


def test_conf_variables_beat_the_forms_prefilled_value_of_the_same_key(tmp_path: Path) -> None:
    form = form_of(tmp_path)
    conf = {"LOG_LEVEL": "debug", "NOTE": "n", "variables": {"LOG_LEVEL": "warn"}}
    found = run_pipeline_variables(conf, form)
    assert [(v.key, v.value) for v in found] == [("NOTE", "n"), ("LOG_LEVEL", "warn")]
    assert [v.key for v in run_pipeline_variables(conf, None)] == ["LOG_LEVEL"]  # no form: conf only


def test_a_user_who_may_not_set_variables_keeps_only_the_prefilled_values_they_changed(tmp_path: Path) -> None:
    """The trigger form submits every field: untouched prefilled values are the YAML's, not the user's."""
    form = form_of(tmp_path)
    conf = {"LOG_LEVEL": "info", "NOTE": "typed"}  # LOG_LEVEL is prefilled with info
    assert [v.key for v in run_pipeline_variables(conf, form)] == ["LOG_LEVEL", "NOTE"]
    assert [v.key for v in run_pipeline_variables(conf, form, prefilled=False)] == ["NOTE"]


def test_a_bad_pipeline_variable_in_conf_is_a_parameter_error(tmp_path: Path) -> None:
    with pytest.raises(ParameterError):
        run_pipeline_variables({"variables": {"A B": "x"}}, form_of(tmp_path))
    with pytest.raises(ParameterError, match="NOTE"):
        run_pipeline_variables({"NOTE": 5}, form_of(tmp_path))


INPUTS_CI = """
spec:
  inputs:
    with_lint: {type: boolean, default: false}
    target: {default: staging}
---
lint:
  script: [lint]
  rules: [{if: '"$[[ inputs.with_lint ]]" == "true"'}]
deploy:
  script: ["deploy $[[ inputs.target ]]"]
"""


def test_a_run_with_other_inputs_takes_the_job_from_the_file_loaded_with_them(tmp_path: Path) -> None:
    pipeline = load_pipeline(write(tmp_path, INPUTS_CI))
    form = pipeline.form
    assert form is not None
    deploy = next(j.spec for j in pipeline.jobs if j.name == "deploy")
    same = job_with_inputs(form, form.run_inputs({"target": "staging"}), deploy)
    assert same.job is deploy and same.changed == ()
    other = job_with_inputs(form, form.run_inputs({"target": "production"}), deploy)
    assert other.changed == ("target",)
    assert other.job is not None and other.job.script == ("deploy production",)


def test_a_job_the_runs_inputs_leave_out_is_not_in_its_pipeline(tmp_path: Path) -> None:
    text = "spec:\n  inputs:\n    target: {default: staging}\n---\n'$[[ inputs.target ]]-deploy': {script: [d]}\n"
    pipeline = load_pipeline(write(tmp_path, text))
    assert pipeline.form is not None
    deploy = pipeline.jobs[0].spec
    found = job_with_inputs(pipeline.form, {"target": "qa"}, deploy)
    assert deploy.name == "staging-deploy" and found.job is None and found.changed == ("target",)


def test_inputs_that_make_the_file_invalid_are_a_located_error(tmp_path: Path) -> None:
    text = INPUTS_CI.replace('script: ["deploy $[[ inputs.target ]]"]', "stage: $[[ inputs.target ]]\n  script: [x]")
    text = text.replace("target: {default: staging}", "target: {default: test}")
    pipeline = load_pipeline(write(tmp_path, text))
    assert pipeline.form is not None
    deploy = next(j.spec for j in pipeline.jobs if j.name == "deploy")
    with pytest.raises(PipelineInvalidError, match=r"\.gitlab-ci\.yml:\d+:\d+: deploy job: chosen stage nowhere"):
        job_with_inputs(pipeline.form, {"with_lint": False, "target": "nowhere"}, deploy)


def test_the_form_survives_the_parse_cache(tmp_path: Path) -> None:
    ci = write(tmp_path, CI.replace("regex: '^v\\d+$'", "{regex: '^v', default: v0}"))
    cache = ParseCache(tmp_path / "cache")
    first = cache.load(ci)
    again = ParseCache(tmp_path / "cache", loader=_no_load).load(ci)
    assert again.form == first.form and again.form is not None


def _no_load(*_args: object, **_kwargs: object) -> Pipeline:
    raise AssertionError("the cache should have served the pipeline")
