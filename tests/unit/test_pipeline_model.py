"""The pipeline model: instances, needs, validation with GitLab's messages (spec §9)."""

from __future__ import annotations

import pytest
import yaml

from airflow_ci_vars.pipeline.durations import parse_duration
from airflow_ci_vars.pipeline.model import Pipeline, PipelineInvalidError, build_pipeline, task_id_for


def build(text: str) -> Pipeline:
    data = yaml.safe_load(text)
    stages = data.pop("stages", None)
    variables = data.pop("variables", None)
    workflow = data.pop("workflow", None)
    return build_pipeline(file=".gitlab-ci.yml", stages=stages, variables=variables, jobs=data, workflow=workflow)


def errors(text: str) -> list[str]:
    with pytest.raises(PipelineInvalidError) as err:
        build(text)
    return [p.message for p in err.value.problems]


def test_parallel_instances_are_named_like_gitlab() -> None:
    p = build("rspec: {parallel: 3, script: [x]}")
    assert [j.name for j in p.jobs] == ["rspec 1/3", "rspec 2/3", "rspec 3/3"]
    assert [(j.spec.node_index, j.spec.node_total) for j in p.jobs] == [(1, 3), (2, 3), (3, 3)]


def test_matrix_instances_product_per_entry_in_key_order() -> None:
    p = build(
        """
deploy:
  script: [x]
  parallel:
    matrix:
      - {PROVIDER: [aws, gcp], STACK: [a, b]}
      - {PROVIDER: ovh, STACK: c}
"""
    )
    assert [j.name for j in p.jobs] == [
        "deploy: [aws, a]",
        "deploy: [aws, b]",
        "deploy: [gcp, a]",
        "deploy: [gcp, b]",
        "deploy: [ovh, c]",
    ]
    last = p.jobs[-1]
    assert last.spec.node_total == 5 and last.spec.node_index == 5
    assert last.spec.variables is not None
    assert {v.key: v.value for v in last.spec.variables} == {"PROVIDER": "ovh", "STACK": "c"}


def test_matrix_variables_override_job_variables() -> None:
    p = build("j: {script: [x], variables: {OS: any, KEEP: k}, parallel: {matrix: [{OS: [linux]}]}}")
    assert p.jobs[0].spec.variables is not None
    assert {v.key: v.value for v in p.jobs[0].spec.variables} == {"OS": "linux", "KEEP": "k"}


def test_too_many_matrix_jobs() -> None:
    values = ", ".join(str(i) for i in range(15))
    text = f"j: {{script: [x], parallel: {{matrix: [{{A: [{values}], B: [{values}]}}]}}}}"
    assert errors(text) == ["jobs:j:parallel:matrix config generates too many jobs (maximum is 200)"]


def test_needs_of_a_parallel_job_expand_to_all_instances() -> None:
    p = build("rspec: {stage: build, parallel: 2, script: [x]}\nreport: {needs: [rspec], script: [y]}")
    assert p.job("report").spec.needs is not None
    assert [n.job for n in p.job("report").spec.needs] == ["rspec 1/2", "rspec 2/2"]


def test_needs_matrix_selector_picks_instances() -> None:
    p = build(
        """
build:
  stage: build
  script: [x]
  parallel: {matrix: [{OS: [linux, mac], ARCH: [amd64, arm64]}]}
test:
  script: [y]
  needs: [{job: build, parallel: {matrix: [{OS: linux, ARCH: [amd64, arm64]}]}}]
"""
    )
    assert p.job("test").spec.needs is not None
    assert [n.job for n in p.job("test").spec.needs] == ["build: [linux, amd64]", "build: [linux, arm64]"]


