"""The keyword entries (``pipeline/entries/``): each keyword parsed once, GitLab's messages, typed errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from airflow_ci_vars.errors import JobConfigError, PipelineError, VariableValidationError
from airflow_ci_vars.jobs import Artifacts, CrossNeed, Environment, JobSpec, Need
from airflow_ci_vars.pipeline.entries import (
    allow_failure,
    artifacts,
    dependencies,
    environment,
    needs,
    parallel,
    retry,
    rules,
    script,
    secrets,
    stage,
    tags,
    timeout,
    trigger,
    variables,
    when,
)
from airflow_ci_vars.pipeline.entries.job import parse_job
from airflow_ci_vars.pipeline.loader import check_pipeline


def refused(call: object, *args: object) -> JobConfigError:
    assert callable(call)
    with pytest.raises(JobConfigError) as err:
        call(*args)
    return err.value


def test_script_flattens_nested_lists_and_refuses_a_hash() -> None:
    assert script.lines("j", ["a", ["b", ["c"]], None]) == ("a", "b", "c")
    assert script.lines("j", "one") == ("one",)
    err = refused(script.lines, "j", [{"echo hello": "world"}], "before_script")
    assert err.message == (
        "jobs:j:before_script config should be a string or a nested array of strings up to 10 levels deep"
    )
    assert (err.job, err.key, err.field) == ("j", "before_script", "before_script")


def test_script_is_required_of_a_job_not_of_a_bridge() -> None:
    assert refused(script.check_present, "j", {}).message == (
        "jobs:j config should implement the script:, run:, or trigger: keyword"
    )
    assert refused(script.check_present, "j", {"script": []}).message == (
        "jobs:j:script config should be an array containing strings and arrays of strings"
    )
    script.check_present("b", {"trigger": "acme/other"})
    script.check_present("r", {"run": [{"name": "x"}]})


def test_stage_type_alias_and_unknown_stage() -> None:
    assert stage.job_stage({"type": "build"}) == ("type", "build")
    assert stage.job_stage({"stage": None}) == ("stage", "test")
    err = refused(stage.check, "j", {"type": "nope"}, ("build", "test"))
    assert err.message == "j job: chosen stage nope does not exist; available stages are build, test"
    assert err.key == "type"


def test_when_and_start_in() -> None:
    assert when.when("j", {}) == "on_success"
    assert refused(when.when, "j", {"when": "later"}).message == "jobs:j when unknown value: later"
    assert when.start_in("j", {"start_in": "5 minutes"}, "delayed") == 300
    assert when.start_in("j", {"start_in": "5 minutes"}, "manual") is None
    err = refused(when.start_in, "j", {"start_in": "8 days"}, "delayed")
    assert (err.message, err.key) == ("jobs:j start in should not exceed the limit", "start_in")
    # GitLab's two other messages, the same as a rule's start_in gets (rule_entry):
    assert refused(when.start_in, "j", {}, "delayed").message == "jobs:j start in can't be blank"
    soon = refused(when.start_in, "j", {"start_in": "soon"}, "delayed")
    assert soon.message == "jobs:j start in should be a duration"


def test_retry_timeout_rules() -> None:
    assert retry.parse("j", {"max": 2, "when": "script_failure"}) == (2, ("script_failure",))
    assert retry.parse("j", 1) == (1, ())
    assert refused(retry.parse, "j", 3).message == "jobs:j:retry max can be 0, 1 or 2"
    assert refused(retry.parse, "j", True).message == "jobs:j:retry max can be 0, 1 or 2"
    assert timeout.parse("j", {"timeout": "1h 30m"}) == 5400
    assert timeout.parse("j", {}) is None
    assert refused(timeout.parse, "j", {"timeout": "soon"}).message == "jobs:j:timeout config should be a duration"
    assert rules.parse("j", [{"if": "$A"}]) == ({"if": "$A"},)
    assert refused(rules.parse, "j", {"if": "$A"}).message == "jobs:j:rules config should be an array of hashes"
    assert refused(rules.parse, "j", []).message == "jobs:j:rules config can't be blank"


def test_needs_dependencies() -> None:
    found = needs.parse("j", {"needs": ["a", {"job": "b", "artifacts": False}, {"project": "p", "job": "c"}]})
    assert found == ((Need("a"), Need("b", artifacts=False)), (CrossNeed("c", project="p"),))
    assert needs.parse("j", {}) == (None, ())
    assert needs.parse("j", {"needs": []}) == ((), ())
    assert refused(needs.parse, "j", {"needs": "a"}).message == "jobs:j:needs config should be an array"
    assert refused(needs.parse, "j", {"needs": ["a", None]}).message == (
        "jobs:j:needs config can't contain empty entries"
    )
    err = refused(needs.parse, "j", {"needs": [{"optional": True}]})
    assert (err.message, err.key) == ("needs config should be a job name or a hash with 'job'", "needs")
    assert dependencies.parse({"dependencies": ["a"]}) == ("a",)
    assert dependencies.parse({}) is None


def test_environment_artifacts_allow_failure() -> None:
    assert environment.parse("j", "prod") == Environment("prod")
    assert environment.parse("j", {"name": "review/$X", "url": "https://x"}) == Environment(
        "review/$X", url="https://x"
    )
    assert refused(environment.parse, "j", {"url": "https://x"}).message == "jobs:j:environment name can't be blank"
    assert artifacts.parse("j", None) == Artifacts()
    assert artifacts.parse("j", {"paths": "out", "reports": {"dotenv": "b.env"}}) == Artifacts(
        paths=("out",), dotenv=("b.env",)
    )
    assert refused(artifacts.parse, "j", ["out"]).message == "j: artifacts config should be a hash"
    assert refused(artifacts.parse, "j", {"when": "never"}).message == (
        "j: artifacts:when config should be on_success, on_failure or always"
    )
    assert allow_failure.parse("j", {"when": "manual"}, "manual") is True
    assert allow_failure.parse("j", {"allow_failure": {"exit_codes": [1, 3]}}, "on_success") == (1, 3)
    assert allow_failure.parse("j", {"allow_failure": {"exit_codes": 2}}, "on_success") == (2,)
    assert refused(allow_failure.parse, "j", {"allow_failure": {"exit_codes": ["x"]}}, "on_success").message == (
        "jobs:j:allow_failure exit codes should be an array of integers or an integer"
    )


def test_parallel_trigger_tags_secrets_variables() -> None:
    assert [i[0] for i in parallel.instances("b", 2)] == ["b 1/2", "b 2/2"]
    assert [i[0] for i in parallel.instances("b", {"matrix": [{"OS": ["l", "w"]}]})] == ["b: [l]", "b: [w]"]
    assert refused(parallel.instances, "b", "two").message == "jobs:b:parallel should be an integer or a hash"
    assert refused(parallel.instances, "b", 201).message == "jobs:b:parallel config must be less than or equal to 200"
    assert trigger.parse({"trigger": "acme/x"}) == {"project": "acme/x"}
    assert trigger.parse({}) is None
    assert trigger.interruptible({"interruptible": True}) is True
    assert trigger.interruptible({"interruptible": "yes"}) is None
    assert tags.parse("j", ["a", "$B"]) == ("a", "$B")
    assert len(tags.warnings("j", ("a", "$B"))) == 2
    assert refused(tags.parse, "j", "a").message == "jobs:j:tags config should be an array of strings"
    assert refused(secrets.parse, "j", ["A"]).message == "jobs:j:secrets config should be a hash"
    assert secrets.parse("j", None) == ()
    assert variables.job_variables("j", None) is None
    assert variables.job_variables("j", {}) == ()
    assert refused(variables.job_variables, "j", ["A"]).key == "variables"
    assert variables.inherit({"inherit": {"variables": ["A"]}}) == ("A",)
    with pytest.raises(VariableValidationError):  # a variable's own problem stays a variable error
        variables.job_variables("j", {"A": [1]})


def test_parse_job_collects_every_problem_and_builds_the_one_record() -> None:
    job = yaml.safe_load("when: later\ntimeout: soon\nretry: 5\nscript: [x]\ntags: [a]\n")
    found = parse_job("j", job, stages=("test",))
    assert [str(e) for e in found.errors] == [
        "jobs:j when unknown value: later",
        "jobs:j:timeout config should be a duration",
        "jobs:j:retry max can be 0, 1 or 2",
    ]
    assert found.spec is not None and found.spec.tags == ("a",) and not found.fatal
    bad = parse_job("j", {"script": "x", "artifacts": ["out"], "needs": [{"x": 1}]})
    assert bad.spec is None and [e.key for e in bad.fatal] == ["needs", "artifacts"]  # type: ignore[attr-defined]


def test_from_yaml_raises_a_typed_located_error_and_reads_the_pipeline_keywords() -> None:
    with pytest.raises(JobConfigError) as err:
        JobSpec.from_yaml("j", {"script": "x", "artifacts": "out"})
    assert isinstance(err.value, PipelineError) and isinstance(err.value, ValueError)
    assert not isinstance(err.value, VariableValidationError)
    assert (err.value.job, err.value.field) == ("j", "artifacts")
    spec = JobSpec.from_yaml("j", {"script": "x", "retry": 1, "timeout": "1m", "tags": ["q"], "interruptible": True})
    assert (spec.retry, spec.timeout, spec.tags, spec.interruptible) == (1, 60, ("q",), True)


@pytest.mark.parametrize(
    ("keyword", "text", "message"),
    [
        ("artifacts", "  artifacts: [out]\n", "j: artifacts config should be a hash"),
        ("needs", "  needs: [{optional: true}]\n", "needs config should be a job name or a hash with 'job'"),
        (
            "script",
            "  after_script:\n    - echo a: b\n",
            "jobs:j:after_script config should be a string or a nested array of strings up to 10 levels deep",
        ),
    ],
)
def test_a_keyword_problem_is_located_at_its_keyword(tmp_path: Path, keyword: str, text: str, message: str) -> None:
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text("j:\n  script: [x]\n" + text)
    [error] = check_pipeline(path).errors
    assert (error.message, error.where) == (message, f"{path}:3:3")
