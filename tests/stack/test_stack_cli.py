"""``scripts/airflow-stack up``: the embedded stack of the demo (SQLite, LocalExecutor), as a user runs it.

The command starts in the background like a user's terminal would run it, prints where the
stack is (``--json``), serves a REST-triggered run behind a real login, and on SIGTERM stops
every process it started and removes its temp dir.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from airflow_stack import AirflowStack, StackError

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parents[2]
DAGS = Path(__file__).parent / "dags"
DAG_ID = "ci_stack_distributed"


def _read_line(stream: IO[str], proc: subprocess.Popen[str], timeout: float) -> str:
    """The first line of the command's output; fails if it exits or stays silent too long."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            assert proc.poll() is None, f"airflow-stack exited with {proc.returncode} before printing"
            assert time.monotonic() < deadline, f"airflow-stack printed nothing in {timeout:g} s"
            continue
        assert line, f"airflow-stack closed its output (exit {proc.wait(timeout=30)})"
        return line


@pytest.fixture(scope="module")
def stack_command(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    errors = (tmp_path_factory.mktemp("cli") / "stderr.txt").open("w")
    env = {**os.environ, "AIRFLOW_STACK_PYTHON": sys.executable}
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "airflow-stack"), "up", "--database", "sqlite", "--dags", str(DAGS), "--json"],
        stdout=subprocess.PIPE,
        stderr=errors,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        try:
            info = json.loads(_read_line(proc.stdout, proc, timeout=240))
        except AssertionError as err:
            raise AssertionError(f"{err}\n{Path(errors.name).read_text()[-3000:]}") from None
        yield proc, info
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        errors.close()


def test_up_prints_where_the_stack_is(stack_command: tuple[subprocess.Popen[str], dict[str, Any]]) -> None:
    _proc, info = stack_command
    assert info["executor"] == "airflow_ci_vars.executors.LocalExecutor"
    assert info["database"].startswith("SQLite ") and info["sql_alchemy_conn"].startswith("sqlite:///")
    # WAL: the REST API's writes wait behind the scheduler's instead of failing "database is locked".
    database = info["sql_alchemy_conn"].removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(database)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert info["login_required"] is True and info["user"] == "admin" and len(info["password"]) >= 12
    assert set(info["component_logs"]) == {"api-server", "scheduler", "dag-processor", "triggerer"}
    assert all(Path(path).is_file() for path in info["component_logs"].values())
    health = httpx.get(f"{info['base_url']}/api/v2/monitor/health", timeout=10).json()
    parts = ("metadatabase", "scheduler", "dag_processor", "triggerer")
    assert {part: health[part]["status"] for part in parts} == dict.fromkeys(parts, "healthy")


def test_a_run_triggered_with_the_printed_login_succeeds(
    stack_command: tuple[subprocess.Popen[str], dict[str, Any]],
) -> None:
    _proc, info = stack_command
    base = info["base_url"]
    assert httpx.get(f"{base}/api/v2/dags", timeout=10).status_code == 401  # the login is real
    login = httpx.post(f"{base}/auth/token", json={"username": info["user"], "password": info["password"]})
    assert login.status_code == 201, login.text
    with httpx.Client(
        base_url=f"{base}/api/v2", headers={"Authorization": f"Bearer {login.json()['access_token']}"}, timeout=30
    ) as api:
        deadline = time.monotonic() + 90
        while api.get(f"/dags/{DAG_ID}").status_code != 200:
            assert time.monotonic() < deadline, api.get("/importErrors").text
            time.sleep(0.5)
        # SQLite (WAL): the run's insert waits behind the other components' writes (60 s busy
        # timeout, scripts/airflow_stack.py). On a 2-core machine also running the session's other
        # deployments that wait once ran out ("Database error", 500): a caller tries again, as
        # the docs of a SQLite stack say (one run at a time; it locks under load).
        deadline = time.monotonic() + 240
        while True:
            resp = api.post(f"/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": {}}, timeout=120)
            if resp.status_code != 500 or "Database error" not in resp.text or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert resp.status_code == 200, resp.text
        run_id = resp.json()["dag_run_id"]
        deadline = time.monotonic() + 120
        while (state := api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}").json()["state"]) not in ("success", "failed"):
            assert time.monotonic() < deadline, f"run still {state}"
            time.sleep(0.5)
        assert state == "success"


def test_sigterm_stops_every_process_and_removes_the_temp_dir(
    stack_command: tuple[subprocess.Popen[str], dict[str, Any]],
) -> None:
    proc, info = stack_command
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    # Each component led its own process group: nothing of it (task processes, log servers) is
    # left running. Killed processes may stay zombies until this machine's init reaps them.
    groups = set(info["pids"].values())
    deadline = time.monotonic() + 10
    while (left := running_in_groups(groups)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == {}
    assert not Path(info["airflow_home"]).exists()


def running_in_groups(groups: set[int]) -> dict[int, str]:
    """Processes (not zombies) whose process group is one of ``groups``: {pid: command}."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            data = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue
        fields = data[data.rindex(b")") + 2 :].split()
        if fields[0] != b"Z" and int(fields[2]) in groups:
            found[int(entry)] = data[data.index(b"(") + 1 : data.rindex(b")")].decode(errors="replace")
    return found


def test_a_component_that_dies_fails_the_start_with_its_log(tmp_path: Path) -> None:
    """The api-server cannot bind its port: the command says which component died and why, and
    leaves nothing behind."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [str(ROOT / "scripts" / "airflow-stack"), "up", "--database", "sqlite", "--port", str(port)],
            capture_output=True,
            text=True,
            env={**os.environ, "AIRFLOW_STACK_PYTHON": sys.executable},
            timeout=240,
            check=False,
        )
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    assert "airflow api-server exited with code" in proc.stderr
    assert "address already in use" in proc.stderr  # the tail of its log
    root = re.search(r"starting Airflow in (\S+) \.\.\.", proc.stderr)
    assert root is not None, proc.stderr
    assert not Path(root.group(1)).exists()


def test_an_unreachable_broker_fails_before_anything_starts() -> None:
    stack = AirflowStack(executor="celery", broker_url="redis://127.0.0.1:1/0")
    try:
        with pytest.raises(StackError, match=r"the Celery broker redis://127.0.0.1:1/0 does not answer"):
            stack.start()
        assert stack.pids == {}
    finally:
        stack.stop()
    assert not stack.root.exists()
