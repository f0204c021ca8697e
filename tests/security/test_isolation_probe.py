"""Issue 11's probe on a real deployment, in every ``[ci_vars] isolation`` mode.

A job (tests/security/dags/security_probe.py) walks ``/proc``, lists ``/``, reads the DAGs
folder, the variable store kept inside its project folder, ``AIRFLOW_HOME``, the artifact
store and another run's workspace. Each mode must give exactly what docs/security.md promises:
the sandbox hides all of it; ``none`` hides nothing but the store's copy, and says so in the log.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow_stack import AirflowStack

from airflow_ci_vars.isolation import NONE_WARNING
from airflow_ci_vars.runner import Workspace

pytestmark = pytest.mark.stack

DAGS = Path(__file__).parent / "dags"
DAG_ID = "ci_security_probe"
SYSTEM = {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "sbin", "tmp", "usr"}


@pytest.fixture(scope="module", params=["sandbox", "none"])
def probe_stack(request: pytest.FixtureRequest) -> Iterator[tuple[str, AirflowStack]]:
    """A deployment whose ``[ci_vars] isolation`` is the parameter."""
    mode = str(request.param)
    with AirflowStack.running([DAGS], extra_env={"AIRFLOW__CI_VARS__ISOLATION": mode}) as stack:
        yield mode, stack


@pytest.fixture
def other_workspace() -> Iterator[Path]:
    """Another run's live workspace on the same worker, with a file its job wrote."""
    with Workspace(None) as workspace:
        victim = workspace.project_dir / "victim.txt"
        victim.write_text("another project's build output\n")
        yield victim


def probe(stack: AirflowStack, other: Path) -> tuple[dict[str, str], str]:
    stack.wait_for_dag(DAG_ID)
    run_id = stack.trigger(DAG_ID, {"ref": "main", "variables": {"PROBE_OTHER": str(other)}})
    assert stack.wait(DAG_ID, run_id, timeout=120) == "success"
    log = stack.task_log_text(DAG_ID, run_id, "probe")
    found: dict[str, str] = {}
    for line in log.splitlines():
        try:
            event = str(json.loads(line).get("event", ""))
        except (ValueError, AttributeError):
            event = line
        if event.startswith("PROBE "):  # the job's output, not the "$ command" echo lines
            route, _, verdict = event.removeprefix("PROBE ").partition(" ")
            found[route] = verdict.strip()
    assert "done" in found, log[-3000:]
    return found, log


def test_probe(probe_stack: tuple[str, AirflowStack], other_workspace: Path) -> None:
    mode, stack = probe_stack
    found, log = probe(stack, other_workspace)
    # Whatever the mode, the variable store never enters the workspace (the copy leaves it out).
    assert found["settings_in_workspace"] == "hidden"
    assert found["project_copy"] == "present"
    if mode == "sandbox":
        assert found["user"] == "nobody"
        assert found["worker_environment_variables"] == "0"
        assert int(found["processes"]) < 10  # bwrap's init, the job's shell and its commands
        assert set(found["root"].split()) <= SYSTEM
        for route in ("airflow_home", "dag_file", "settings_file", "artifact_store", "other_workspace"):
            assert found[route] == "hidden", route
        assert NONE_WARNING not in log
        assert "Job isolation: sandbox (bubblewrap), running as nobody" in log
    else:
        # none: the shell executor. Everything is reachable, as the warning in the log says.
        assert found["user"] == "root"
        assert int(found["worker_environment_variables"]) > 0
        for route in ("airflow_home", "dag_file", "settings_file", "other_workspace"):
            assert found[route] == "exposed", route
        assert log.count("Job isolation is off") == 1
