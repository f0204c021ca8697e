"""Predefined variables and GitLab's slug algorithms (spec §7)."""

from __future__ import annotations

import pytest

from airflow_ci_vars import RunContext, environment_slug, ref_slug
from airflow_ci_vars.variables.predefined import job_group_name, predefined_variables, slugify


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("production", "production"),
        ("review/feature-1", "review-feature-1-1q251u"),
        ("Production", "production-iis43c"),
        ("123", "env-123-7j7izn"),
        ("a" * 30, "aaaaaaaaaaaaaaaaa-16ttu2"),
        ("dev-", "dev"),
    ],
)
def test_environment_slug(name: str, slug: str) -> None:
    assert environment_slug(name) == slug
    assert len(environment_slug(name)) <= 24


@pytest.mark.parametrize(
    ("ref", "slug"),
    [
        ("feature/ABC_123", "feature-abc-123"),
        ("release/1.2.3", "release-1-2-3"),
        ("Ünïcode/branch", "n-code-branch"),
        ("main", "main"),
        ("-x-", "x"),
    ],
)
def test_ref_slug(ref: str, slug: str) -> None:
    assert ref_slug(ref) == slug


def test_slug_is_truncated_to_63_characters_then_trimmed() -> None:
    assert ref_slug("a" * 62 + "/b") == "a" * 62
    assert len(ref_slug("x" * 100)) == 63


def test_slugify_can_keep_dots() -> None:
    assert slugify("v1.2.3", allow_dots=True) == "v1.2.3"


@pytest.mark.parametrize(
    ("name", "group"),
    [("rspec 1/3", "rspec"), ("job: [a, b]", "job"), ("build: [linux, amd64]", "build"), ("plain", "plain")],
)
def test_job_group_name(name: str, group: str) -> None:
    assert job_group_name(name) == group


def env(ctx: RunContext) -> dict[str, str]:
    return {v.key: v.value for v in predefined_variables(ctx)}


def test_branch_pipeline_variables() -> None:
    got = env(
        RunContext(
            job_name="build: [linux, amd64]",
            stage="build",
            project_path="acme/data/etl",
            ref="feature/X",
            sha="0123456789abcdef0123456789abcdef01234567",
            default_branch="main",
            pipeline_id="42",
            pipeline_source="api",
            project_dir="/builds/acme/data/etl",
            node_index=2,
            node_total=4,
        )
    )
    assert got["CI"] == "true"
    assert got["CI_JOB_NAME"] == "build: [linux, amd64]"
    assert got["CI_JOB_NAME_SLUG"] == "build---linux--amd64"  # no squeezing, as Gitlab::Utils.slugify
    assert got["CI_JOB_STAGE"] == "build"
    assert got["CI_PIPELINE_ID"] == "42"
    assert got["CI_PIPELINE_SOURCE"] == "api"
    assert got["CI_COMMIT_REF_NAME"] == "feature/X"
    assert got["CI_COMMIT_REF_SLUG"] == "feature-x"
    assert got["CI_COMMIT_BRANCH"] == "feature/X"
    assert "CI_COMMIT_TAG" not in got
    assert got["CI_COMMIT_SHORT_SHA"] == "01234567"
    assert got["CI_DEFAULT_BRANCH"] == "main"
    assert got["CI_PROJECT_PATH"] == "acme/data/etl"
    assert got["CI_PROJECT_NAME"] == "etl"
    assert got["CI_PROJECT_NAMESPACE"] == "acme/data"
    assert got["CI_PROJECT_DIR"] == "/builds/acme/data/etl"
    assert got["CI_NODE_INDEX"] == "2"
    assert got["CI_NODE_TOTAL"] == "4"
    assert got["CI_COMMIT_REF_PROTECTED"] == "false"


def test_tag_pipeline_has_tag_and_no_branch() -> None:
    got = env(RunContext(job_name="j", ref="v1.0", ref_type="tag", ref_protected=True))
    assert got["CI_COMMIT_TAG"] == "v1.0"
    assert "CI_COMMIT_BRANCH" not in got
    assert got["CI_COMMIT_REF_PROTECTED"] == "true"


def test_non_parallel_job_has_node_total_one_and_no_index() -> None:
    got = env(RunContext(job_name="j"))
    assert got["CI_NODE_TOTAL"] == "1"
    assert "CI_NODE_INDEX" not in got


def test_environment_variables_only_with_environment() -> None:
    assert "CI_ENVIRONMENT_NAME" not in env(RunContext(job_name="j"))
    got = env(RunContext(job_name="j", environment_name="review/x"))
    assert got["CI_ENVIRONMENT_NAME"] == "review/x"
    assert got["CI_ENVIRONMENT_ACTION"] == "start"
