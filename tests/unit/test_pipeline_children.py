"""Child pipelines (``trigger:include``) and what a trigger job forwards (spec §6.3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_ci_vars.errors import PipelineError
from airflow_ci_vars.jobs import JobSpec
from airflow_ci_vars.pipeline.children import Bridge, Forward, forwarded_variables
from airflow_ci_vars.pipeline.loader import load_pipeline
from airflow_ci_vars.pipeline.model import PipelineInvalidError
from airflow_ci_vars.variables.model import Layer, Variable, VariableSource


def bridge(job: dict[str, object], top: dict[str, object] | None = None, **forward: bool) -> Bridge:
    spec = JobSpec.from_yaml("trigger-job", {"trigger": {"include": "c.yml"}, **job}, default_variables=top)
    return Bridge(spec, Forward(**forward))


def values(variables: list[Variable]) -> dict[str, str]:
    return {v.key: v.value for v in variables}


def api(**pairs: str) -> list[Variable]:
    return [Variable(k, v, source=VariableSource(Layer.PIPELINE, "api")) for k, v in pairs.items()]


def test_yaml_variables_are_forwarded_by_default_with_the_inherited_top_level_ones() -> None:
    b = bridge({"variables": {"JOB": "j"}}, top={"GLOBAL": "g"})
    got = forwarded_variables(b, api(FROM_API="x"), {})
    assert values(got) == {"GLOBAL": "g", "JOB": "j"}  # pipeline variables: not by default
    assert {v.source.layer for v in got} == {Layer.PIPELINE}


def test_inherit_variables_false_or_a_list_limits_the_top_level_ones() -> None:
    top = {"A": "1", "B": "2"}
    assert values(forwarded_variables(bridge({"inherit": {"variables": False}}, top), [], {})) == {}
    assert values(forwarded_variables(bridge({"inherit": {"variables": ["B"]}}, top), [], {})) == {"B": "2"}


def test_pipeline_variables_forwarded_on_request_and_the_last_definition_wins() -> None:
    b = bridge({"variables": {"SAME": "yaml", "ONLY_YAML": "y"}}, pipeline_variables=True)
    got = forwarded_variables(b, api(SAME="api", ONLY_API="a"), {})
    assert values(got) == {"SAME": "api", "ONLY_YAML": "y", "ONLY_API": "a"}
    assert [v.key for v in got] == ["ONLY_YAML", "SAME", "ONLY_API"]
    assert values(forwarded_variables(bridge({"variables": {"V": "y"}}, yaml_variables=False), [], {})) == {}


def test_forwarded_values_are_expanded_once_with_the_trigger_jobs_variables() -> None:
    b = bridge(
        {"variables": {"REF": "$CI_COMMIT_REF_NAME-$MISSING", "COST": "$$X", "RAW": {"value": "$X", "expand": False}}}
    )
    got = values(forwarded_variables(b, [], {"CI_COMMIT_REF_NAME": "main", "X": "x"}))
    # ExpandVariables: undefined -> "", and "$$" is no escape (GitLab's downstream troubleshooting note)
    assert got == {"REF": "main-", "COST": "$x", "RAW": "$X"}


def write(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path / ".gitlab-ci.yml"


def test_child_pipelines_load_with_the_parent_nested_and_with_expanded_locations(tmp_path: Path) -> None:
    ci = write(
        tmp_path,
        {
            ".gitlab-ci.yml": "up:\n  variables: {DIR: ci}\n  trigger:\n    include:\n      - local: $DIR/child.yml\n",
            "ci/child.yml": (
                "stages: [one, two]\nc1: {stage: one, script: [x]}\n"
                "nest: {stage: two, trigger: {include: ci/grand.yml}}\n"
            ),
            "ci/grand.yml": "g: {script: [y]}\n",
        },
    )
    pipeline = load_pipeline(ci)
    child = pipeline.children["up"]
    assert [j.name for j in child.jobs] == ["c1", "nest"]
    assert child.stages == (".pre", "one", "two", ".post")
    assert [j.name for j in child.children["nest"].jobs] == ["g"]


def test_an_invalid_child_pipeline_is_an_error_in_its_own_file(tmp_path: Path) -> None:
    ci = write(
        tmp_path,
        {
            ".gitlab-ci.yml": "up:\n  trigger: {include: child.yml}\n",
            "child.yml": "c:\n  needs: [nope]\n  script: [x]\n",
        },
    )
    with pytest.raises(PipelineInvalidError, match="c job: undefined need: nope"):
        load_pipeline(ci)
    (tmp_path / "child.yml").unlink()
    with pytest.raises(PipelineError, match=r"child\.yml"):
        load_pipeline(ci)


def test_child_pipelines_nest_at_most_two_levels(tmp_path: Path) -> None:
    ci = write(
        tmp_path,
        {
            ".gitlab-ci.yml": "a:\n  trigger: {include: b.yml}\n",
            "b.yml": "b:\n  trigger: {include: c.yml}\n",
            "c.yml": "c:\n  trigger: {include: d.yml}\n",
            "d.yml": "d: {script: [x]}\n",
        },
    )
    with pytest.raises(
        PipelineInvalidError, match="jobs:c:trigger:include: child pipelines nest at most 2 levels deep"
    ):
        load_pipeline(ci)


def test_a_dynamic_child_pipeline_is_a_warning_not_a_child(tmp_path: Path) -> None:
    ci = write(
        tmp_path,
        {
            ".gitlab-ci.yml": (
                "gen:\n  stage: build\n  script: [echo]\n"
                "dyn:\n  trigger:\n    include:\n      - artifact: generated.yml\n        job: gen\n"
            )
        },
    )
    pipeline = load_pipeline(ci)
    assert pipeline.children == {}
    assert [w.message for w in pipeline.warnings] == [
        "jobs:dyn:trigger:include: a dynamic child pipeline (include:artifact) is generated at run time and "
        "cannot become Airflow tasks; the job fails when it runs"
    ]
    assert pipeline.warnings[0].where.endswith(".gitlab-ci.yml:4:1")


def test_received_dotenv_is_forwarded_with_the_pipeline_variables_before_them() -> None:
    dotenv = [Variable("VERSION", "1.2", source=VariableSource(Layer.DOTENV, "build")), *api(SAME="dotenv")]
    got = forwarded_variables(bridge({}, pipeline_variables=True), api(SAME="api"), {}, dotenv)
    assert values(got) == {"VERSION": "1.2", "SAME": "api"}  # pipeline variables come last and win
    assert values(forwarded_variables(bridge({}), api(A="1"), {}, dotenv)) == {}  # not without pipeline_variables
