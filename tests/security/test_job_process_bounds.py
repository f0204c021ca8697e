"""A job cannot outlive its task, nor flood its log (issue 11: kill safety, the job log limit).

Real processes, no mocks: a worker process (a small Python program running one job through
``airflow_ci_vars.runner`` as the operator does) is killed with SIGKILL while its job runs;
what is left is looked up in ``/proc``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from airflow_ci_vars.isolation import Sandbox, Unisolated, choose_isolation
from airflow_ci_vars.masking import Masker
from airflow_ci_vars.runner import DEFAULT_OUTPUT_LIMIT, ScriptRunner, Workspace, run_job, sweep_workspaces

WORKER = textwrap.dedent(
    """
    import sys
    from airflow_ci_vars.isolation import choose_isolation
    from airflow_ci_vars.masking import Masker
    from airflow_ci_vars.runner import ScriptRunner, Workspace, run_job
    from airflow_ci_vars.variables.resolve import VariableFile

    root, mode, tag = sys.argv[1:4]
    isolation = choose_isolation(mode)
    with Workspace(None, root=root) as ws:
        secret = ws.temp_dir / "KUBECONFIG"
        ws.write_files([VariableFile("KUBECONFIG", str(secret), "apiVersion: v1 # token")])
        print(ws.path, flush=True)
        runner = ScriptRunner(Masker([]), print, isolation=isolation)
        run_job(script=[f"sleep {tag}1 & sleep {tag}2"], env={"PATH": "/usr/bin:/bin"}, workspace=ws,
                masker=Masker([]), emit=print, runner=runner)
    """
)


def processes_with(argument: str) -> list[int]:
    """Pids whose command line holds ``argument`` as a word."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                words = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argument.encode() in words:
                found.append(int(entry))
    return found


def wait_for(predicate: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("mode", ["sandbox", "none"])
def test_sigkilled_task_leaves_no_process_and_no_file_behind(mode: str, tmp_path: Path) -> None:
    root = tmp_path / "jobs"
    root.mkdir(mode=0o700)
    tag = str(4000 + os.getpid() % 5000)
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(root), mode, tag], stdout=subprocess.PIPE, text=True)
    assert worker.stdout is not None
    base = Path(worker.stdout.readline().strip())
    assert wait_for(lambda: processes_with(f"{tag}1") and processes_with(f"{tag}2")), "the job did not start"
    assert (base / "project.tmp" / "KUBECONFIG").exists()

    worker.send_signal(signal.SIGKILL)  # no handler, no finally: what the kernel does is all
    worker.wait()

    if mode == "sandbox":
        # The sandbox's init dies with the task process and takes every job process with it.
        assert wait_for(lambda: not processes_with(f"{tag}1") and not processes_with(f"{tag}2"))
    else:
        # Without a PID namespace, the job's shell dies with the task (parent-death signal) and
        # its children are left to the next task start on this worker (docs/security.md).
        assert processes_with(f"{tag}1")
    assert base.exists()  # nothing runs after SIGKILL in the task process itself

    assert sweep_workspaces(root) == 1  # what the operator does when the next task starts
    assert wait_for(lambda: not processes_with(f"{tag}1") and not processes_with(f"{tag}2"))
    assert not base.exists()  # workspace and file variables removed


def test_sweep_leaves_live_workspaces_alone(tmp_path: Path) -> None:
    root = tmp_path / "jobs"
    root.mkdir(mode=0o700)
    with Workspace(None, root=root) as live:
        assert sweep_workspaces(root) == 0
        assert live.project_dir.exists()


def test_workspace_root_planted_by_another_user_is_refused(tmp_path: Path) -> None:
    planted = tmp_path / "planted"
    planted.mkdir(mode=0o777)
    planted.chmod(0o777)  # whatever the umask: writable by anyone, as a squatter would leave it
    with pytest.raises(PermissionError, match="writable by it only"):
        Workspace(None, root=planted).__enter__()


@pytest.mark.parametrize("mode", ["sandbox", "none"])
def test_a_flooding_job_keeps_running_with_its_log_capped(mode: str, tmp_path: Path) -> None:
    isolation: Sandbox | Unisolated = choose_isolation(mode)  # type: ignore[assignment]
    lines: list[str] = []
    runner = ScriptRunner(Masker([]), lines.append, isolation=isolation)
    with Workspace(None, root=tmp_path) as ws:
        outcome = run_job(
            # 47 MB of output, then proof that the job went on after the cap.
            script=["seq 1 6000000", "echo finished > done.txt", "cat done.txt"],
            env={"PATH": "/usr/bin:/bin"},
            workspace=ws,
            masker=Masker([]),
            emit=lines.append,
            runner=runner,
        )
        assert outcome.exit_code == 0
        assert (ws.project_dir / "done.txt").read_text() == "finished\n"
    kept = sum(len(line.encode()) + 1 for line in lines[:-2])
    assert kept <= DEFAULT_OUTPUT_LIMIT
    assert lines[-2:] == [
        f"Job's log exceeded limit of {DEFAULT_OUTPUT_LIMIT} bytes.",
        "Job execution will continue but no more output will be collected.",
    ]
    assert "finished" not in lines  # collected no more, as gitlab-runner does
