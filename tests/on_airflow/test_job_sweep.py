"""A task killed with SIGKILL cleans nothing up; the next task started on the worker does.

A workspace left by a dead task process (its owner record names a process that is gone), with a
0600 file variable in it, is removed when the operator starts its next job; a live task's
workspace is left alone.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from dag_files import load_dag_file

from airflow_ci_vars.runner import Workspace, workspace_root

pytestmark = pytest.mark.airflow
ISOLATION = "sandbox"


def test_next_task_removes_what_a_killed_task_left() -> None:
    left = Path(workspace_root()) / f"ci-job-killed-{os.getpid()}"
    (left / "project.tmp").mkdir(parents=True)
    secret = left / "project.tmp" / "KUBECONFIG"
    secret.write_text("apiVersion: v1\n")
    secret.chmod(0o600)
    (left / ".owner").write_text("999999999 1\n")  # a pid no process has: the task is gone
    try:
        with Workspace(None) as live:  # a live task's: this process owns it
            dag = load_dag_file("examples.py", "examples_for_sweep").dag
            dr = dag.test(run_conf={"ref": "feature/sweep"})
            states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dr.get_task_instances()}
            assert states == {"build": "success", "test": "success", "deploy": "success"}
            assert not left.exists()
            assert live.project_dir.exists()
    finally:
        shutil.rmtree(left, ignore_errors=True)