def test_needs_matrix_selector_on_a_job_without_matrix_is_an_error() -> None:
    msgs = errors("b: {stage: build, script: [x]}\nt: {script: [y], needs: [{job: b, parallel: {matrix: [{N: foo}]}}]}")
    assert msgs == ["t job: need b uses parallel:matrix, but b has no parallel:matrix"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "test-job: {stage: test, script: [x]}\nbuild-job: {stage: build, needs: [test-job], script: [y]}",
            "build-job job: need test-job is not defined in current or prior stages",
        ),
        ("test-job: {needs: [invalid], script: [x]}", "test-job job: undefined need: invalid"),
        ("job: {script: [x], needs: [job]}", "The pipeline has circular dependencies: job"),
        (
            "t: {stage: invalid, script: [x]}",
            "t job: chosen stage invalid does not exist; available stages are .pre, build, test, deploy, .post",
        ),
        ("t: {script: [x], dependencies: [invalid]}", "t job: undefined dependency: invalid"),
        ("t: {script: [x], when: never}", "jobs:t when unknown value: never"),
        ("t: {stage: build}", "jobs:t config should implement the script:, run:, or trigger: keyword"),
        ("t: {script: []}", "jobs:t:script config should be an array containing strings and arrays of strings"),
        ("a: {script: [x], needs: [b, b]}\nb: {stage: build, script: [y]}", "a has the following needs duplicated: b."),
        (
            "a: {stage: build, script: [x]}\nb: {stage: build, script: [x]}\n"
            "c: {script: [y], needs: [a], dependencies: [b]}",
            "jobs:c dependencies the b should be part of needs",
        ),
        ("t: {script: [x], retry: 3}", "jobs:t:retry max can be 0, 1 or 2"),
        (
            "t: {script: [x], when: delayed, start_in: 2 weeks}",
            "jobs:t start in should not exceed the limit",
        ),
        ("t: {script: [x], colour: red}", "jobs:t config contains unknown keys: colour"),
    ],
)
def test_validation_messages(text: str, message: str) -> None:
    assert message in errors(text)


def test_cycle_through_several_jobs() -> None:
    msgs = errors("a: {script: [x], needs: [b]}\nb: {script: [x], needs: [c]}\nc: {script: [x], needs: [a]}")
    assert msgs == ["The pipeline has circular dependencies: a, b, c"]


def test_optional_need_of_missing_job_is_fine() -> None:
    p = build("t: {script: [x], needs: [{job: maybe, optional: true}]}")
    assert p.job("t").spec.needs == ()


def test_same_stage_need_is_allowed() -> None:
    p = build("a: {script: [x]}\nb: {script: [x], needs: [a]}")
    assert p.job("b").spec.needs is not None and p.job("b").spec.needs[0].job == "a"


def test_runner_only_keywords_are_warnings() -> None:
    p = build("t: {script: [x], image: alpine, tags: [docker], cache: {paths: [x]}}")
    assert sorted(w.message for w in p.warnings) == [
        "jobs:t:cache is ignored: it only configures a GitLab runner",
        "jobs:t:image is ignored: it only configures a GitLab runner",
    ]


def test_tags_are_kept_on_every_instance() -> None:
    p = build("t: {script: [x], parallel: 2, tags: [worker-2]}\nu: {script: [x]}")
    assert [j.spec.tags for j in p.jobs] == [("worker-2",), ("worker-2",), ()]
    assert p.warnings == ()


def test_several_tags_warn_that_only_the_first_is_the_queue() -> None:
    p = build("t: {script: [x], tags: [linux, gpu]}")
    assert p.job("t").spec.tags == ("linux", "gpu")
    assert [(w.severity, w.message) for w in p.warnings] == [
        (
            "warning",
            "jobs:t:tags: only the first tag (linux) is used, as the task's queue: "
            "an Airflow task has one queue, not a set of runner tags",
        )
    ]


def test_variable_in_tags_warns_it_is_not_expanded() -> None:
    p = build("t: {script: [x], tags: [$RUNNER]}")
    assert p.job("t").spec.tags == ("$RUNNER",)
    assert [w.message for w in p.warnings] == [
        "jobs:t:tags: variables are not expanded in tags (the queue is fixed when the DAG is parsed)"
    ]


@pytest.mark.parametrize("tags", ["docker", "[docker, 3]", "{a: b}"])
def test_tags_must_be_an_array_of_strings(tags: str) -> None:
    assert errors(f"t: {{script: [x], tags: {tags}}}") == ["jobs:t:tags config should be an array of strings"]


def test_stage_default_and_custom_stages() -> None:
    p = build("stages: [lint, build]\nt: {stage: lint, script: [x]}\nu: {stage: build, script: [y]}")
    assert p.stages == ("lint", "build")  # the loader wraps .pre/.post; the model takes them as given
    assert [j.stage_index for j in p.jobs] == [0, 1]


