"""CIJobOperator on a real Airflow, in-process with ``dag.test()`` (SQLite metadata DB).

Each DAG lives in tests/airflow/dags (``dag.test()`` needs DAGs in the configured bundle); jobs
write what they see into ``$OUT``, a directory passed as a pipeline variable in the run's conf.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from dag_files import DAGS, load_dag_file

pytestmark = pytest.mark.airflow


def load_dag(attr: str) -> Any:
    return getattr(load_dag_file("ci_semantics.py", "ci_semantics_under_test"), attr)


def run(attr: str, out: Path, **conf: Any) -> dict[str, str]:
    """Run a test DAG with $OUT = out; return {task_id: state}."""
    dag = load_dag(attr)
    variables = {"OUT": str(out), **conf.pop("variables", {})}
    dr = dag.test(run_conf={"variables": variables, **conf})
    return {
        ti.task_id: str(ti.state.value if hasattr(ti.state, "value") else ti.state) for ti in dr.get_task_instances()
    }


def read_env(out: Path) -> dict[str, str]:
    lines = (out / "env.txt").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


@pytest.fixture(scope="module")
def env_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    out = tmp_path_factory.mktemp("env")
    states = run("env_dag", out, ref="feature/login", variables={"OVERRIDE_ME": "from-conf"})
    return states, out


def test_job_succeeds(env_run: tuple[dict[str, str], Path]) -> None:
    assert env_run[0] == {"deploy": "success"}


def test_precedence_project_beats_job_and_groups(env_run: tuple[dict[str, str], Path]) -> None:
    env = read_env(env_run[1])
    assert env["LEVEL"] == "project"
    assert env["ONLY_INSTANCE"] == "from-instance"
    assert env["FROM_DEFAULT"] == "default-value"


def test_pipeline_variables_from_conf_beat_project(env_run: tuple[dict[str, str], Path]) -> None:
    assert read_env(env_run[1])["OVERRIDE_ME"] == "from-conf"


def test_environment_scope_and_nested_expansion(env_run: tuple[dict[str, str], Path]) -> None:
    env = read_env(env_run[1])
    assert env["CI_ENVIRONMENT_NAME"] == "review/feature-login"
    assert env["BUCKET"] == "bucket-review"
    assert env["DERIVED"] == "bucket-review/default-value"
    assert env["PRICE"] == "$5"


def test_protected_variable_absent_on_unprotected_ref(env_run: tuple[dict[str, str], Path]) -> None:
    env = read_env(env_run[1])
    assert "DEPLOY_KEY" not in env
    assert env["CI_COMMIT_REF_PROTECTED"] == "false"
    assert env["CI_COMMIT_REF_NAME"] == "feature/login"


def test_protected_variable_present_on_protected_ref(tmp_path: Path) -> None:
    assert run("env_dag", tmp_path, ref="main") == {"deploy": "success"}
    env = read_env(tmp_path)
    assert env["DEPLOY_KEY"] == "deploy-key-protected1"
    assert env["CI_COMMIT_REF_PROTECTED"] == "true"


def test_worker_airflow_environment_is_not_inherited(env_run: tuple[dict[str, str], Path]) -> None:
    assert "AIRFLOW_HOME" in os.environ  # the worker (this test process) has them...
    env = read_env(env_run[1])
    assert not [k for k in env if k.startswith("AIRFLOW")]  # ...the job does not
    assert "PATH" in env


def test_predefined_variables(env_run: tuple[dict[str, str], Path]) -> None:
    env = read_env(env_run[1])
    assert env["CI"] == "true"
    assert env["CI_JOB_NAME"] == "deploy"
    assert env["CI_JOB_STAGE"] == "deploy"
    assert env["CI_PROJECT_PATH"] == "acme/data/etl"
    assert env["CI_PIPELINE_SOURCE"] == "api"
    assert env["CI_PIPELINE_ID"].isdigit()
    assert env["CI_PROJECT_DIR"] == (env_run[1] / "pwd.txt").read_text().strip()


def test_file_variable_is_a_private_file_removed_afterwards(env_run: tuple[dict[str, str], Path]) -> None:
    out = env_run[1]
    assert (out / "file_mode.txt").read_text().strip() == "600"
    assert (out / "file_content.txt").read_text() == "apiVersion: v1\nkind: Config\n"
    path = Path((out / "file_path.txt").read_text().strip())
    assert path.name == "KUBECONFIG_DATA"
    assert not path.exists()


def test_working_directory_is_a_fresh_copy_removed_afterwards(env_run: tuple[dict[str, str], Path]) -> None:
    out = env_run[1]
    assert (out / "project_files.txt").read_text().split() == ["app.py"]
    workdir = Path((out / "pwd.txt").read_text().strip())
    assert workdir != DAGS / "project"
    assert not workdir.exists()


@pytest.fixture(scope="module")
def scripts_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    out = tmp_path_factory.mktemp("scripts")
    return run("scripts_dag", out), out


def test_before_script_and_script_run_in_order(scripts_run: tuple[dict[str, str], Path]) -> None:
    states, out = scripts_run
    assert states["ok"] == "success"
    assert (out / "order.txt").read_text().split() == ["before", "script"]


def test_after_script_sees_gitlab_env_but_not_script_exports(scripts_run: tuple[dict[str, str], Path]) -> None:
    assert (scripts_run[1] / "after_ok.txt").read_text().strip() == "after::appended:success"


def test_failing_command_stops_the_job_and_fails_the_task(scripts_run: tuple[dict[str, str], Path]) -> None:
    states, out = scripts_run
    assert states["fails"] == "failed"
    assert (out / "fails.txt").read_text().split() == ["first"]


def test_after_script_runs_after_failure_and_cannot_change_result(scripts_run: tuple[dict[str, str], Path]) -> None:
    assert (scripts_run[1] / "after_fails.txt").read_text().strip() == "after:failed"
    assert scripts_run[0]["fails"] == "failed"


def test_pipefail(scripts_run: tuple[dict[str, str], Path]) -> None:
    assert scripts_run[0]["pipefail"] == "failed"
    assert not (scripts_run[1] / "pipefail.txt").exists()


def test_allow_failure_exit_codes(scripts_run: tuple[dict[str, str], Path]) -> None:
    assert scripts_run[0]["allowed"] == "success"
    assert scripts_run[0]["not_allowed_code"] == "failed"


@pytest.fixture(scope="module")
def dotenv_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    out = tmp_path_factory.mktemp("dotenv")
    return run("dotenv_dag", out), out


def lines(out: Path, name: str) -> list[str]:
    path = out / name
    return path.read_text().splitlines() if path.exists() else []


def test_no_keyword_receives_every_earlier_stage_job(dotenv_run: tuple[dict[str, str], Path]) -> None:
    states, out = dotenv_run
    assert states["all_earlier"] == "success"
    got = dict(line.split("=", 1) for line in lines(out, "all_earlier.txt"))
    # build2 comes after build1 in the pipeline: its SHARED wins (documented order)
    assert got == {
        "BUILD_VERSION": "v1.0.0",
        "SHARED": "from-build2",
        "OTHER": "o",
        "REF_HOME": "test/x",  # dotenv values are expanded in the receiving job
    }


def test_dependencies_limit_the_sources(dotenv_run: tuple[dict[str, str], Path]) -> None:
    out = dotenv_run[1]
    assert lines(out, "deps_build1.txt") == ["BUILD_VERSION=v1.0.0", "SHARED=from-build1"]
    assert lines(out, "deps_none.txt") == []


def test_needs_order_decides_collisions(dotenv_run: tuple[dict[str, str], Path]) -> None:
    out = dotenv_run[1]
    assert lines(out, "needs_order.txt") == ["BUILD_VERSION=v1.0.0", "OTHER=o", "SHARED=from-build1"]


def test_needs_without_artifacts_receives_nothing(dotenv_run: tuple[dict[str, str], Path]) -> None:
    assert lines(dotenv_run[1], "needs_no_artifacts.txt") == []


@pytest.fixture(scope="module")
def refused_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    out = tmp_path_factory.mktemp("refused")
    return run("refused_dotenv_dag", out), out


def test_invalid_dotenv_fails_the_job_and_hands_nothing_on(refused_run: tuple[dict[str, str], Path]) -> None:
    states, out = refused_run
    assert states["bad_dotenv"] == "failed"
    assert states["after"] == "success"  # when: always runs after a failed stage
    assert "GOOD=1" not in lines(out, "after.txt")


def test_failed_stage_skips_later_on_success_jobs(refused_run: tuple[dict[str, str], Path]) -> None:
    states, out = refused_run
    assert states["on_success_job"] == "skipped"
    assert not (out / "on_success_ran").exists()


def test_missing_dotenv_is_only_a_warning(dotenv_run: tuple[dict[str, str], Path]) -> None:
    assert dotenv_run[0]["missing_dotenv"] == "success"


def test_dotenv_holding_a_masked_value_is_refused(refused_run: tuple[dict[str, str], Path]) -> None:
    states, out = refused_run
    assert states["secret_dotenv"] == "failed"
    assert not any(line.startswith("LEAK=") for line in lines(out, "after.txt"))


@pytest.fixture(scope="module")
def artifacts_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    out = tmp_path_factory.mktemp("artifacts")
    return run("artifacts_dag", out), out


def test_artifacts_paths_and_exclude_reach_later_stages(artifacts_run: tuple[dict[str, str], Path]) -> None:
    states, out = artifacts_run
    assert states["test"] == "success"
    files = lines(out, "test_files.txt")
    assert "./dist/pkg.whl" in files
    assert "./dist/sub/deep.txt" in files
    assert "./dist/sub/debug.log" not in files  # exclude
    assert "./logs/build.log" not in files  # not in paths


def test_untracked_artifacts_are_the_files_the_job_created(artifacts_run: tuple[dict[str, str], Path]) -> None:
    files = lines(artifacts_run[1], "test_files.txt")
    assert "./made-by-job.txt" in files
    assert files.count("./app.py") == 1  # the project's own file is not an artifact of 'untracked'


def test_artifacts_when_on_failure(artifacts_run: tuple[dict[str, str], Path]) -> None:
    states, out = artifacts_run
    assert states["on_failure"] == "success"  # allow_failure
    assert "./crash.txt" in lines(out, "test_files.txt")


def test_needs_without_artifacts_gets_no_files(artifacts_run: tuple[dict[str, str], Path]) -> None:
    files = lines(artifacts_run[1], "no_artifacts_files.txt")
    assert files == ["./app.py"]


def test_environment_url_from_dotenv_is_the_extra_link(artifacts_run: tuple[dict[str, str], Path]) -> None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(XComModel)
            .filter(XComModel.dag_id == "ci_artifacts", XComModel.task_id == "build")
            .order_by(XComModel.timestamp.desc())
            .all()
        )
    values = {row.key: row.value for row in rows}
    assert "review.example.com/main" in str(values["_link_EnvironmentLink"])


def test_execution_timeout_kills_the_process_group_and_removes_files(tmp_path: Path) -> None:
    import time

    assert run("timeout_dag", tmp_path) == {"slow": "failed"}
    pid = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"background process {pid} of the timed-out job is still running")
    assert not Path((tmp_path / "file_path.txt").read_text().strip()).exists()
    assert not Path((tmp_path / "pwd.txt").read_text().strip()).exists()


def test_rules_are_evaluated_at_run_time(tmp_path: Path) -> None:
    states = run("rules_dag", tmp_path, ref="feature/x", variables={"DEPLOY": "yes"})
    assert states["on_main_only"] == "skipped"
    assert not (tmp_path / "on_main_only").exists()
    assert states["by_pipeline_variable"] == "success"
    assert (tmp_path / "by_pipeline_variable").read_text().strip() == "from-rule"  # rules:variables
    assert states["unexpanded"] == "success"  # rules:if sees unexpanded values
    assert states["rule_allows_failure"] == "success"


def test_rules_exclude_jobs_without_skipping_others(tmp_path: Path) -> None:
    states = run("rules_dag", tmp_path, ref="main")
    assert states["on_main_only"] == "success"
    assert states["by_pipeline_variable"] == "skipped"  # when: never
    assert states["unexpanded"] == "success"


def test_needing_a_job_left_out_by_rules(tmp_path: Path) -> None:
    states = run("excluded_need_dag", tmp_path)
    assert states["maybe"] == "skipped"
    assert states["needs_it"] == "failed"  # GitLab refuses such a pipeline
    assert states["optional_need"] == "success" and (tmp_path / "optional_need").exists()
