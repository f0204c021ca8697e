"""Who may run what, on a real Airflow (``dag.test()``): the operator refuses before any secret or script.

``dag.test()`` records the user ``dag_test``; tests/on_airflow/dags/settings_restricted.yml makes it a
developer of ``acme/restricted`` (pipeline variables restricted to maintainers) and ``acme/open``.
Every role and channel (REST, the form, Human-in-the-loop answers, schedules, downstream
pipelines) is tried on the real stack in tests/stack/test_permissions_matrix.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from dag_files import load_dag_file

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("as_dag_test_user")]

JOBS = ("build", "review", "production", "targeted", "guessed")
SECRETS = ("prod-pw-Q7x9Lm2k", "review-tk-R4n8Ws1p")
PROTECTED_REF = "You do not have sufficient permission to run a pipeline on 'main'."
VARIABLES = "Insufficient permissions to set pipeline variables: user 'dag_test' has role developer"
DEPLOY = "The environment this job is deploying to is protected. Only users with permission may successfully run"


def run(dag_name: str, capfd: pytest.CaptureFixture[str], **conf: Any) -> tuple[dict[str, str], str]:
    dags = load_dag_file("ci_permissions.py", "ci_permissions_under_test")
    dr = getattr(dags, dag_name).test(run_conf=conf)
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dr.get_task_instances()}
    logged = "".join(capfd.readouterr())
    for secret in SECRETS:
        assert secret not in logged
    return states, logged


def test_a_developer_cannot_run_on_the_protected_default_branch(capfd: pytest.CaptureFixture[str]) -> None:
    states, logged = run("restricted", capfd)  # no ref: the default branch
    assert {states[job] for job in JOBS} == {"failed"}
    assert PROTECTED_REF in logged and "protected ref 'main': allowed to run: maintainer" in logged
    assert " ran " not in logged  # no script ran


def test_a_developer_runs_on_a_feature_branch_but_cannot_deploy_to_production(
    capfd: pytest.CaptureFixture[str],
) -> None:
    states, logged = run("restricted", capfd, ref="feature/x")
    assert (states["build"], states["review"], states["production"]) == ("success", "success", "failed")
    assert "build ran greeting=none prod=0" in logged
    assert "review ran token=18" in logged  # review/* allows developers to deploy
    assert DEPLOY in logged and "environment 'production': allowed to deploy: maintainer" in logged
    assert "production ran" not in logged
    # The rule reads a production-scoped value the developer may not see: it does not match.
    assert states["guessed"] == "skipped" and "guessed ran" not in logged


def test_pipeline_variables_and_the_environment_are_restricted_channels(capfd: pytest.CaptureFixture[str]) -> None:
    for conf, named in [
        ({"variables": {"GREETING": "hi"}}, "variables"),
        ({"build_parameters": {"GREETING": "hi"}}, "build_parameters"),
        ({"environment": "production"}, "environment"),
        ({"manual": ["production"]}, "manual"),
    ]:
        states, logged = run("restricted", capfd, ref="feature/x", **conf)
        assert {states[job] for job in JOBS} == {"failed"}, conf
        assert VARIABLES in logged and f"(the run sets: {named})" in logged
        assert " ran " not in logged


def test_conf_environment_obeys_the_protected_environment(capfd: pytest.CaptureFixture[str]) -> None:
    states, logged = run("open_project", capfd, ref="feature/x", environment="production")
    assert states["build"] == "failed"  # a job without environment: deploys to the run's environment
    assert DEPLOY in logged and "build ran" not in logged
    states, logged = run("open_project", capfd, ref="feature/x", environment="review/mine")
    assert states["build"] == "success" and "build ran greeting=none prod=0" in logged


def test_an_environment_named_by_a_pipeline_variable_is_checked_once_expanded(
    capfd: pytest.CaptureFixture[str],
) -> None:
    states, logged = run("open_project", capfd, ref="feature/x", variables={"TARGET_ENV": "production"})
    assert states["targeted"] == "failed" and "targeted ran" not in logged
    assert "environment 'production'" in logged
    states, logged = run("open_project", capfd, ref="feature/x", variables={"TARGET_ENV": "review/a"})
    assert states["targeted"] == "success" and "targeted ran password=0 token=18" in logged


def test_the_local_user_runs_everything(capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_ci_vars.auth import LOCAL_RUN_ENV

    monkeypatch.setenv(LOCAL_RUN_ENV, "1")  # what airflow-ci-vars run sets
    states, logged = run("restricted", capfd, variables={"GREETING": "hi"})
    assert states["build"] == states["production"] == states["guessed"] == "success"
    assert "build ran greeting=hi" in logged and "production ran password=16" in logged
