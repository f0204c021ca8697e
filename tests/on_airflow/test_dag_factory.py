"""The DAG factory: shape of the DAG and GitLab's semantics end to end with ``dag.test()``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from dag_files import load_dag_file

from airflow_ci_vars.dag_factory import gitlab_ci_dag
from airflow_ci_vars.pipeline.model import PipelineInvalidError

pytestmark = pytest.mark.airflow


def factory_dags() -> Any:
    return load_dag_file("ci_factory.py", "ci_factory_under_test")


def upstream(dag: Any, task_id: str) -> set[str]:
    return set(dag.get_task(task_id).upstream_task_ids)


def test_one_task_per_job_instance_named_as_gitlab_names_them() -> None:
    dag = factory_dags().basic
    names = {t.task_display_name for t in dag.tasks}
    assert {"build: [linux]", "build: [mac]", "unit", "deploy", "approve", "cleanup", "flaky"} <= names
    assert "stage: test" in names and "stage: deploy" in names and "pipeline status" in names


def test_stage_gates_keep_edges_linear() -> None:
    dag = factory_dags().basic
    gate_test = next(t.task_id for t in dag.tasks if t.task_display_name == "stage: test")
    gate_deploy = next(t.task_id for t in dag.tasks if t.task_display_name == "stage: deploy")
    builds = {t.task_id for t in dag.tasks if t.task_display_name.startswith("build:")}
    assert upstream(dag, gate_test) == builds
    assert upstream(dag, gate_deploy) == {"unit", "skipped_by_rules", "flaky"}
    assert upstream(dag, "deploy") == {gate_deploy}
    assert upstream(dag, "skipped_by_rules") == {gate_test}


def test_needs_are_direct_edges() -> None:
    dag = factory_dags().basic
    linux = next(t.task_id for t in dag.tasks if t.task_display_name == "build: [linux]")
    assert upstream(dag, "unit") == {linux}


@pytest.fixture(scope="module")
def basic_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, str], Path]:
    out = tmp_path_factory.mktemp("factory")
    dr = factory_dags().basic.test(run_conf={"variables": {"OUT": str(out)}, "manual": ["approve"]})
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dr.get_task_instances()}
    return str(getattr(dr.state, "value", dr.state)), states, out


def test_pipeline_runs_like_gitlab(basic_run: tuple[str, dict[str, str], Path]) -> None:
    state, states, out = basic_run
    assert state == "success"
    assert states["pipeline"] == "success"
    assert sorted((out / "build.txt").read_text().splitlines()) == ["build: [linux] 1/2", "build: [mac] 2/2"]
    assert (out / "unit.txt").read_text().split() == ["BUILT_linux=yes"]  # only the needed instance's dotenv
    assert (out / "deploy.txt").read_text().strip() == "etl review-main-yi2y9f"


def test_rules_skip_without_cascading(basic_run: tuple[str, dict[str, str], Path]) -> None:
    _, states, out = basic_run
    assert states["skipped_by_rules"] == "skipped"
    assert states["deploy"] == "success"
    assert not (out / "skipped_by_rules").exists()


def test_allow_failure_and_manual_played_through_conf(basic_run: tuple[str, dict[str, str], Path]) -> None:
    _, states, out = basic_run
    assert states["flaky"] == "success"
    assert states["approve"] == "success" and (out / "approved").exists()
    assert states["cleanup"] == "skipped"  # on_failure: nothing failed


def test_failed_job_fails_the_pipeline_and_runs_on_failure_jobs(tmp_path: Path) -> None:
    dr = factory_dags().failing.test(run_conf={"variables": {"OUT": str(tmp_path)}})
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dr.get_task_instances()}
    assert states["build"] == "failed"
    assert states["test"] == "skipped" and not (tmp_path / "test_ran").exists()
    assert states["cleanup"] == "success" and (tmp_path / "cleanup_ran").exists()
    assert states["report"] == "success" and (tmp_path / "report_ran").exists()
    assert states["pipeline"] == "failed"
    assert str(getattr(dr.state, "value", dr.state)) == "failed"


def test_invalid_pipeline_names_file_and_line(tmp_path: Path) -> None:
    ci = tmp_path / ".gitlab-ci.yml"
    ci.write_text("a:\n  stage: build\n  script: [x]\nb:\n  stage: build\n  needs: [nope]\n  script: [y]\n")
    with pytest.raises(PipelineInvalidError) as err:
        gitlab_ci_dag(ci, dag_id="broken")
    assert "b job: undefined need: nope" in str(err.value)
    assert f"{ci}:6" in str(err.value)


def test_workflow_rules_decide_whether_the_pipeline_runs(tmp_path: Path) -> None:
    dags = factory_dags()
    dr = dags.workflow.test(run_conf={"variables": {"OUT": str(tmp_path)}, "ref": "feature/x"})
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dr.get_task_instances()}
    assert states["job"] == "skipped" and not (tmp_path / "target.txt").exists()
    dr = dags.workflow.test(run_conf={"variables": {"OUT": str(tmp_path)}, "ref": "main"})
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dr.get_task_instances()}
    assert states["job"] == "success"
    assert (tmp_path / "target.txt").read_text().strip() == "production"  # workflow:rules:variables


@pytest.fixture(scope="module")
def parent_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, str], Path]:
    out = tmp_path_factory.mktemp("parent")
    dr = factory_dags().parent.test(run_conf={"variables": {"OUT": str(out)}, "ref": "feature/x"})
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dr.get_task_instances()}
    return str(getattr(dr.state, "value", dr.state)), states, out


def test_child_pipeline_is_a_task_group_after_its_trigger_job() -> None:
    dag = factory_dags().parent
    assert upstream(dag, "deploy-child__child.prepare") == {"deploy-child__child.created"}
    assert upstream(dag, "failing-child__child.broken") == {"failing-child"}
    # strategy: depend -> the trigger job waits for its child pipeline; later stages wait for it
    assert upstream(dag, "deploy-child") == {"deploy-child__child.prepare", "deploy-child__child.release"}
    gate_after = next(t.task_id for t in dag.tasks if t.task_display_name == "stage: after")
    assert upstream(dag, gate_after) == {"deploy-child", "failing-child"}


def test_child_jobs_receive_forwarded_variables_as_pipeline_variables(
    parent_run: tuple[str, dict[str, str], Path],
) -> None:
    _, states, out = parent_run
    assert states["deploy-child__child.prepare"] == "success"
    # Forwarded yaml variables (expanded with the trigger job's variables) beat the child job's
    # own; the child's jobs say CI_PIPELINE_SOURCE=parent_pipeline; the trigger job's dotenv
    # (BUILT, from the parent's build job) comes along with forward:pipeline_variables.
    assert (out / "prepare.txt").read_text().strip() == (
        "GLOBAL_VAR=global FORWARDED=feature/x-global JOB_VAR=from the parent SOURCE=parent_pipeline BUILT=yes"
    )
    assert (out / "release.txt").read_text().strip() == "VERSION=1.2.1 CHILD_GLOBAL=child global"


def test_inherit_variables_false_forwards_no_global_variables(parent_run: tuple[str, dict[str, str], Path]) -> None:
    _, _, out = parent_run
    assert (out / "broken.txt").read_text().strip() == "GLOBAL_VAR=unset"


def test_child_pipeline_status_without_depend_does_not_fail_the_parent(
    parent_run: tuple[str, dict[str, str], Path],
) -> None:
    state, states, out = parent_run
    assert states["failing-child__child.broken"] == "failed"
    assert states["failing-child"] == "success"  # the trigger job created its child and is done
    assert states["deploy-child"] == "success"
    assert states["after"] == "success" and (out / "after.txt").exists()
    assert states["pipeline"] == "success" and state == "success"


def test_depend_child_pipeline_failure_fails_the_trigger_job() -> None:
    dr = factory_dags().depend_failing.test()
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dr.get_task_instances()}
    assert states["up__child.boom"] == "failed"
    assert states["up"] == "failed"
    assert states["later"] == "skipped"  # on_success: the trigger job before it failed
    assert states["pipeline"] == "failed"


def test_trigger_job_ruled_out_creates_no_child_pipeline() -> None:
    dr = factory_dags().child_ruled_out.test()
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dr.get_task_instances()}
    assert states["up"] == "skipped"
    assert states["up__child.inner"] == "skipped"
    assert states["pipeline"] == "success"


def test_seed_002_build_version_reaches_the_next_pipeline_through_needs_project(tmp_path: Path) -> None:
    dag = factory_dags().seed002
    first = dag.test(
        run_conf={"ref": "staging", "pipeline_source": "merge_request_event", "variables": {"RELEASE": "7"}}
    )
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in first.get_task_instances()}
    assert (states["building"], states["deploying"]) == ("success", "skipped")
    second = dag.test(run_conf={"ref": "main", "variables": {"OUT": str(tmp_path)}})
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in second.get_task_instances()}
    assert (states["building"], states["deploying"]) == ("skipped", "success")
    assert (tmp_path / "deployed.txt").read_text().strip() == "deploying 1.2.7"
    # needs:pipeline: $PARENT_PIPELINE_ID -- the child pipeline's job gets the parent's job's dotenv
    assert states["child-deploy__child.announce"] == "success"
    assert (tmp_path / "announce.txt").read_text().strip() == "notes say written on main"


def test_needs_project_without_a_run_on_that_ref_fails_naming_project_job_and_ref(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    dr = factory_dags().never_built.test(run_conf={"ref": "main", "variables": {"OUT": str(tmp_path)}})
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dr.get_task_instances()}
    assert states["deploying"] == "failed" and not (tmp_path / "deployed.txt").exists()
    assert (
        "deploying job: needs:project: no successful run of job 'building' in project 'acme/never-built' "
        "on ref 'staging' has published a dotenv report"
    ) in "".join(capfd.readouterr())


def test_run_conf_keys_are_dag_params_with_json_schemas() -> None:
    params = factory_dags().conf_params.params
    assert {"variables", "build_parameters", "ref", "sha", "environment"} <= set(params)
    assert "pipeline_source" not in params  # it comes from how the run started, never from a caller
    schema = params.get_param("build_parameters").schema
    assert schema["propertyNames"] == {"pattern": "^[A-Za-z_][A-Za-z0-9_]{0,254}$"}
    assert schema["section"] == "Pipeline"


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"variables": {"1bad-": "x"}}, "Invalid input for param variables: '1bad-' does not match"),
        ({"variables": [{"key": "A"}]}, "Invalid input for param variables: 'value' is a required property"),
        ({"variables": {"A": True}}, "Invalid input for param variables: True is not of type"),
        ({"build_parameters": {"1bad": 1}}, "Invalid input for param build_parameters: '1bad' does not match"),
        ({"sha": "not-a-sha"}, "Invalid input for param sha: 'not-a-sha' does not match"),
    ],
)
def test_a_bad_conf_is_refused_by_airflow_when_the_run_is_created(conf: dict[str, Any], message: str) -> None:
    from airflow.sdk.definitions.param import ParamValidationError

    with pytest.raises(ParamValidationError, match=re.escape(message)):
        factory_dags().conf_params.test(run_conf=conf)


def test_conf_environment_scopes_variables_of_jobs_without_an_environment(tmp_path: Path) -> None:
    dr = factory_dags().conf_params.test(
        run_conf={
            "variables": {"OUT": str(tmp_path), "GREETING": "hi"},
            "build_parameters": {"BATCH": 500},
            "environment": "production",
            "ref": "release/1",
            "pipeline_source": "web",
        }
    )
    assert str(getattr(dr.state, "value", dr.state)) == "success"
    assert (tmp_path / "report.txt").read_text().split() == [
        "bucket-prod",
        "production",
        "web",
        "release/1",
        "hi",
        "500",
    ]


def test_a_rest_run_without_a_source_is_an_api_pipeline(tmp_path: Path) -> None:
    factory_dags().conf_params.test(run_conf={"variables": {"OUT": str(tmp_path)}})
    assert (tmp_path / "report.txt").read_text().split()[:4] == ["bucket-star", "none", "api", "main"]


def downstream_runs() -> list[Any]:
    from airflow.models.dagrun import DagRun

    return sorted(DagRun.find(dag_id="acme_downstream"), key=lambda r: r.run_after)


def test_trigger_project_starts_the_projects_dag_with_forwarded_variables() -> None:
    dags = factory_dags()
    dags.downstream.test()  # the downstream DAG exists in the metadata DB
    before = len(downstream_runs())
    dr = dags.upstream.test(run_conf={"ref": "feature/x", "variables": {"FROM_API": "1"}})
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dr.get_task_instances()}
    assert states["deploy"] == "success"
    runs = downstream_runs()
    assert len(runs) == before + 1
    conf = runs[-1].conf
    # CI_PIPELINE_SOURCE=pipeline downstream; the run acts for the upstream run's user
    assert conf["ref"] == "main"
    stamp = conf["ci_trigger"]  # a local run's: it counts downstream only in the same local run
    assert stamp == {"source": "pipeline", "kind": "local", "user": None, "roles": [], "project": "acme/upstream"}
    forwarded = {v["key"]: v["value"] for v in conf["variables"]}
    # YAML variables expanded once with the trigger job's variables ($$ is no escape there),
    # then the run's pipeline variables (forward:pipeline_variables)
    # (and the dotenv variables the trigger job received, with them)
    assert forwarded == {
        "GLOBAL": "global value",
        "TARGET": "feature/x-env",
        "PRICE": "$$5",
        "VERSION": "1.2.3",
        "FROM_API": "1",
    }


def test_a_forwarded_masked_value_fails_the_trigger_job_and_starts_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    dags = factory_dags()
    dags.downstream.test()
    before = len(downstream_runs())
    dr = dags.leaky.test()
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dr.get_task_instances()}
    assert states["deploy"] == "failed"
    assert len(downstream_runs()) == before
    logged = "".join(capfd.readouterr())
    refused = [line for line in logged.splitlines() if "holds a masked value; a downstream run's conf" in line]
    assert refused and all("Trigger job 'deploy': forwarded variable #" in line for line in refused)
    assert all("TOKEN" not in line for line in refused)  # by position: a key may be the secret
    assert "proj-pw-Zq81xLm4" not in logged
