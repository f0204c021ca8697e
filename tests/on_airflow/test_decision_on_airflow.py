"""The decision on real Airflow (``dag.test()``): ``rules:needs``, ``rules:start_in`` and
``when: delayed`` through a trigger, and ``explain`` deciding as the operator does."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from dag_files import DAGS, load_dag_file

from airflow_ci_vars.cli import main

SHA = "ab" * 20


def states_of(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}


def dags() -> Any:
    return load_dag_file("ci_decision.py", "ci_decision_under_test")


def test_rules_needs_replace_the_needs_that_count_and_the_dotenv_received(tmp_path: Path) -> None:
    dag = dags().needs
    assert dag.get_task("job").upstream_task_ids >= {"broken", "fine"}  # the DAG waits for the union
    out = tmp_path / "out"
    out.mkdir()
    states = states_of(dag.test(run_conf={"variables": {"OUT": str(out), "SWITCH": "1"}}))
    assert (states["broken"], states["job"]) == ("failed", "success")
    assert (out / "job.txt").read_text().strip() == "FROM_FINE=yes"  # from the rule's need only
    (out / "job.txt").unlink()
    states = states_of(dag.test(run_conf={"variables": {"OUT": str(out)}}))
    assert states["job"] == "skipped" and not (out / "job.txt").exists()  # the job's own need failed


def test_rules_start_in_delays_the_job_through_a_trigger(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    dag = dags().delayed
    out = tmp_path / "out"
    out.mkdir()
    started = time.time()
    with caplog.at_level("INFO"):
        states = states_of(dag.test(run_conf={"variables": {"OUT": str(out), "WAIT": "1"}}))
    assert states["later"] == "success"
    assert int((out / "later.txt").read_text()) >= int(started) + 3
    assert "running trigger in line" in caplog.text  # deferred: no worker slot held while waiting
    started = time.time()
    states = states_of(dag.test(run_conf={"variables": {"OUT": str(out)}}))
    assert states["later"] == "success" and int((out / "later.txt").read_text()) < int(started) + 3


def test_explain_and_the_operator_agree_on_the_pipeline_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = dags().source
    file = str(DAGS / "pipelines/decision_source/.gitlab-ci.yml")
    settings = DAGS / "settings.yml"
    out = tmp_path / "out"
    out.mkdir()

    def explained(*argv: str) -> str:
        capsys.readouterr()  # what dag.test printed
        code = main(
            ["explain", file, "--settings", str(settings), "--job", "nightly", "--key", "CI_PIPELINE_SOURCE", *argv]
        )
        printed, notes = capsys.readouterr()
        assert code == 0, notes
        return printed.splitlines()[1] + notes

    # A run triggered by hand, and explain with its defaults: not in the pipeline.
    assert states_of(dag.test(run_conf={"variables": {"OUT": str(out)}}))["nightly"] == "skipped"
    assert "rules: GitLab would not add 'nightly'" in explained()
    # A scheduled run on a tag at that commit, and explain told so: it runs.
    conf = {"variables": {"OUT": str(out)}, "pipeline_source": "schedule", "ref": "v1", "ref_type": "tag", "sha": SHA}
    assert states_of(dag.test(run_conf=conf))["nightly"] == "success"
    shown = explained("--pipeline-source", "schedule", "--ref", "v1", "--ref-type", "tag", "--sha", SHA)
    assert shown.startswith("decision: run (when: on_success")


def test_the_dag_waits_for_every_job_a_rule_may_need(tmp_path: Path) -> None:
    from airflow_ci_vars.dag_factory import gitlab_ci_dag

    ci = tmp_path / ".gitlab-ci.yml"
    ci.write_text(
        "stages: [build, test]\n"
        "build: {stage: build, parallel: 2, script: make}\n"
        "lint: {stage: test, script: lint}\n"
        "job:\n"
        "  stage: test\n"
        "  needs: []\n"
        "  rules: [{if: $A, needs: [build]}, {if: $B, needs: [lint]}, {when: on_success}]\n"
        "  script: run\n"
    )
    dag = gitlab_ci_dag(ci, dag_id="decision_edges")
    shown = {t.task_id: t.task_display_name for t in dag.tasks}
    upstream = {shown[t] for t in dag.get_task(next(i for i, n in shown.items() if n == "job")).upstream_task_ids}
    assert upstream == {"build 1/2", "build 2/2", "lint"}
