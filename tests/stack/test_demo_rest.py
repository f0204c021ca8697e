"""``examples/demo_rest.py`` (the second half of ``make demo``), run as a user runs it.

The demo starts its own embedded Airflow (SQLite, LocalExecutor, real login), triggers the etl
example over REST and prints what happened. These tests read only what it prints and what it
leaves behind: the exit code, the HTTP 400 of the invalid request, the masked job logs, the
dotenv handoff, the file of Airflow's own logs, and no process or temp dir left over (also when
interrupted with Ctrl-C once Airflow is up).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from airflow_ci_vars.settings import load_settings

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo_rest.py"
SETTINGS = ROOT / "example_dags" / "pipelines" / "etl" / "settings.yml"


@dataclass(frozen=True)
class DemoRun:
    code: int
    out: str
    err: str
    airflow_log: Path


def _environment() -> dict[str, str]:
    """The user's shell: none of the test session's Airflow settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}


def _pids(out: str) -> list[int]:
    found = re.search(r"\(pids: ([^)]*)\)", out)
    assert found, f"the demo printed no pids:\n{out}"
    return [int(pid) for pid in re.findall(r"\d+", found.group(1))]


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def _groups_left(pgids: list[int]) -> list[int]:
    """The process groups still there (a killed group's children may take a moment to be reaped)."""
    deadline = time.monotonic() + 10
    while (left := [pgid for pgid in pgids if not _group_gone(pgid)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    log = tmp_path_factory.mktemp("demo") / "airflow.log"
    proc = subprocess.run(
        [sys.executable, str(DEMO), "--airflow-log", str(log)],
        capture_output=True,
        text=True,
        env=_environment(),
        timeout=600,
        check=False,
    )
    return DemoRun(proc.returncode, proc.stdout, proc.stderr, log)


def test_demo_succeeds(demo_run: DemoRun) -> None:
    assert demo_run.code == 0, demo_run.out[-3000:] + demo_run.err[-3000:]
    assert "-> the pipeline finished: success" in demo_run.out
    for job in ("build", "test", "deploy"):
        assert f"   {job}: success" in demo_run.out


def test_demo_logs_in_and_shows_the_curl_commands(demo_run: DemoRun) -> None:
    out = demo_run.out
    assert '$ curl -s -X POST "$AIRFLOW/auth/token"' in out
    assert "-> 201: {'access_token': 'eyJ" in out
    trigger = '"conf": {"build_parameters": {"BATCH": 500, "TABLES": ["orders", "customers"], "DRY_RUN": true}'
    assert f"-H 'Content-Type: application/json' -d '{{\"logical_date\": null, {trigger}" in out
    assert "triggered_by rest_api, user admin" in out


def test_demo_shows_the_400_and_that_no_run_was_created(demo_run: DemoRun) -> None:
    out = demo_run.out
    assert (
        "-> 400: Invalid input for param build_parameters: 'dry-run' does not match '^[A-Za-z_][A-Za-z0-9_]{0,254}$'"
        in out
    )
    assert out.index("-> 400:") < out.index("-> 200: total_entries 0") < out.index("-> 200: run manual__")


def test_jobs_see_the_build_parameters_and_the_api_source(demo_run: DemoRun) -> None:
    assert 'build > building feature/login (api pipeline) BATCH=500 TABLES=["orders", "customers"]' in demo_run.out


def test_masked_values_show_as_masked_and_never_in_clear(demo_run: DemoRun) -> None:
    assert "deploy > deploying 1.4." in demo_run.out
    assert "to acme-data-review (password [MASKED])" in demo_run.out
    secrets = [v.value for layer in load_settings(SETTINGS).projects.values() for v in layer if v.masked]
    assert "proj-pw-Zq81xLm4" in secrets  # the password deploy prints
    for secret in secrets:
        assert secret not in demo_run.out + demo_run.err
    assert "seen in clear in the logs fetched: 0" in demo_run.out


def test_dotenv_value_of_build_is_what_test_and_deploy_printed(demo_run: DemoRun) -> None:
    found = re.search(r"-> build's dotenv XCom: \{\"BUILD_VERSION\": \"(1\.4\.\d+)\"\}", demo_run.out)
    assert found, demo_run.out
    version = found.group(1)
    assert f"test > testing nightly-etl {version}\n" in demo_run.out
    assert f"     deploy > deploying {version} to acme-data-review" in demo_run.out
    assert "REVIEW_URL is the 'Environment' link of deploy" in demo_run.out


def test_demo_stops_everything_and_keeps_airflow_logs_in_one_file(demo_run: DemoRun) -> None:
    assert _groups_left(_pids(demo_run.out)) == []
    root = re.search(r"SQLite and LocalExecutor in (\S+)\n", demo_run.out)
    assert root and not Path(root.group(1)).exists()
    assert f"Airflow's own logs (components, DAG parsing, tasks): {demo_run.airflow_log}" in demo_run.out
    text = demo_run.airflow_log.read_text()
    for component in ("api-server", "scheduler", "dag-processor", "triggerer"):
        assert f"===== components/{component}.log" in text
    assert "task_id=deploy" in text  # the task logs too
    assert "Uvicorn running" not in demo_run.out + demo_run.err  # Airflow's own output stays in the file


def test_ctrl_c_during_the_demo_stops_every_process(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(DEMO), "--airflow-log", str(tmp_path / "airflow.log")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(),
    )
    assert proc.stdout is not None
    out = ""
    deadline = time.monotonic() + 300
    while "Airflow is up" not in out:  # the components are all running
        line = proc.stdout.readline()
        assert line and time.monotonic() < deadline, out + (proc.stderr.read() if proc.stderr else "")
        out += line
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + rest + err
    assert "interrupted" in err
    assert _groups_left(_pids(out)) == []
    assert "stopped (process groups" in rest, out + rest + err


def test_a_failed_pipeline_exits_1_and_shows_why(tmp_path: Path) -> None:
    """A conf Airflow accepts but the jobs refuse (the same variable in both forms)."""
    conf = '{"variables": {"BATCH": "1"}, "build_parameters": {"BATCH": 2}}'
    proc = subprocess.run(
        [sys.executable, str(DEMO), "--airflow-log", str(tmp_path / "airflow.log"), "--conf", conf],
        capture_output=True,
        text=True,
        env=_environment(),
        timeout=600,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "-> the pipeline finished: failed" in proc.stdout
    assert "build > AirflowException: Invalid pipeline variables in the run's conf: Duplicate variable name: BATCH" in (
        proc.stdout
    )
    assert "ERROR: the pipeline failed" in proc.stderr
    assert _groups_left(_pids(proc.stdout)) == []
