"""What trigger jobs forward to the pipelines below them, at run time (``pipeline.downstream``)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from airflow_ci_vars.jobs import JobSpec
from airflow_ci_vars.pipeline.children import Bridge, Forward
from airflow_ci_vars.pipeline.decision import PipelineRun
from airflow_ci_vars.pipeline.downstream import child_pipeline_variables, keyword_variables, trigger_variables
from airflow_ci_vars.variables.model import Layer, Variable, VariableSource

TOP = PipelineRun(project="g/p", ref="main", default_branch="main", ref_protected=True, pipeline_source="web")
STORED = {"project": [Variable("REGION", "eu")]}


def bridge(name: str, variables: dict[str, object], **forward: bool) -> Bridge:
    job = JobSpec.from_yaml(name, {"trigger": {"include": "c.yml"}, "variables": variables})
    return Bridge(job, Forward(**forward), task_id=name)


def given(**pairs: str) -> list[Variable]:
    return [Variable(k, v, source=VariableSource(Layer.PIPELINE, "conf:variables")) for k, v in pairs.items()]


def values(variables: Sequence[Variable]) -> dict[str, str]:
    return {v.key: v.value for v in variables}


def test_a_trigger_job_forwards_the_parent_pipeline_id_and_its_own_variables_expanded() -> None:
    b = bridge("child", {"PARENT_PIPELINE_ID": "$CI_PIPELINE_ID", "WHERE": "$REGION-$CI_PIPELINE_SOURCE"})
    forwarded, seen = trigger_variables(b, TOP, stored=STORED, pipeline=given(A="1"), pipeline_id="77")
    assert values(forwarded) == {"PARENT_PIPELINE_ID": "77", "WHERE": "eu-web"}  # A: pipeline variables not asked
    assert {v.source for v in forwarded} == {VariableSource(Layer.PIPELINE, "trigger job child")}
    assert seen["CI_PIPELINE_ID"] == "77" and "CI_JOB_ID" not in seen


def test_a_grandchild_receives_what_each_trigger_job_above_forwards_in_turn() -> None:
    """The second trigger job runs in the child pipeline: it sees what the first forwarded as
    pipeline variables, its own pipeline's id, and ``parent_pipeline`` as its source."""
    first = bridge("child", {"LEVEL": "1", "KEEP": "$A"}, pipeline_variables=True)
    second = bridge("grandchild", {"LEVEL": "2", "SEEN": "$KEEP/$CI_PIPELINE_ID/$CI_PIPELINE_SOURCE"})
    got = child_pipeline_variables(
        [first, second], TOP, stored=STORED, pipeline=given(A="from-api"), pipeline_ids=["10", "11"]
    )
    assert values(got) == {"LEVEL": "2", "SEEN": "from-api/11/parent_pipeline"}  # no pipeline_variables below


def test_received_dotenv_is_asked_for_only_when_pipeline_variables_are_forwarded() -> None:
    asked: list[str] = []

    def dotenv(b: Bridge) -> list[Variable]:
        asked.append(b.job.name)
        return [Variable("VERSION", "1.2", source=VariableSource(Layer.DOTENV, "build"))]

    plain = bridge("plain", {"X": "x"})
    forwarding = bridge("forwarding", {"X": "x"}, pipeline_variables=True)
    got = child_pipeline_variables([plain], TOP, stored={}, pipeline=[], pipeline_ids=["1"], dotenv=dotenv)
    assert values(got) == {"X": "x"} and asked == []
    got = child_pipeline_variables([forwarding], TOP, stored={}, pipeline=[], pipeline_ids=["1"], dotenv=dotenv)
    assert values(got) == {"X": "x", "VERSION": "1.2"} and asked == ["forwarding"]


def test_a_keyword_sees_the_stored_variables_of_the_jobs_environment() -> None:
    job = JobSpec.from_yaml("deploy", {"script": "d", "environment": "production"})
    stored = {"project": [Variable("URL", "any"), Variable("URL", "prod", environment_scope="production")]}
    assert keyword_variables(job, TOP, stored=stored, pipeline_id="5")["URL"] == "prod"


def test_every_trigger_job_needs_its_pipeline_id() -> None:
    with pytest.raises(ValueError):
        child_pipeline_variables([bridge("a", {}), bridge("b", {})], TOP, stored={}, pipeline=[], pipeline_ids=["1"])
