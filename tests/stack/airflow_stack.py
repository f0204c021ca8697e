"""A real, throw-away Airflow 3 deployment: api-server + scheduler (LocalExecutor) + dag-processor.

Used by the ``airflow_stack`` pytest fixture (tests/stack/conftest.py) and by
bench/bench_operator.py. Everything is private to one :class:`AirflowStack`:

* a fresh PostgreSQL database (``airflow_stack_<random>``) on the local server
  (127.0.0.1:5432, user ``postgres``, trust auth), migrated with ``airflow db migrate`` and
  dropped on :meth:`AirflowStack.stop`;
* its own ``AIRFLOW_HOME`` and dags folder in a temp dir; the components' own output goes to
  ``<root>/components/<name>.log``, task logs to ``AIRFLOW_HOME/logs`` (Airflow's default);
* the api-server on a free loopback port (bound to 127.0.0.1 only), serving the public REST API
  and the execution API the task processes talk to;
* SimpleAuthManager in all-admins mode; REST calls carry a JWT from ``GET /auth/token``.

The components are started from the interpreter's own bin dir (the project's .venv) with an
environment built from scratch: nothing ``AIRFLOW*`` of the calling process leaks in. Each one
runs in its own session (process group), so stopping it also stops what it spawned (task
supervisors, ``serve-logs``, uvicorn workers). A component that dies or never becomes healthy
raises :class:`StackError` with the tail of its log: a missing service fails, it never skips.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import httpx
import psycopg2

BIN = Path(sys.executable).parent
AIRFLOW = BIN / "airflow"

PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/{db}"

TERMINAL_RUN_STATES = frozenset({"success", "failed"})
# The monitor/health components that must report "healthy" (no triggerer is started).
REQUIRED_HEALTHY = ("metadatabase", "scheduler", "dag_processor")
# Host variables a component may inherit; everything else (AIRFLOW*, the test's settings) is dropped.
_INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "USER", "LOGNAME", "SHELL", "TMPDIR", "TERM")


class StackError(RuntimeError):
    """The deployment could not be started, or a component died."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 60) -> str:
    """The last ``lines`` lines of a text file ('' when missing)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _pg_execute(statement: str) -> None:
    conn = psycopg2.connect(PG_DSN, connect_timeout=10)
    try:
        conn.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


class AirflowStack:
    """One Airflow deployment. Use :meth:`running` (a context manager) or :meth:`start`/:meth:`stop`.

    :param dag_sources: files, or directories whose files are all copied, into the dags folder
        before the components start (more can be added later with :meth:`add_dags`).
    :param refresh_interval: ``[dag_processor] refresh_interval`` (how often new files are found).
    :param min_file_process_interval: ``[dag_processor] min_file_process_interval`` (re-parse period).
    :param parallelism: ``[core] parallelism`` (LocalExecutor worker processes).
    :param extra_env: more ``AIRFLOW__...`` settings for every component.
    :param keep: keep the temp dir (logs) after :meth:`stop` (also with ``AIRFLOW_STACK_KEEP=1``).
    """

    def __init__(
        self,
        dag_sources: Iterable[str | os.PathLike[str]] = (),
        *,
        refresh_interval: int = 2,
        min_file_process_interval: int = 5,
        parallelism: int = 32,
        extra_env: Mapping[str, str] | None = None,
        keep: bool | None = None,
        startup_timeout: float = 90.0,
    ) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="airflow-stack-"))
        self.home = self.root / "home"
        self.dags_folder = self.root / "dags"
        self.component_logs = self.root / "components"
        for path in (self.home, self.dags_folder, self.component_logs):
            path.mkdir()
        self.db_name = f"airflow_stack_{secrets.token_hex(6)}"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.startup_timeout = startup_timeout
        self.keep = keep if keep is not None else os.environ.get("AIRFLOW_STACK_KEEP") == "1"
        self._dag_sources = [Path(p) for p in dag_sources]
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._log_files: list[IO[bytes]] = []
        self._db_created = False
        self._client: httpx.Client | None = None
        self.env = self._environment(refresh_interval, min_file_process_interval, parallelism, extra_env or {})

    # -- environment ----------------------------------------------------------------------------

    def _environment(
        self, refresh_interval: int, min_file_process_interval: int, parallelism: int, extra: Mapping[str, str]
    ) -> dict[str, str]:
        env = {k: os.environ[k] for k in _INHERITED_ENV if k in os.environ}
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '/usr/local/bin:/usr/bin:/bin')}"
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "PYTHONUNBUFFERED": "1",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": PG_URL.format(db=self.db_name),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": str(parallelism),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "AIRFLOW__CORE__FERNET_KEY": _fernet_key(),
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
                # Identical for every component (tokens for the execution API are signed with it).
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": str(refresh_interval),
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": str(min_file_process_interval),
                "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": str(refresh_interval),
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            }
        )
        env.update(extra)
        return env

    # -- life cycle -----------------------------------------------------------------------------

    @classmethod
    @contextlib.contextmanager
    def running(cls, dag_sources: Iterable[str | os.PathLike[str]] = (), **kwargs: Any) -> Iterator[AirflowStack]:
        """Start a stack, yield it, stop it (also when the start or the body fails)."""
        stack = cls(dag_sources, **kwargs)
        try:
            stack.start()
            yield stack
        finally:
            stack.stop()

    def start(self) -> None:
        """Create and migrate the database, start the components, wait until healthy."""
        started = time.monotonic()
        for module in ("psycopg2", "asyncpg"):  # Airflow's sync and async PostgreSQL drivers
            if importlib.util.find_spec(module) is None:
                raise StackError(f"{module} is not installed in {sys.prefix}: Airflow needs it for PostgreSQL")
        (self.home / "passwords.json").write_text(json.dumps({"admin": secrets.token_urlsafe(16)}))
        for source in self._dag_sources:
            self.add_dags(source)
        try:
            _pg_execute(f'CREATE DATABASE "{self.db_name}"')
        except psycopg2.Error as err:
            raise StackError(f"cannot create the metadata database on 127.0.0.1:5432: {err}") from err
        self._db_created = True
        migrate_log = self.component_logs / "db-migrate.log"
        with migrate_log.open("wb") as out:
            proc = subprocess.run(
                [str(AIRFLOW), "db", "migrate"],
                env=self.env,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=300,
                check=False,
            )
        if proc.returncode != 0:
            raise StackError(f"airflow db migrate failed (exit {proc.returncode}):\n{tail(migrate_log)}")
        self._spawn("api-server", ["api-server", "--host", "127.0.0.1", "--port", str(self.port)])
        self._spawn("scheduler", ["scheduler"])
        self._spawn("dag-processor", ["dag-processor"])
        self._wait_healthy()
        self.startup_seconds = time.monotonic() - started

    def _spawn(self, name: str, args: list[str]) -> None:
        log = (self.component_logs / f"{name}.log").open("wb")
        self._log_files.append(log)
        self._procs[name] = subprocess.Popen(
            [str(AIRFLOW), *args],
            env=self.env,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def check_alive(self) -> None:
        """Raise :class:`StackError` (with its log's tail) if a component has exited."""
        for name, proc in self._procs.items():
            code = proc.poll()
            if code is not None:
                raise StackError(
                    f"airflow {name} exited with code {code}; last lines of its log "
                    f"({self.component_logs / (name + '.log')}):\n{tail(self.component_logs / (name + '.log'))}"
                )

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last: object = "no answer"
        while True:
            self.check_alive()
            try:
                resp = httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=5)
                last = resp.json() if resp.status_code == 200 else f"HTTP {resp.status_code}: {resp.text[:300]}"
                if isinstance(last, dict) and all(
                    (last.get(part) or {}).get("status") == "healthy" for part in REQUIRED_HEALTHY
                ):
                    return
            except (httpx.HTTPError, ValueError) as err:
                last = repr(err)
            if time.monotonic() > deadline:
                logs = "\n".join(
                    f"--- {name} ---\n{tail(self.component_logs / (name + '.log'), 30)}" for name in self._procs
                )
                raise StackError(
                    f"Airflow not healthy after {self.startup_timeout:g} s; last health answer: {last}\n{logs}"
                )
            time.sleep(0.5)

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM every component's process group, SIGKILL what is left after ``grace``; drop the DB."""
        if self._client is not None:
            self._client.close()
            self._client = None
        for proc in self._procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self._procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        for proc in self._procs.values():
            # Also the group's leftovers (task processes, serve-logs) whose leader has exited.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self._procs.clear()
        for log in self._log_files:
            log.close()
        self._log_files.clear()
        if self._db_created:
            try:
                _pg_execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
                self._db_created = False
            except psycopg2.Error as err:
                print(f"airflow_stack: could not drop database {self.db_name}: {err}", file=sys.stderr)
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- DAG files ------------------------------------------------------------------------------

    def add_dags(self, source: str | os.PathLike[str]) -> None:
        """Copy a file, or every file of a directory (not ``__pycache__``), into the dags folder."""
        src = Path(source)
        if src.is_dir():
            for item in sorted(src.iterdir()):
                if item.name == "__pycache__":
                    continue
                if item.is_dir():
                    shutil.copytree(item, self.dags_folder / item.name, dirs_exist_ok=True)
                else:
                    shutil.copy2(item, self.dags_folder / item.name)
        else:
            shutil.copy2(src, self.dags_folder / src.name)

    # -- REST -----------------------------------------------------------------------------------

    @property
    def client(self) -> httpx.Client:
        """An HTTP client for ``base_url`` carrying a JWT from SimpleAuthManager's token endpoint."""
        if self._client is None:
            resp = httpx.get(f"{self.base_url}/auth/token", timeout=30)
            if resp.status_code not in (200, 201):
                raise StackError(f"GET /auth/token: HTTP {resp.status_code}: {resp.text[:500]}")
            token = resp.json()["access_token"]
            self._client = httpx.Client(
                base_url=self.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
            )
        return self._client

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request to ``/api/v2`` + ``path``."""
        return self.client.request(method, f"/api/v2{path}", **kwargs)

    def get_json(self, path: str, **kwargs: Any) -> Any:
        """``GET /api/v2`` + ``path``; the JSON body (raises on a non-2xx answer)."""
        resp = self.api("GET", path, **kwargs)
        if resp.status_code >= 300:
            raise StackError(f"GET /api/v2{path}: HTTP {resp.status_code}: {resp.text[:1000]}")
        return resp.json()

    def import_errors(self) -> list[dict[str, Any]]:
        """The dag-processor's import errors (``GET /api/v2/importErrors``)."""
        return list(self.get_json("/importErrors").get("import_errors", []))

    def wait_for_dag(self, dag_id: str, timeout: float = 60.0) -> None:
        """Wait until ``GET /api/v2/dags/{dag_id}`` answers 200 (the DAG is parsed and serialized)."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            if self.api("GET", f"/dags/{dag_id}").status_code == 200:
                return
            if time.monotonic() > deadline:
                raise StackError(
                    f"DAG {dag_id!r} not parsed after {timeout:g} s; import errors: {self.import_errors()}\n"
                    f"dag-processor log:\n{tail(self.component_logs / 'dag-processor.log', 30)}"
                )
            time.sleep(0.5)

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None, run_id: str | None = None) -> str:
        """``POST /api/v2/dags/{dag_id}/dagRuns`` (after :meth:`wait_for_dag`); the new run's id."""
        self.wait_for_dag(dag_id)
        body: dict[str, Any] = {"logical_date": None, "conf": dict(conf or {})}
        if run_id is not None:
            body["dag_run_id"] = run_id
        resp = self.api("POST", f"/dags/{dag_id}/dagRuns", json=body)
        if resp.status_code != 200:
            raise StackError(f"trigger {dag_id}: HTTP {resp.status_code}: {resp.text[:1000]}")
        return str(resp.json()["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        """The run's state (``queued``, ``running``, ``success``, ``failed``)."""
        return str(self.get_json(f"/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def wait(self, dag_id: str, run_id: str, timeout: float = 120.0, poll: float = 0.2) -> str:
        """Wait until the run is ``success`` or ``failed``; return that state."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            state = self.run_state(dag_id, run_id)
            if state in TERMINAL_RUN_STATES:
                return state
            if time.monotonic() > deadline:
                states = {ti["task_id"]: ti["state"] for ti in self.task_instances(dag_id, run_id)}
                raise StackError(
                    f"run {dag_id}/{run_id} still {state!r} after {timeout:g} s; task states: {states}\n"
                    f"scheduler log:\n{tail(self.component_logs / 'scheduler.log', 30)}"
                )
            time.sleep(poll)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run (``GET .../taskInstances``)."""
        data = self.get_json(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})
        return list(data["task_instances"])

    def xcom_entries(self, dag_id: str, run_id: str, task_id: str = "~") -> list[dict[str, Any]]:
        """XCom entries (without values) of the run; ``task_id='~'`` lists every task's."""
        data = self.get_json(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries")
        return list(data["xcom_entries"])

    # -- task logs ------------------------------------------------------------------------------

    def task_log_path(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> Path:
        """The task attempt's log file under ``AIRFLOW_HOME/logs`` (Airflow's default file name template)."""
        pattern = os.path.join(
            glob.escape(str(self.home / "logs")),
            f"dag_id={glob.escape(dag_id)}",
            f"run_id={glob.escape(run_id)}",
            f"task_id={glob.escape(task_id)}",
            "**",
            f"attempt={try_number}.log",
        )
        found = sorted(glob.glob(pattern, recursive=True))
        if not found:
            raise FileNotFoundError(f"no task log matches {pattern}")
        return Path(found[0])

    def task_log_text(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, timeout: float = 10.0) -> str:
        """The raw text of the task attempt's log file (waits up to ``timeout`` s for it to appear)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.task_log_path(dag_id, run_id, task_id, try_number).read_text(errors="replace")
            except FileNotFoundError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def _fernet_key() -> str:
    import base64

    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
