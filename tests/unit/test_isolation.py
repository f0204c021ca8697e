"""The isolation modes (airflow_ci_vars.isolation) and the workspace copy that leaves the store out."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from airflow_ci_vars.errors import IsolationError
from airflow_ci_vars.isolation import JobUser, Sandbox, Unisolated, choose_isolation
from airflow_ci_vars.masking import Masker
from airflow_ci_vars.runner import ScriptRunner, Workspace, run_job


def run_in(isolation: Sandbox | Unisolated, ws: Workspace, *script: str) -> tuple[int, list[str]]:
    lines: list[str] = []
    runner = ScriptRunner(Masker([]), lines.append, isolation=isolation)
    outcome = run_job(
        script=list(script), env={"PATH": "/usr/bin:/bin"}, workspace=ws, masker=Masker([]), emit=lines.append,
        runner=runner,
    )  # fmt: skip
    return outcome.exit_code, [line for line in lines if not line.startswith("$ ")]


def test_modes_by_name() -> None:
    assert isinstance(choose_isolation("none"), Unisolated)
    assert isinstance(choose_isolation("sandbox"), Sandbox)
    assert isinstance(choose_isolation(" AUTO "), Sandbox)  # bubblewrap works on this machine
    with pytest.raises(IsolationError, match=r"container jobs run through airflow_ci_vars\.containers"):
        choose_isolation("docker")  # the operator's boundary runs them (operators/sandboxing.py)
    with pytest.raises(IsolationError, match="unknown mode 'container'"):
        choose_isolation("container")
    with pytest.raises(IsolationError, match="unknown mode 'chroot'; expected one of auto, sandbox, none"):
        choose_isolation("chroot")


def test_sandbox_asked_for_but_missing_is_an_error_never_a_silent_downgrade() -> None:
    with pytest.raises(IsolationError, match="isolation = sandbox, but bubblewrap not found"):
        choose_isolation("sandbox", bwrap="/nonexistent/bwrap")
    fallback = choose_isolation("auto", bwrap="/nonexistent/bwrap")
    assert isinstance(fallback, Unisolated)
    assert fallback.reason is not None and "bubblewrap not found" in fallback.reason


def test_job_user_is_never_root() -> None:
    with pytest.raises(IsolationError, match="'root' is root"):
        JobUser.named("root")
    with pytest.raises(IsolationError, match="no such OS user: 'no-such-user-x'"):
        JobUser.named("no-such-user-x")
    assert JobUser.named("nobody").uid != 0


def test_sandboxed_job_runs_unprivileged_in_its_workspace(tmp_path: Path) -> None:
    with Workspace(None, root=tmp_path) as ws:
        code, out = run_in(
            choose_isolation("sandbox"), ws,
            "id -un", "pwd", "echo built > out.txt", "echo $HOME", "touch /usr/x 2>/dev/null || echo read-only",
        )  # fmt: skip
        assert code == 0
        assert out == ["nobody", str(ws.project_dir), "/tmp", "read-only"]
        assert (ws.project_dir / "out.txt").read_text() == "built\n"


def test_hidden_worker_files_inside_system_folders_are_masked(tmp_path: Path) -> None:
    secret = Path("/etc") / f"ci-vars-test-{os.getpid()}.cfg"
    secret.write_text("sql_alchemy_conn = postgresql://airflow:pw@db/airflow\n")
    secret.chmod(0o644)  # world-readable: only the mask keeps it from the job
    try:
        with Workspace(None, root=tmp_path) as ws:
            plain = choose_isolation("sandbox")
            code, out = run_in(plain, ws, f"cat {secret}")
            assert code == 0 and out == ["sql_alchemy_conn = postgresql://airflow:pw@db/airflow"]
            hiding = choose_isolation("sandbox", hidden=[str(secret)])
            code, out = run_in(hiding, ws, f"cat {secret} 2>/dev/null || echo unreadable")
            assert code == 0 and out == ["unreadable"]
    finally:
        secret.unlink()


def test_the_store_never_enters_the_workspace_by_any_name(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / ".gitlab-ci.yml").write_text("job: {script: [true]}\n")
    settings = project / "settings.yml"
    settings.write_text("instance: {variables: [{key: TOKEN, value: s3cr3t-value, masked: true}]}\n")
    (project / "sub").mkdir()
    os.link(settings, project / "sub" / "innocent.yml")  # the same file under another name
    with Workspace(project, root=tmp_path / "jobs", exclude=[settings]) as ws:
        copied = sorted(str(p.relative_to(ws.project_dir)) for p in ws.project_dir.rglob("*"))
    assert copied == [".gitlab-ci.yml", "sub"]


def test_a_jobs_tmp_is_its_own_and_outlives_each_script(tmp_path: Path) -> None:
    """script and after_script share /tmp (one container in GitLab); another job never sees it."""
    sandbox = choose_isolation("sandbox")
    lines: list[str] = []
    with Workspace(None, root=tmp_path) as ws:
        runner = ScriptRunner(Masker([]), lines.append, isolation=sandbox)
        outcome = run_job(
            script=["echo cache > /tmp/cache"], after_script=["cat /tmp/cache", "rm /tmp/cache"],
            env={"PATH": "/usr/bin:/bin"}, workspace=ws, masker=Masker([]), emit=lines.append, runner=runner,
        )  # fmt: skip
        assert outcome.exit_code == 0 and outcome.after_script_exit_code == 0
        assert "cache" in lines
    with Workspace(None, root=tmp_path) as other:
        assert run_in(sandbox, other, "ls /tmp/cache 2>/dev/null || echo absent")[1] == ["absent"]
