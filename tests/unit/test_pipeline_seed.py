"""include:rules see the variables GitLab knows when it creates a pipeline."""

from __future__ import annotations

from pathlib import Path

from airflow_ci_vars.pipeline.seed import include_rule_matcher, seed_variables


def test_seed_variables_have_ref_and_pipeline_variables_but_no_job_variables() -> None:
    seen = seed_variables(ref="v1.0", ref_type="tag", project="acme/etl", pipeline={"DEPLOY": "yes"})
    assert seen["CI_COMMIT_TAG"] == "v1.0" and "CI_COMMIT_BRANCH" not in seen
    assert seen["CI_PROJECT_PATH"] == "acme/etl" and seen["DEPLOY"] == "yes"
    assert not [k for k in seen if k.startswith(("CI_JOB_", "CI_PIPELINE_ID"))]


def test_include_rules_if_and_exists(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM x")
    matches = include_rule_matcher(seed_variables(ref="main"), tmp_path)
    assert matches({"if": '$CI_COMMIT_BRANCH == "main"'})
    assert not matches({"if": "$CI_COMMIT_TAG"})
    assert not matches({"if": '$CI_COMMIT_BRANCH == "main"', "when": "never"})
    assert matches({"exists": ["Dockerfile"]})
    assert not matches({"exists": ["missing/*.yml"]})
