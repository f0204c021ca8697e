"""The pure job model and which jobs a job receives dotenv from (spec §6.2, seed 001 examples)."""

from __future__ import annotations

import pytest
import yaml

from airflow_ci_vars.jobs import Environment, JobSpec, Need, dotenv_sources

SEED_PIPELINE = """
build-job1:
  stage: build
  script: [echo "BUILD_VERSION=v1.0.0" >> build.env]
  artifacts: {reports: {dotenv: build.env}}
build-job2:
  stage: build
  needs: []
  script: [echo "This job has no dotenv artifacts"]
test-job1:
  stage: test
  script: [echo "$BUILD_VERSION"]
  dependencies: [build-job1]
test-job2:
  stage: test
  script: [echo "$BUILD_VERSION"]
  dependencies: []
test-job3:
  stage: test
  script: [echo "$BUILD_VERSION"]
  needs: [build-job1]
test-job4:
  stage: test
  script: [echo "$BUILD_VERSION"]
  needs: [{job: build-job1, artifacts: true}]
test-job5:
  stage: deploy
  script: [echo "$BUILD_VERSION"]
  needs: [{job: build-job1, artifacts: false}]
test-job6:
  stage: deploy
  script: [echo "$BUILD_VERSION"]
  needs: [build-job2]
test-job7:
  stage: deploy
  script: [echo "$BUILD_VERSION"]
"""


@pytest.fixture(scope="module")
def pipeline() -> dict[str, JobSpec]:
    data = yaml.safe_load(SEED_PIPELINE)
    return {name: JobSpec.from_yaml(name, spec) for name, spec in data.items()}


@pytest.mark.parametrize(
    ("job", "sources"),
    [
        ("test-job1", ("build-job1",)),  # dependencies: [build-job1]
        ("test-job2", ()),  # dependencies: []
        ("test-job3", ("build-job1",)),  # needs: [build-job1]
        ("test-job4", ("build-job1",)),  # needs artifacts: true
        ("test-job5", ()),  # needs artifacts: false
        ("test-job6", ("build-job2",)),  # needs a job without dotenv: nothing arrives
        ("build-job2", ()),  # needs: []
        # no keyword: every job of earlier stages, stage order then pipeline order
        ("test-job7", ("build-job1", "build-job2", "test-job1", "test-job2", "test-job3", "test-job4")),
    ],
)
def test_dotenv_sources_follow_gitlab(pipeline: dict[str, JobSpec], job: str, sources: tuple[str, ...]) -> None:
    assert dotenv_sources(pipeline[job], pipeline.values()) == sources


def test_dependencies_narrow_needs() -> None:
    a, b = JobSpec("a", ("true",), stage="build"), JobSpec("b", ("true",), stage="build")
    job = JobSpec("c", ("true",), needs=(Need("a"), Need("b")), dependencies=("b",))
    assert dotenv_sources(job, [a, b, job]) == ("b",)


def test_order_of_needs_decides_collisions() -> None:
    a, b = JobSpec("a", ("true",), stage="build"), JobSpec("b", ("true",), stage="build")
    job = JobSpec("c", ("true",), needs=(Need("b"), Need("a")))
    assert dotenv_sources(job, [a, b, job]) == ("b", "a")


def test_same_stage_jobs_are_not_sources() -> None:
    a = JobSpec("a", ("true",), stage="test")
    b = JobSpec("b", ("true",), stage="test")
    assert dotenv_sources(b, [a, b]) == ()


def test_from_yaml_reads_the_runner_keywords() -> None:
    spec = yaml.safe_load(
        """
        stage: deploy
        before_script: echo before
        script: [[echo a, echo b], echo c]
        after_script: [echo after]
        variables: {PORT: 8080, RAW: {value: "a$b", expand: false}}
        environment: {name: review/$CI_COMMIT_REF_SLUG, url: "https://$DYN"}
        allow_failure: {exit_codes: [3, 4]}
        artifacts: {paths: [dist/], reports: {dotenv: [a.env, b.env]}}
        inherit: {variables: [ONLY]}
        """
    )
    job = JobSpec.from_yaml("deploy", spec, default_variables={"ONLY": "1", "OTHER": "2"})
    assert job.script == ("echo a", "echo b", "echo c")
    assert job.before_script == ("echo before",)
    assert job.variables is not None and {v.key: v.value for v in job.variables} == {"PORT": "8080", "RAW": "a$b"}
    assert [v.raw for v in job.variables] == [False, True]
    assert job.environment == Environment("review/$CI_COMMIT_REF_SLUG", url="https://$DYN")
    assert job.artifacts.dotenv == ("a.env", "b.env")
    assert job.artifacts.paths == ("dist/",)
    assert job.inherit_variables == ("ONLY",)
    assert job.allows_failure(3) and not job.allows_failure(1) and not job.allows_failure(0)


def test_job_without_variables_keyword_is_distinct_from_empty_variables() -> None:
    assert JobSpec.from_yaml("a", {"script": "x"}).variables is None
    assert JobSpec.from_yaml("a", {"script": "x", "variables": {}}).variables == ()


def test_allow_failure_true() -> None:
    job = JobSpec.from_yaml("a", {"script": "x", "allow_failure": True})
    assert job.allows_failure(1) and job.allows_failure(255)


def test_script_line_read_as_a_hash_is_refused() -> None:
    from airflow_ci_vars.errors import JobConfigError

    spec = yaml.safe_load("script:\n  - echo hello: world\n")
    with pytest.raises(JobConfigError, match="jobs:j:script config should be a string or a nested array") as err:
        JobSpec.from_yaml("j", spec)
    assert (err.value.job, err.value.field) == ("j", "script")