def test_retry_timeout_and_delayed() -> None:
    p = build(
        "t: {script: [x], retry: {max: 2, when: [script_failure]}, timeout: 1h 30m,"
        " when: delayed, start_in: 30 minutes}"
    )
    job = p.jobs[0]
    assert (job.spec.retry, job.spec.retry_when, job.spec.timeout, job.spec.when, job.spec.start_in) == (
        2,
        ("script_failure",),
        5400,
        "delayed",
        1800,
    )


def test_trigger_job_needs_no_script() -> None:
    p = build("down: {stage: deploy, trigger: {project: acme/other, strategy: depend}}")
    assert p.jobs[0].spec.trigger == {"project": "acme/other", "strategy": "depend"}


def test_task_ids_are_valid_stable_and_distinct() -> None:
    names = ["build", "build: [linux, amd64]", "build: [linux: amd64]", "rspec 1/3", "deploy to prod"]
    ids = [task_id_for(n) for n in names]
    assert ids[0] == "build"
    assert len(set(ids)) == len(ids)
    assert all(all(c.isalnum() or c in "_.-" for c in i) for i in ids)
    assert ids == [task_id_for(n) for n in names]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1h 30m", 5400), ("90 minutes", 5400), ("3600", 3600), ("1:30:00", 5400), ("2 days", 172800), ("30s", 30)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "10 parsecs", "-5"])
def test_bad_durations(text: str) -> None:
    assert parse_duration(text) is None


def test_needs_matrix_expressions_select_the_consumers_own_values() -> None:
    p = build(
        """
build:
  stage: build
  script: [x]
  parallel: {matrix: [{PROVIDER: [aws, gcp], STACK: [app, db]}]}
deploy:
  script: [y]
  parallel: {matrix: [{PROVIDER: [aws, gcp], STACK: [app, db]}]}
  needs:
    - job: build
      parallel: {matrix: [{PROVIDER: "$[[ matrix.PROVIDER ]]", STACK: "$[[matrix.STACK]]"}]}
"""
    )
    needs = {j.name: [n.job for n in j.spec.needs or ()] for j in p.jobs if j.base_name == "deploy"}
    assert needs["deploy: [gcp, db]"] == ["build: [gcp, db]"]
    assert needs["deploy: [aws, app]"] == ["build: [aws, app]"]


def test_needs_matrix_expression_with_unknown_identifier() -> None:
    msgs = errors(
        "b: {stage: build, script: [x], parallel: {matrix: [{A: [1, 2]}]}}\n"
        "t: {script: [y], parallel: {matrix: [{A: [1]}]},"
        " needs: [{job: b, parallel: {matrix: [{A: '$[[ matrix.NOPE ]]'}]}}]}"
    )
    assert msgs == ["t job: need b: unknown matrix identifier NOPE in $[[ matrix.* ]]"]


def test_partial_matrix_selector_and_optional_zero_match() -> None:
    p = build(
        """
b:
  stage: build
  script: [x]
  parallel: {matrix: [{ARCH: [x64, arm], OS: [linux, mac]}]}
partial:
  script: [y]
  needs: [{job: b, parallel: {matrix: [{ARCH: x64}]}}]
zero:
  script: [z]
  needs: [{job: b, optional: true, parallel: {matrix: [{ARCH: riscv}]}}]
"""
    )
    assert [n.job for n in p.job("partial").spec.needs or ()] == ["b: [x64, linux]", "b: [x64, mac]"]
    assert p.job("zero").spec.needs == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("b: {script: [x]}\nd: {script: [y], needs: b}", "jobs:d:needs config should be an array"),
        ("b: {script: [x]}\nd: {script: [y], needs: [~]}", "jobs:d:needs config can't contain empty entries"),
        ("j: {script: [x], rules: []}", "jobs:j:rules config can't be blank"),
    ],
)
def test_needs_and_rules_shapes(text: str, message: str) -> None:
    assert message in errors(text)


def test_needs_empty_with_dependencies_is_valid() -> None:
    p = build("one: {stage: build, script: [x]}\nd: {stage: deploy, needs: [], dependencies: [one], script: [y]}")
    assert p.job("d").spec.needs == ()
