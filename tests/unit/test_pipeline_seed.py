"""include:rules see the variables GitLab knows when it creates a pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_ci_vars.cli import main
from airflow_ci_vars.pipeline.decision import files_exist
from airflow_ci_vars.pipeline.loader import load_pipeline
from airflow_ci_vars.pipeline.seed import include_rule_matcher, parse_seed, seed_variables


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


def test_include_rules_exists_never_looks_outside_the_project_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "a" / "b"
    project.mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("x")
    (project / "extra.yml").write_text("extra:\n  script: [x]\n")
    (project / "local.txt").write_text("x")
    outside = ["../../secret.txt", "a/../../../secret.txt", str(tmp_path / "secret.txt"), "../../*"]
    ci = project / ".gitlab-ci.yml"
    ci.write_text(
        "include:\n  - local: extra.yml\n    rules:\n      - exists: " + json.dumps(outside) + "\n"
        "main:\n  script: [x]\n"
    )
    assert [j.name for j in load_pipeline(ci, seed=parse_seed()).jobs] == ["main"]
    assert main(["graph", str(ci)]) == 0 and "extra" not in capsys.readouterr().out
    matches = include_rule_matcher(seed_variables(ref="main"), project)
    assert not any(matches({"exists": [pattern]}) for pattern in outside)
    assert matches({"exists": ["/local.txt"]}) and matches({"exists": ["./local.txt"]})
    # rules:exists of a job: the same function (decision.files_exist -> seed.paths_exist)
    assert not files_exist(project)(outside) and files_exist(project)(["local.txt"])
