"""The one loader (``pipeline.loader``): a pipeline, or every located problem at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_ci_vars.errors import PipelineError
from airflow_ci_vars.pipeline.loader import MAX_LISTED_JOBS, check_pipeline, collapse_warnings, load_pipeline
from airflow_ci_vars.pipeline.model import PipelineInvalidError, PipelineProblem
from airflow_ci_vars.pipeline.seed import parse_seed, seed_variables


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_every_error_and_warning_at_once_in_file_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        ".gitlab-ci.yml",
        "a:\n  image: alpine\n  script: [x]\n  rules:\n    - if: '$X =='\n"
        "b:\n  script: [x]\n  needs: [missing]\n"
        "workflow:\n  rules:\n    - if: 12\n",
    )
    loaded = check_pipeline(path)
    assert loaded.pipeline is None
    assert [str(p) for p in loaded.problems()] == [
        f"{path}:2:3: jobs:a:image is ignored: it only configures a GitLab runner",
        f"{path}:5:7: jobs:a:rules:0:if invalid expression `$X ==`: Invalid left operand (at character 3)",
        f"{path}:8:3: b job: undefined need: missing",
        f"{path}:11:7: workflow:rules:0:if invalid expression `12`: must be a string, but got int",
    ]
    assert [p.severity for p in loaded.warnings] == ["warning"]
    with pytest.raises(PipelineInvalidError) as raised:
        loaded.unwrap()
    assert set(raised.value.problems) == set(loaded.errors)


def test_a_file_that_does_not_compose_is_one_located_error(tmp_path: Path) -> None:
    path = write(tmp_path, ".gitlab-ci.yml", "include: missing.yml\njob:\n  script: [x]\n")
    loaded = check_pipeline(path)
    [error] = loaded.errors
    assert error.where == f"{path}:1:1"
    assert "missing.yml" in error.message
    with pytest.raises(PipelineError) as raised:
        load_pipeline(path)
    assert str(raised.value) == str(error)
    assert check_pipeline(tmp_path / "absent.yml").errors[0].where == str(tmp_path / "absent.yml")


def test_include_rules_see_the_seed_and_exists_the_files_next_to_the_pipeline(tmp_path: Path) -> None:
    write(tmp_path, "extra.yml", "extra:\n  script: [x]\n")
    write(tmp_path, "main-only.yml", "release:\n  script: [x]\n")
    text = """\
include:
  - {local: extra.yml, rules: [{exists: [extra.yml]}]}
  - {local: main-only.yml, rules: [{if: '$CI_COMMIT_BRANCH == "main"'}]}
  - {local: absent.yml, rules: [{exists: [absent.yml]}]}
job: {script: [x]}
"""
    path = write(tmp_path, ".gitlab-ci.yml", text)
    loaded = check_pipeline(path, seed=parse_seed())
    assert loaded.include_rules
    assert loaded.pipeline is not None
    assert [j.name for j in loaded.pipeline.jobs] == ["extra", "release", "job"]
    pipeline = load_pipeline(path, seed=seed_variables(ref="feature"))
    assert [j.name for j in pipeline.jobs] == ["extra", "job"]
    assert not check_pipeline(write(tmp_path, "plain.yml", "job:\n  script: [x]\n")).include_rules


def test_a_malformed_include_rules_if_is_located_at_the_include(tmp_path: Path) -> None:
    write(tmp_path, "other.yml", "other:\n  script: [x]\n")
    path = write(
        tmp_path, "ci.yml", "include:\n  - local: other.yml\n    rules:\n      - if: '$X =='\njob:\n  script: [x]\n"
    )
    with pytest.raises(PipelineError) as raised:
        load_pipeline(path, seed=parse_seed())
    assert str(raised.value) == (
        f"{path}:2:5: include:rules:if invalid expression `$X ==`: Invalid left operand (at character 3)"
    )


def test_a_child_pipeline_with_a_malformed_rules_if_is_refused(tmp_path: Path) -> None:
    child = write(tmp_path, "child.yml", "unit:\n  script: [x]\n  rules:\n    - if: '$A && '\n")
    path = write(tmp_path, ".gitlab-ci.yml", "parent:\n  image: alpine\n  trigger:\n    include: child.yml\n")
    loaded = check_pipeline(path)
    [error] = loaded.errors
    assert error.where == f"{child}:4:7"
    assert error.message.startswith("jobs:unit:rules:0:if invalid expression `$A && `")
    # The parent's warnings are kept when its child pipeline is refused.
    assert [w.where for w in loaded.warnings] == [f"{path}:2:3"]


def test_warnings_collapse_to_one_per_written_keyword_bounded() -> None:
    many = [
        PipelineProblem(f"jobs:job{i}:image is ignored: it only configures a GitLab runner", "ci.yml:2:3", "warning")
        for i in range(MAX_LISTED_JOBS + 5)
    ]
    other = PipelineProblem("jobs:x:tags: only the first tag (a) is used", "ci.yml:9:3", "warning")
    collapsed = collapse_warnings([*many, other, many[0]])
    assert [str(w) for w in collapsed] == [
        "ci.yml:2:3: image is ignored: it only configures a GitLab runner (jobs "
        + ", ".join(f"job{i}" for i in range(MAX_LISTED_JOBS))
        + " and 5 more)",
        str(other),
    ]
    assert collapse_warnings(many[:1]) == many[:1]


def test_the_pipeline_loaded_carries_its_collapsed_warnings(tmp_path: Path) -> None:
    path = write(tmp_path, ".gitlab-ci.yml", "default:\n  image: alpine\na:\n  script: [x]\nb:\n  script: [x]\n")
    loaded = check_pipeline(path)
    assert loaded.pipeline is not None and loaded.errors == ()
    assert [w.message for w in loaded.warnings] == ["image is ignored: it only configures a GitLab runner (jobs a, b)"]
