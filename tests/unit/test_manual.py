"""Manual jobs: which ones block later stages, who played them, variables typed in when playing."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_ci_vars.errors import ParameterError
from airflow_ci_vars.jobs import JobSpec
from airflow_ci_vars.pipeline.manual import (
    always_optional_manual,
    manual_job_variables,
    may_block,
    played_in_conf,
)
from airflow_ci_vars.variables.model import Layer


def job(yaml: dict[str, Any]) -> JobSpec:
    return JobSpec.from_yaml("deploy", {"script": ["x"], **yaml})


@pytest.mark.parametrize(
    ("yaml", "optional", "blocking"),
    [
        ({"when": "manual"}, True, False),  # job-level manual: allow_failure defaults to true
        ({"when": "manual", "allow_failure": False}, False, True),
        ({"when": "manual", "allow_failure": {"exit_codes": [3]}}, False, True),  # a hash is a static false
        ({"rules": [{"when": "manual"}]}, False, True),  # rules-level manual: allow_failure false
        ({"rules": [{"when": "manual", "allow_failure": True}]}, True, False),
        ({"when": "manual", "rules": [{"if": "$A"}]}, True, False),  # the rule takes the job's when
        # the job-level when: manual sets allow_failure: true for the rule too (GitLab's `ignored?`)
        ({"when": "manual", "rules": [{"if": "$A", "when": "never"}, {"when": "manual"}]}, True, False),
        ({"rules": [{"if": "$A", "when": "manual", "allow_failure": True}, {"when": "on_success"}]}, False, False),
        ({"when": "on_success"}, False, False),
        ({"rules": [{"when": "never"}]}, False, False),
    ],
)
def test_blocking_and_optional_manual_jobs_follow_gitlabs_allow_failure_defaults(
    yaml: dict[str, Any], optional: bool, blocking: bool
) -> None:
    spec = job(yaml)
    assert always_optional_manual(spec) is optional
    assert may_block(spec) is blocking


def test_conf_manual_plays_the_listed_jobs_and_decides_for_the_others() -> None:
    assert played_in_conf(["deploy", "deploy"], {"manual": ["deploy"]}) is True
    assert played_in_conf(["build: [linux]", "build"], {"manual": ["build"]}) is True  # the group name plays all
    assert played_in_conf(["deploy"], {"manual": []}) is False
    assert played_in_conf(["deploy"], {"manual": "deploy"}) is True
    assert played_in_conf(["deploy"], {"variables": {}}) is None  # nobody decided: ask


def test_manual_job_variables_from_key_value_lines_outrank_pipeline_variables() -> None:
    found = manual_job_variables("TARGET=prod\n\nURL=https://x/?a=b\n")
    assert [(v.key, v.value) for v in found] == [("TARGET", "prod"), ("URL", "https://x/?a=b")]
    assert {v.source.layer for v in found if v.source} == {Layer.MANUAL}
    assert manual_job_variables("") == [] and manual_job_variables(None) == []
    assert [(v.key, v.value) for v in manual_job_variables({"A": "1"})] == [("A", "1")]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("TARGET=prod\noops", "line 2: expected KEY=VALUE"),
        ("BAD-KEY=1", "Key can contain only letters, digits and '_'"),
        ("A=1\nA=2", "Duplicate variable name: A"),
    ],
)
def test_bad_manual_job_variables_name_the_problem_not_the_value(given: str, message: str) -> None:
    with pytest.raises(ParameterError) as err:
        manual_job_variables(given)
    assert message in str(err.value)
    assert "prod" not in str(err.value)
