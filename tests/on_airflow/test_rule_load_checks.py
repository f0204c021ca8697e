"""What the loader refuses in a job's rules before any run, as GitLab does when it creates the
pipeline: the factory (a real Airflow DAG) and ``lint`` refuse the same file with the same
located messages (``pipeline.rule_syntax``, ``pipeline.rule_entry``, ``model._needs_cycle``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_ci_vars.cli import main
from airflow_ci_vars.dag_factory import gitlab_ci_dag
from airflow_ci_vars.pipeline.model import PipelineInvalidError

pytestmark = pytest.mark.airflow

STAGES = "stages: [build, test, deploy]\n"


def refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> list[str]:
    """The lines ``lint`` prints for ``text``, after checking the factory refuses it with the same."""
    ci = tmp_path / ".gitlab-ci.yml"
    ci.write_text(text)
    code = main(["lint", str(ci)])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    lines = err.splitlines()
    with pytest.raises(PipelineInvalidError) as raised:
        gitlab_ci_dag(ci, dag_id="refused")
    assert str(raised.value).splitlines() == lines
    return [line.removeprefix(f"{ci}:") for line in lines]


def test_a_rules_need_on_an_undefined_job_is_refused_at_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        STAGES + "a:\n  stage: build\n  script: [x]\n"
        "j:\n  stage: test\n  script: [x]\n  rules:\n    - if: $A\n    - needs: [a, nope]\n"
    )
    assert refused(tmp_path, capsys, text) == ["10:7: j job: undefined need: nope"]


def test_an_optional_rules_need_on_an_undefined_job_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ci = tmp_path / ".gitlab-ci.yml"
    ci.write_text(STAGES + "j:\n  script: [x]\n  rules:\n    - needs: [{job: nope, optional: true}]\n")
    assert main(["lint", str(ci)]) == 0
    dag = gitlab_ci_dag(ci, dag_id="optional_rules_need")
    assert dag is not None and "j" in dag.task_ids


def test_a_rules_need_on_a_later_stage_is_refused_at_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (
        STAGES + "later:\n  stage: deploy\n  script: [x]\n"
        "j:\n  stage: test\n  script: [x]\n  rules:\n    - needs: [later, later]\n"
    )
    assert refused(tmp_path, capsys, text) == [
        "9:7: j job: need later is not defined in current or prior stages",
        "9:7: j has the following needs duplicated: later.",
    ]


def test_rules_start_in_is_checked_at_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (
        "a:\n  script: [x]\n  rules:\n    - when: delayed\n      start_in: 8 days\n"
        "b:\n  script: [x]\n  rules:\n    - when: on_success\n      start_in: 1 hour\n"
        "c:\n  script: [x]\n  rules:\n    - when: delayed\n"
        "d:\n  script: [x]\n  rules:\n    - when: delayed\n      start_in: soon\n"
    )
    assert refused(tmp_path, capsys, text) == [
        "5:7: jobs:a:rules:rule start in should not exceed the limit",
        "10:7: jobs:b:rules:rule config contains disallowed keys: start_in",
        "14:7: jobs:c:rules:rule start in can't be blank",
        "19:7: jobs:d:rules:rule start in should be a duration",
    ]


def test_rules_allow_failure_and_needs_shapes_are_checked_at_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        "a:\n  script: [x]\n  rules:\n    - allow_failure: {exit_codes: [1]}\n"
        "b:\n  script: [x]\n  rules:\n    - needs: [{project: g/p, job: x, ref: main}]\n"
        "c:\n  script: [x]\n  rules:\n    - needs: a\n"
    )
    assert refused(tmp_path, capsys, text) == [
        "4:7: jobs:a:rules:rule allow failure should be a boolean value",
        "8:7: jobs:b:rules:rule:needs config uses invalid types: cross_dependency",
        "12:7: jobs:c:rules:rule:needs config can only be a hash or an array",
    ]


def test_a_needs_cycle_through_rules_is_refused_at_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    both_rules = (
        "a:\n  script: [x]\n  rules:\n    - needs: [b]\nb:\n  script: [x]\n  rules:\n    - if: $X\n    - needs: [a]\n"
    )
    assert refused(tmp_path, capsys, both_rules) == ["4:7: The pipeline has circular dependencies: a, b"]
    (tmp_path / "other").mkdir()
    mixed = "a:\n  script: [x]\n  needs: [b]\nb:\n  script: [x]\n  rules:\n    - needs: [a]\n"
    assert refused(tmp_path / "other", capsys, mixed) == ["3:3: The pipeline has circular dependencies: a, b"]


def test_rules_needs_without_a_cycle_still_give_edges(tmp_path: Path) -> None:
    ci = tmp_path / ".gitlab-ci.yml"
    ci.write_text("a:\n  script: [x]\nb:\n  script: [x]\n  rules:\n    - needs: [a]\n")
    assert main(["lint", str(ci)]) == 0
    dag = gitlab_ci_dag(ci, dag_id="rules_needs_edges")
    assert dag is not None and "a" in dag.get_task("b").upstream_task_ids
