"""The pure decision module: each GitLab rule it encodes (``pipeline.decision``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from airflow_ci_vars.jobs import JobSpec, Need
from airflow_ci_vars.permissions import ProjectAccess
from airflow_ci_vars.pipeline.decision import (
    MAX_START_IN,
    NULL_SHA,
    Earlier,
    JobDecision,
    PipelineRun,
    decide,
    files_exist,
    needed_instances,
    pipeline_run,
    rules_needs,
)
from airflow_ci_vars.variables.model import Variable

STAGES = ("build", "test", "deploy")
RUN = PipelineRun(project="g/p", ref="main", default_branch="main", ref_protected=True)


def job(name: str, stage: str = "test", **yaml: Any) -> JobSpec:
    return JobSpec.from_yaml(name, {"script": "true", "stage": stage, **yaml})


def earlier(
    jobs: Sequence[JobSpec],
    states: Mapping[str, str | None] | None = None,
    *,
    excluded: Sequence[str] = (),
    blocked: Sequence[str] = (),
    asked: list[str] | None = None,
) -> Earlier:
    known = dict(states or {})

    def state_of(names: Sequence[str]) -> list[str | None]:
        if asked is not None:
            asked.extend(names)
        return [known.get(n, "success") for n in names]

    return Earlier(
        jobs={j.name: j for j in jobs},
        stages=STAGES,
        states=state_of,
        excluded=lambda name: name in excluded,
        blocked=lambda name: name in blocked,
    )


def run_of(
    spec: JobSpec, jobs: Sequence[JobSpec] = (), states: Mapping[str, str | None] | None = None, **kw: Any
) -> JobDecision:
    pipeline = kw.pop("pipeline", ())
    known = kw.pop("earlier", None) or earlier([*jobs, spec], states)
    return decide(spec, kw.pop("run", RUN), stored=kw.pop("stored", {}), pipeline=pipeline, earlier=known, **kw)


def value(decision: JobDecision, key: str) -> str | None:
    from airflow_ci_vars.variables.resolve import resolve

    env = resolve(decision.layers, RUN.context(decision.job))
    return env.environment.get(key)


# -- the run's context ----------------------------------------------------------------------


def test_pipeline_run_reads_ref_ref_type_sha_from_the_conf() -> None:
    access = ProjectAccess(default_branch="trunk")
    run = pipeline_run({"ref": "v1.0", "ref_type": "tag", "sha": "ab" * 20}, access, project="g/p", source="schedule")
    assert (run.ref, run.ref_type, run.sha, run.pipeline_source, run.ref_protected) == (
        "v1.0",
        "tag",
        "ab" * 20,
        "schedule",
        False,
    )
    plain = pipeline_run({}, access, project="g/p", source="api")
    assert (plain.ref, plain.ref_type, plain.sha, plain.ref_protected) == ("trunk", "branch", NULL_SHA, True)


def test_a_rule_on_the_pipeline_source_sees_the_runs_source() -> None:
    spec = job("nightly", rules=[{"if": '$CI_PIPELINE_SOURCE == "schedule"'}])
    assert run_of(spec).action == "skip"
    scheduled = PipelineRun(
        project="g/p", ref="main", default_branch="main", ref_protected=True, pipeline_source="schedule"
    )
    assert run_of(spec, run=scheduled).action == "run"


# -- workflow:rules -------------------------------------------------------------------------


def test_workflow_rules_without_a_match_create_no_pipeline() -> None:
    decision = run_of(job("j"), workflow_rules=[{"if": '$CI_COMMIT_REF_NAME == "release"'}])
    assert (decision.action, decision.in_pipeline, decision.excluded_by_rules) == ("skip", False, False)
    assert decision.reason == "workflow:rules create no pipeline"
    assert run_of(job("j"), workflow_rules=[{"when": "never"}]).action == "skip"


def test_workflow_rules_see_no_job_variables_and_their_variables_join_the_defaults() -> None:
    # R: context/global.rb -- no CI_JOB_* at pipeline level.
    assert run_of(job("j"), workflow_rules=[{"if": "$CI_JOB_NAME"}]).action == "skip"
    spec = JobSpec.from_yaml(
        "j", {"script": "true", "variables": {"MINE": "$TARGET"}}, default_variables={"TARGET": "dev"}
    )
    decision = run_of(spec, workflow_rules=[{"if": "$CI_COMMIT_REF_NAME == 'main'", "variables": {"TARGET": "prod"}}])
    assert decision.action == "run"
    assert value(decision, "TARGET") == "prod" and value(decision, "MINE") == "prod"


# -- rules ----------------------------------------------------------------------------------


def test_no_matching_rule_or_when_never_leaves_the_job_out() -> None:
    for rules in ([{"if": "$NOPE"}], [{"when": "never"}]):
        decision = run_of(job("j", rules=rules))
        assert (decision.action, decision.in_pipeline, decision.excluded_by_rules) == ("skip", False, True)


def test_the_matching_rules_when_allow_failure_and_variables_apply() -> None:
    spec = job(
        "j",
        variables={"A": "job"},
        rules=[{"if": "$NOPE", "when": "never"}, {"when": "manual", "allow_failure": True, "variables": {"A": "rule"}}],
    )
    decision = run_of(spec)
    assert (decision.action, decision.when, decision.allow_failure, decision.rule) == ("run", "manual", True, 1)
    assert [(v.key, v.value) for v in decision.rule_variables] == [("A", "rule")]
    assert value(decision, "A") == "rule"


def test_rules_of_a_job_level_manual_default_to_allow_failure_true() -> None:
    # GitLab: only a job-level `when: manual` defaults to allow_failure: true.
    assert run_of(job("j", when="manual", rules=[{"if": "$CI"}])).allow_failure is True
    assert run_of(job("j", rules=[{"when": "manual"}])).allow_failure is False


def test_rules_exists_looks_in_the_project_directory(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    spec = job("j", rules=[{"exists": ["Dockerfile"]}])
    assert run_of(spec, exists=files_exist(tmp_path)).action == "run"
    assert run_of(spec, exists=files_exist(None)).action == "skip"
    assert run_of(job("j", rules=[{"exists": ["nope/*"]}]), exists=files_exist(tmp_path)).action == "skip"


def test_files_exist_never_looks_outside_the_directory(tmp_path: Path) -> None:
    inside = tmp_path / "project"
    inside.mkdir()
    (tmp_path / "secret.txt").write_text("x")
    exists = files_exist(inside)
    assert not exists(["../secret.txt"]) and not exists(["/../secret.txt"]) and not exists(["", "  "])


def test_a_rules_scoped_variables_stay_hidden_from_a_user_who_may_not_deploy() -> None:
    stored = {"project": (Variable("PROD_ONLY", "yes", environment_scope="production"),), "project_path": "g/p"}
    spec = job("j", environment="production", rules=[{"if": "$PROD_ONLY"}])
    assert run_of(spec, stored=stored).action == "run"
    assert run_of(spec, stored=stored, may_see=lambda environment: environment != "production").action == "skip"


def test_a_malformed_rule_fails_the_job_with_a_located_message() -> None:
    decision = run_of(job("j", rules=[{"if": "$A == 'x' &&"}]))
    assert decision.action == "fail" and "invalid expression `$A == 'x' &&`" in decision.reason
    decision = run_of(job("j", rules=[{"when": "on_success", "allow_failure": "yes"}]))
    assert decision.action == "fail" and decision.reason == "rules:rule allow failure should be a boolean value"


# -- when against the earlier jobs ----------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "previous", "action"),
    [
        ("on_success", "success", "run"),
        ("on_success", "failed", "skip"),
        ("on_success", "skipped", "run"),  # stage scheduling: skipped jobs do not block
        ("on_failure", "failed", "run"),
        ("on_failure", "success", "skip"),
        ("always", "failed", "run"),
    ],
)
def test_when_against_the_earlier_stages(when: str, previous: str, action: str) -> None:
    build = job("build", "build")
    assert run_of(job("j", when=when), [build], {"build": previous}).action == action


def test_stage_scheduling_counts_only_earlier_stages() -> None:
    build, sibling, later = job("build", "build"), job("sibling"), job("later", "deploy")
    asked: list[str] = []
    found = earlier([build, sibling, later, job("j")], {"sibling": "failed", "later": "failed"}, asked=asked)
    assert run_of(job("j"), earlier=found).action == "run"
    assert asked == ["build"]


def test_a_blocking_manual_job_nobody_played_holds_later_stages() -> None:
    gate = job("gate", "build", rules=[{"when": "manual"}])
    found = earlier([gate, job("j")], {"gate": "skipped"}, blocked=["gate"])
    decision = run_of(job("j", when="always"), earlier=found)
    assert (decision.action, decision.reason) == ("skip", "pipeline blocked by manual job 'gate'")


def test_needs_count_only_the_needed_jobs() -> None:
    a, b = job("a", "build"), job("b", "build")
    assert run_of(job("j", needs=["a"]), [a, b], {"b": "failed"}).action == "run"
    # DAG scheduling: a skipped needed job skips the job
    assert run_of(job("j", needs=["a"]), [a, b], {"a": "skipped"}).action == "skip"


def test_a_needed_job_left_out_by_rules_fails_unless_optional() -> None:
    a = job("a", "build")
    found = earlier([a], excluded=["a"])
    decision = run_of(job("j", needs=["a"]), earlier=found)
    assert (
        decision.action == "fail" and "'j' job needs 'a' job, but 'a' does not exist in the pipeline" in decision.reason
    )
    assert run_of(job("j", needs=[{"job": "a", "optional": True}]), earlier=found).action == "run"


def test_dependencies_on_a_job_left_out_fail() -> None:
    a = job("a", "build")
    decision = run_of(job("j", dependencies=["a"]), earlier=earlier([a], excluded=["a"]))
    assert decision.action == "fail" and "dependency a does not exist in the pipeline" in decision.reason


# -- rules:needs ----------------------------------------------------------------------------


def test_a_rules_needs_replace_the_jobs_needs() -> None:
    a, b = job("a", "build"), job("b", "build")
    spec = job("j", needs=["a"], rules=[{"if": "$SWITCH", "needs": ["b"]}, {"when": "on_success"}])
    states = {"a": "failed", "b": "success"}
    switched = run_of(spec, [a, b], states, pipeline=[Variable("SWITCH", "1")])
    assert (switched.action, switched.needs, switched.rule_needs) == ("run", (Need("b"),), (Need("b"),))
    plain = run_of(spec, [a, b], states)
    assert (plain.action, plain.needs, plain.rule_needs) == ("skip", (Need("a"),), None)


def test_a_rules_needs_make_a_stage_job_a_dag_job() -> None:
    a, b = job("a", "build"), job("b", "build")
    spec = job("j", rules=[{"needs": [{"job": "a", "artifacts": False}]}])
    decision = run_of(spec, [a, b], {"b": "failed"})
    assert (decision.action, decision.needs) == ("run", (Need("a", artifacts=False),))


def test_an_empty_rules_needs_keeps_the_jobs_needs() -> None:
    # GitLab: Result#build_attributes applies needs only when present (gitlab-org/gitlab#421004).
    a = job("a", "build")
    decision = run_of(job("j", needs=["a"], rules=[{"needs": []}]), [a], {"a": "failed"})
    assert (decision.action, decision.needs) == ("skip", (Need("a"),))


def test_rules_needs_misuse_fails_with_gitlabs_message() -> None:
    a = job("a", "build")
    cross = run_of(job("j", rules=[{"needs": [{"project": "g/other", "job": "x", "ref": "main"}]}]), [a])
    assert cross.action == "fail"
    assert cross.reason == "jobs:j:rules:rule:needs config uses invalid types: cross_dependency"
    unknown = run_of(job("j", rules=[{"needs": ["nope"]}]), [a])
    assert unknown.action == "fail" and "'nope' does not exist in the pipeline" in unknown.reason
    assert run_of(job("j", rules=[{"needs": [{"job": "nope", "optional": True}]}]), [a]).action == "run"
    # A rule needing a job of a later stage is refused at load (test_rule_load_checks.py).
    malformed = run_of(job("j", rules=[{"needs": [{"artifacts": True}]}]), [a])
    assert malformed.action == "fail" and malformed.reason.startswith("jobs:j:rules:rule:needs config")


def test_a_rules_need_on_a_parallel_job_means_every_instance() -> None:
    one, two = job("build 1/2", "build"), job("build 2/2", "build")
    decision = run_of(job("j", rules=[{"needs": ["build"]}]), [one, two], {"build 2/2": "failed"})
    assert (decision.action, decision.needs) == ("skip", (Need("build 1/2"), Need("build 2/2")))
    assert set(needed_instances("build", {"build 1/2", "build 2/2", "j"})) == {"build 1/2", "build 2/2"}
    assert needed_instances("j", {"j"}) == ("j",) and needed_instances("nope", {"j"}) == ()


def test_rules_needs_lists_what_any_rule_may_need() -> None:
    spec = job("j", rules=[{"if": "$A", "needs": ["a", {"job": "b"}]}, {"needs": ["a", "c"]}, {"when": "never"}])
    assert rules_needs(spec) == ("a", "b", "c")
    assert rules_needs(job("j")) == ()


# -- when: delayed and rules:start_in -------------------------------------------------------


def test_start_in_of_the_job_or_of_the_rule() -> None:
    assert run_of(job("j", when="delayed", start_in="5 minutes")).start_in == 300
    rule = run_of(job("j", rules=[{"when": "delayed", "start_in": "1 hour"}]))
    assert (rule.action, rule.when, rule.start_in) == ("run", "delayed", 3600)
    kept = run_of(job("j", when="delayed", start_in="30s", rules=[{"if": "$CI"}]))
    assert (kept.when, kept.start_in) == ("delayed", 30)
    assert run_of(job("j", when="delayed", start_in="30s", rules=[{"when": "on_success"}])).start_in is None


def test_rules_start_in_misuse_fails_with_gitlabs_message() -> None:
    over = run_of(job("j", rules=[{"when": "delayed", "start_in": "8 days"}]))
    assert (over.action, over.reason) == ("fail", "jobs:j:rules:rule start in should not exceed the limit")
    assert run_of(job("j", rules=[{"when": "delayed", "start_in": "1 week"}])).start_in == MAX_START_IN
    bad = run_of(job("j", rules=[{"when": "delayed", "start_in": "soon"}]))
    assert (bad.action, bad.reason) == ("fail", "jobs:j:rules:rule start in should be a duration")
    stray = run_of(job("j", rules=[{"when": "on_success", "start_in": "1 hour"}]))
    assert (stray.action, stray.reason) == ("fail", "jobs:j:rules:rule config contains disallowed keys: start_in")


def test_rules_only_without_earlier_jobs() -> None:
    decision = decide(job("j", needs=["x"], rules=[{"when": "always"}]), RUN, stored={})
    assert (decision.action, decision.when) == ("run", "always")
