"""A real, throw-away Airflow 3 deployment for the tests, the benchmarks and the demo.

``AirflowStack`` starts ``airflow api-server``, ``scheduler``, ``dag-processor`` and
``triggerer`` (and, on CeleryExecutor, N ``celery worker`` processes), waits until
``/api/v2/monitor/health`` reports every component healthy, and stops every process it started
by process group. Everything is private to one stack:

* the metadata database: a fresh PostgreSQL database ``airflow_stack_<random>`` on the local
  server (127.0.0.1:5432, user ``postgres``, trust auth), dropped on :meth:`AirflowStack.stop`;
  or a SQLite file in the stack's ``AIRFLOW_HOME`` (LocalExecutor only: good for one run at a
  time, e.g. the demo; SQLite locks under concurrent runs, see airflow-notes §6.2);
* a temp dir: ``AIRFLOW_HOME`` (``home/``, task logs in ``home/logs``), the dags folder
  (``dags/``) and the components' own output (``components/<name>.log``);
* free loopback ports for the api-server (REST API, UI and the execution API the task processes
  talk to) and for the log servers, so that stacks started side by side do not collide;
* CeleryExecutor: Redis (127.0.0.1:6379) as the broker with a per-stack key prefix (queues,
  unacked messages and the control channels of two stacks never meet; the keys are deleted at
  stop), the Celery result backend in the same metadata database (``db+postgresql://...``), and
  one queue per worker: ``worker-N`` consumes ``default`` and ``worker-N``, so a task with
  ``queue="worker-2"`` (a GitLab job with ``tags: [worker-2]``) runs on that worker only. Each
  worker reports its name (``worker-N``) as the task instances' ``hostname``;
* SimpleAuthManager with one admin user (``admin``, random password); with ``all_admins`` (the
  default for tests) no login is needed and ``GET /auth/token`` hands out tokens.

The components run from this interpreter (``python -m airflow``, the project's .venv) with an
environment built from scratch: nothing ``AIRFLOW*`` of the calling process leaks in. Each runs
in its own session (process group), so stopping it also stops what it spawned (task
supervisors, ``serve-logs``, Celery pool processes). A component that dies or never becomes
healthy raises :class:`StackError` with the tail of its log: a missing service fails, it never
skips.

On one machine the Celery workers share the stack's ``AIRFLOW_HOME``: the dags folder (as a DAG
bundle would be shared), the task log folder (the api-server reads finished tasks' logs from
it) and the default ``[ci_vars] artifacts_root``. Across machines only the first is a given;
see docs/deployment.md.

Command line (``scripts/airflow-stack up --help``): start a stack, print where it is, keep it up
until Ctrl-C or SIGTERM, then stop everything it started.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import glob
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import IO, Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/{db}"
CELERY_RESULT_URL = "db+postgresql+psycopg2://postgres@127.0.0.1:5432/{db}"
REDIS_URL = "redis://127.0.0.1:6379/0"
DATABASES = ("postgres", "sqlite")
# LocalExecutor: the project's subclass, as docs/deployment.md asks for where manual jobs run
# (Airflow 3.3.2's own fails a manual job answered while its task is still parking or exiting).
EXECUTORS = {"local": "airflow_ci_vars.executors.LocalExecutor", "celery": "CeleryExecutor"}
DEFAULT_QUEUE = "default"
USER = "admin"

TERMINAL_RUN_STATES = frozenset({"success", "failed"})
# The monitor/health components that must report "healthy" (Celery workers are pinged instead).
REQUIRED_HEALTHY = ("metadatabase", "scheduler", "dag_processor", "triggerer")
# Host variables a component may inherit; everything else (AIRFLOW*, the test's settings) is dropped.
_INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "USER", "LOGNAME", "SHELL", "TMPDIR", "TERM")
# `[core] hostname_callable` of a Celery worker: the name the stack gave it, not the machine's
# (both workers run on this machine, and a test wants to see which one ran a task).
_HOSTNAME_MODULE = '''\
"""Written by scripts/airflow_stack.py: the hostname a stack's Celery worker reports."""
import os


def hostname() -> str:
    return os.environ["AIRFLOW_STACK_HOSTNAME"]
'''

# SQLite's default busy timeout (5 s) is shorter than the scheduler and the dag-processor hold its
# write lock on a loaded 2-core machine: a REST trigger then answered HTTP 500 ("database is
# locked"). Every component waits up to a minute instead; the file also runs in WAL mode (set at
# start), so readers never block the one writer.
_SQLITE_MODULE = '''\
"""Written by scripts/airflow_stack.py: how a stack's components open its SQLite database."""
CONNECT_ARGS = {"timeout": 60}
'''

__all__ = ["AirflowStack", "StackError", "free_port", "main", "tail"]


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
    import psycopg2  # type: ignore[import-untyped]

    conn = psycopg2.connect(PG_DSN, connect_timeout=10)
    try:
        conn.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


def _fernet_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


class AirflowStack:
    """One Airflow deployment. Use :meth:`running` (a context manager) or :meth:`start`/:meth:`stop`.

    :param dag_sources: files, or directories whose files are all copied, into the dags folder
        before the components start (more can be added later with :meth:`add_dags`).
    :param database: ``postgres`` (a fresh database, dropped at stop) or ``sqlite`` (a file in
        ``AIRFLOW_HOME``; LocalExecutor only).
    :param executor: ``local`` (LocalExecutor, in the scheduler) or ``celery`` (``workers``
        Celery workers, Redis broker).
    :param workers: Celery workers (``worker-1`` ...), each consuming ``default`` and its own name.
    :param worker_concurrency: task slots per Celery worker.
    :param broker_url: the Redis server of the Celery broker (keys get a per-stack prefix).
    :param port: the api-server's port (default: a free one).
    :param all_admins: SimpleAuthManager's all-admins mode (no login); otherwise REST calls log in
        as ``admin`` with :attr:`password` (``POST /auth/token``), as a user would.
    :param users: more SimpleAuthManager users, ``{name: role}`` (roles ``viewer``, ``user``,
        ``op``, ``admin``), each with a random password in :attr:`passwords`; ``token(name)`` logs
        in as one of them (login mode only: all-admins mode makes every request an admin's).
    :param refresh_interval: ``[dag_processor] refresh_interval`` (how often new files are found).
    :param min_file_process_interval: ``[dag_processor] min_file_process_interval`` (re-parse period).
    :param parallelism: ``[core] parallelism`` (LocalExecutor worker processes).
    :param extra_env: more ``AIRFLOW__...`` settings for every component.
    :param keep: keep the temp dir (logs) after :meth:`stop` (also with ``AIRFLOW_STACK_KEEP=1``).
    :param startup_timeout: seconds for the whole deployment to become healthy.
    """

    def __init__(
        self,
        dag_sources: Iterable[str | os.PathLike[str]] = (),
        *,
        database: str = "postgres",
        executor: str = "local",
        workers: int = 2,
        worker_concurrency: int = 4,
        broker_url: str = REDIS_URL,
        port: int | None = None,
        all_admins: bool = True,
        users: Mapping[str, str] | None = None,
        refresh_interval: int = 2,
        min_file_process_interval: int = 5,
        parallelism: int = 32,
        extra_env: Mapping[str, str] | None = None,
        keep: bool | None = None,
        startup_timeout: float = 120.0,
    ) -> None:
        if database not in DATABASES:
            raise ValueError(f"database must be one of {', '.join(DATABASES)}, not {database!r}")
        if executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, not {executor!r}")
        if executor == "celery" and database == "sqlite":
            # Workers and scheduler would write one SQLite file from several processes at once.
            raise ValueError("the celery executor needs the postgres database (SQLite is for LocalExecutor only)")
        if executor == "celery" and workers < 1:
            raise ValueError("the celery executor needs at least one worker")
        self.database = database
        self.executor = executor
        self.stack_id = secrets.token_hex(6)
        self.root = Path(tempfile.mkdtemp(prefix="airflow-stack-"))
        self.pythonpath = self.root / "pythonpath"  # modules the components import (settings written at start)
        self.home = self.root / "home"
        self.dags_folder = self.root / "dags"
        self.component_logs = self.root / "components"
        for path in (self.home, self.dags_folder, self.component_logs):
            path.mkdir()
        self.db_name = f"airflow_stack_{self.stack_id}"
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.user = USER
        #: SimpleAuthManager users (``[core] simple_auth_manager_users``) and their passwords
        self.users: dict[str, str] = {USER: "admin", **(users or {})}
        self.passwords: dict[str, str] = {name: secrets.token_urlsafe(12) for name in self.users}
        self.password = self.passwords[USER]
        self.all_admins = all_admins
        #: the Celery workers' names and the queues each one consumes (empty on LocalExecutor)
        self.worker_queues: dict[str, tuple[str, ...]] = (
            {f"worker-{i}": (DEFAULT_QUEUE, f"worker-{i}") for i in range(1, workers + 1)}
            if executor == "celery"
            else {}
        )
        self.worker_concurrency = worker_concurrency
        self.broker_url = broker_url
        self.broker_prefix = f"airflow_stack_{self.stack_id}:"
        self.startup_timeout = startup_timeout
        self.startup_seconds = 0.0
        self.keep = keep if keep is not None else os.environ.get("AIRFLOW_STACK_KEEP") == "1"
        self._dag_sources = [Path(p) for p in dag_sources]
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._log_files: list[IO[bytes]] = []
        self._db_created = False
        self._broker_used = False
        self._client: httpx.Client | None = None
        self.env = self._environment(refresh_interval, min_file_process_interval, parallelism, extra_env or {})

    # -- environment ----------------------------------------------------------------------------

    @property
    def sql_alchemy_conn(self) -> str:
        """The metadata database's SQLAlchemy URL."""
        if self.database == "sqlite":
            return f"sqlite:///{self.home / 'airflow.db'}"
        return PG_URL.format(db=self.db_name)

    @property
    def database_label(self) -> str:
        """Where the metadata lives, for humans."""
        if self.database == "sqlite":
            return f"SQLite {self.home / 'airflow.db'}"
        return f"PostgreSQL database {self.db_name} on 127.0.0.1:5432"

    def _environment(
        self, refresh_interval: int, min_file_process_interval: int, parallelism: int, extra: Mapping[str, str]
    ) -> dict[str, str]:
        env = {k: os.environ[k] for k in _INHERITED_ENV if k in os.environ}
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '/usr/local/bin:/usr/bin:/bin')}"
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "PYTHONUNBUFFERED": "1",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn,
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__EXECUTOR": EXECUTORS[self.executor],
                "AIRFLOW__CORE__PARALLELISM": str(parallelism),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "AIRFLOW__CORE__FERNET_KEY": _fernet_key(),
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": str(self.all_admins),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{n}:{r}" for n, r in self.users.items()),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
                # Identical for every component (tokens for the execution API are signed with it).
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
                # The scheduler (LocalExecutor) and the triggerer serve their logs on these ports,
                # bound on every interface: the defaults (8793, 8794) would clash between stacks.
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": str(refresh_interval),
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": str(min_file_process_interval),
                "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": str(refresh_interval),
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                # The api-server holds a pooled connection per request in flight (REST and the
                # tasks' execution API alike) and some of its async code waits for one on the
                # event loop: with the default ceiling (5 + 10) 50 REST triggers during running
                # tasks stalled it for the 30 s pool timeout, answering HTTP 500 and failing tasks
                # on execution-API timeouts. Overflow connections close when returned.
                "AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW": "40",
            }
        )
        if self.database == "sqlite":
            env.update(
                {
                    "PYTHONPATH": os.pathsep.join(filter(None, [str(self.pythonpath), env.get("PYTHONPATH")])),
                    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "airflow_stack_sqlite.CONNECT_ARGS",
                    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC": "airflow_stack_sqlite.CONNECT_ARGS",
                }
            )
        if self.executor == "celery":
            env.update(
                {
                    "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
                    "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": self.broker_prefix,
                    # The default (24 h) would only matter for a worker killed mid-task.
                    "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "3600",
                    "AIRFLOW__CELERY__RESULT_BACKEND": CELERY_RESULT_URL.format(db=self.db_name),
                    "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.worker_concurrency),
                    "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
                    "AIRFLOW__OPERATORS__DEFAULT_QUEUE": DEFAULT_QUEUE,
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
        self._check_prerequisites()
        (self.home / "passwords.json").write_text(json.dumps(self.passwords))
        self.pythonpath.mkdir(exist_ok=True)
        (self.pythonpath / "airflow_stack_sqlite.py").write_text(_SQLITE_MODULE)
        for source in self._dag_sources:
            self.add_dags(source)
        if self.database == "postgres":
            import psycopg2

            try:
                _pg_execute(f'CREATE DATABASE "{self.db_name}"')
            except psycopg2.Error as err:
                raise StackError(f"cannot create the metadata database on 127.0.0.1:5432: {err}") from err
            self._db_created = True
        migrate_log = self.component_logs / "db-migrate.log"
        with migrate_log.open("wb") as out:
            proc = subprocess.run(
                [sys.executable, "-m", "airflow", "db", "migrate"],
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
        if self.database == "sqlite":
            with contextlib.closing(sqlite3.connect(self.home / "airflow.db")) as db:
                db.execute("PRAGMA journal_mode=WAL")  # persistent: every later connection uses it
        self._spawn("api-server", ["api-server", "--host", "127.0.0.1", "--port", str(self.port)])
        self._spawn("scheduler", ["scheduler"])
        self._spawn("dag-processor", ["dag-processor"])
        self._spawn("triggerer", ["triggerer"])
        if self.worker_queues:
            self._start_workers()
        self._wait_healthy()
        if self.worker_queues:
            self._wait_workers()
        self.startup_seconds = time.monotonic() - started

    def _check_prerequisites(self) -> None:
        needed = {"postgres": ("psycopg2", "asyncpg"), "sqlite": ("aiosqlite",)}[self.database]
        if self.executor == "celery":
            needed += ("airflow.providers.celery", "redis")
        for module in needed:  # Airflow's sync and async database drivers, the Celery provider
            if importlib.util.find_spec(module) is None:
                raise StackError(f"{module} is not installed in {sys.prefix}: this stack needs it")
        if self.executor == "celery":
            import redis

            try:
                redis.Redis.from_url(self.broker_url, socket_connect_timeout=5).ping()
            except redis.RedisError as err:
                raise StackError(f"the Celery broker {self.broker_url} does not answer: {err}") from err

    def _start_workers(self) -> None:
        lib = self.pythonpath
        (lib / "airflow_stack_hostname.py").write_text(_HOSTNAME_MODULE)
        self._broker_used = True
        for name, queues in self.worker_queues.items():
            env = {
                **self.env,
                "PYTHONPATH": os.pathsep.join(filter(None, [str(lib), self.env.get("PYTHONPATH")])),
                "AIRFLOW_STACK_HOSTNAME": name,
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "airflow_stack_hostname.hostname",
            }
            self._spawn(
                name,
                [
                    "celery",
                    "worker",
                    "--queues",
                    ",".join(queues),
                    "--celery-hostname",
                    f"{name}@{self.stack_id}",
                    "--concurrency",
                    str(self.worker_concurrency),
                    # One log serving port per machine: finished tasks' logs are read by the
                    # api-server from the shared log folder instead.
                    "--skip-serve-logs",
                    "--without-mingle",
                    "--without-gossip",
                ],
                env=env,
            )

    def _spawn(self, name: str, args: list[str], env: Mapping[str, str] | None = None) -> None:
        log = (self.component_logs / f"{name}.log").open("wb")
        self._log_files.append(log)
        self._procs[name] = subprocess.Popen(
            [sys.executable, "-m", "airflow", *args],
            env=dict(env or self.env),
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pids(self) -> dict[str, int]:
        """The process id (and process group id) of every component started."""
        return {name: proc.pid for name, proc in self._procs.items()}

    def component_log(self, name: str) -> Path:
        """The output file of a component (``api-server``, ``scheduler``, ``worker-1``...)."""
        return self.component_logs / f"{name}.log"

    def check_alive(self) -> None:
        """Raise :class:`StackError` (with its log's tail) if a component has exited."""
        for name, proc in self._procs.items():
            code = proc.poll()
            if code is not None:
                raise StackError(
                    f"airflow {name} exited with code {code}; last lines of its log "
                    f"({self.component_log(name)}):\n{tail(self.component_log(name))}"
                )

    def _logs_tails(self, lines: int = 30) -> str:
        return "\n".join(f"--- {name} ---\n{tail(self.component_log(name), lines)}" for name in self._procs)

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
                raise StackError(
                    f"Airflow not healthy after {self.startup_timeout:g} s; last health answer: {last}\n"
                    f"{self._logs_tails()}"
                )
            time.sleep(0.5)

    def _wait_workers(self) -> None:
        """Wait until every Celery worker answers a ping on the broker (it consumes its queues then)."""
        from celery import Celery  # type: ignore[import-untyped]

        app = Celery(broker=self.broker_url, broker_transport_options={"global_keyprefix": self.broker_prefix})
        expected = {f"{name}@{self.stack_id}" for name in self.worker_queues}
        answered: set[str] = set()
        deadline = time.monotonic() + self.startup_timeout
        try:
            while True:
                self.check_alive()
                for reply in app.control.ping(destination=sorted(expected - answered), timeout=1.0) or []:
                    answered.update(reply)
                if answered >= expected:
                    return
                if time.monotonic() > deadline:
                    raise StackError(
                        f"Celery workers {sorted(expected - answered)} did not answer a ping after "
                        f"{self.startup_timeout:g} s\n{self._logs_tails()}"
                    )
        finally:
            app.close()

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM every component's process group, SIGKILL what is left after ``grace``; drop the
        database and the broker's keys; remove the temp dir unless ``keep``."""
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
            import psycopg2

            try:
                _pg_execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
                self._db_created = False
            except psycopg2.Error as err:
                print(f"airflow_stack: could not drop database {self.db_name}: {err}", file=sys.stderr)
        if self._broker_used:
            self._delete_broker_keys()
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def _delete_broker_keys(self) -> None:
        import redis

        try:
            client = redis.Redis.from_url(self.broker_url, socket_connect_timeout=5)
            keys = list(client.scan_iter(match=f"{self.broker_prefix}*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()
            self._broker_used = False
        except redis.RedisError as err:
            print(f"airflow_stack: could not delete the broker keys {self.broker_prefix}*: {err}", file=sys.stderr)

    # -- DAG files ------------------------------------------------------------------------------

    def add_dags(self, source: str | os.PathLike[str]) -> None:
        """Copy a file, or every file of a directory (not ``__pycache__``), into the dags folder."""
        src = Path(source)
        if src.is_dir():
            for item in sorted(src.iterdir()):
                if item.name == "__pycache__":
                    continue
                if item.is_dir():
                    shutil.copytree(
                        item,
                        self.dags_folder / item.name,
                        dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"),
                    )
                else:
                    shutil.copy2(item, self.dags_folder / item.name)
        elif src.is_file():
            shutil.copy2(src, self.dags_folder / src.name)
        else:
            raise StackError(f"no such DAG file or folder: {src}")

    # -- REST -----------------------------------------------------------------------------------

    def token(self, user: str | None = None) -> str:
        """A JWT for the REST API: ``GET /auth/token`` in all-admins mode, else a login
        (``POST /auth/token``) as ``user`` (default :attr:`user`) with its password."""
        if user is not None and user not in self.passwords:
            raise StackError(f"no user {user!r} in this stack (users: {', '.join(self.users)})")
        if user not in (None, self.user) and self.all_admins:
            raise StackError("all-admins mode: every request is an admin's; start the stack with all_admins=False")
        if self.all_admins:
            resp = httpx.get(f"{self.base_url}/auth/token", timeout=30)
        else:
            name = user or self.user
            resp = httpx.post(
                f"{self.base_url}/auth/token", json={"username": name, "password": self.passwords[name]}, timeout=30
            )
        if resp.status_code not in (200, 201):
            raise StackError(f"/auth/token: HTTP {resp.status_code}: {resp.text[:500]}")
        return str(resp.json()["access_token"])

    @property
    def client(self) -> httpx.Client:
        """An HTTP client for ``base_url`` carrying a JWT (see :meth:`token`)."""
        if self._client is None:
            self._client = httpx.Client(
                base_url=self.base_url, headers={"Authorization": f"Bearer {self.token()}"}, timeout=30
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
                    f"dag-processor log:\n{tail(self.component_log('dag-processor'), 30)}"
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
                    f"{self._logs_tails()}"
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

    def rest_log_events(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> list[dict[str, Any]]:
        """The task attempt's log as the REST API serves it (``GET .../logs/{try}``, JSON): its events."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        data = self.get_json(path, headers={"Accept": "application/json"})
        return [e for e in data.get("content", []) if isinstance(e, dict)]

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

    # -- the command line -----------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """Where everything is: what ``airflow-stack up`` prints (also as JSON with ``--json``)."""
        return {
            "base_url": self.base_url,
            "user": self.user,
            "password": self.password,
            "login_required": not self.all_admins,
            "executor": EXECUTORS[self.executor],
            "database": self.database_label,
            "sql_alchemy_conn": self.sql_alchemy_conn,
            "workers": {name: list(queues) for name, queues in self.worker_queues.items()},
            "airflow_home": str(self.home),
            "dags_folder": str(self.dags_folder),
            "component_logs": {name: str(self.component_log(name)) for name in self._procs},
            "task_logs": str(self.home / "logs"),
            "pids": self.pids,
            "startup_seconds": round(self.startup_seconds, 1),
        }


def _print_summary(info: Mapping[str, Any]) -> None:
    workers = ", ".join(f"{name} (queues {','.join(q)})" for name, q in info["workers"].items())
    lines = [
        f"Airflow is up in {info['startup_seconds']} s: {info['executor']}"
        + (f" with {workers}" if workers else "")
        + f", {info['database']}",
        f"  UI and REST API  {info['base_url']}  (user {info['user']}, password {info['password']}"
        + ("" if info["login_required"] else "; all-admins mode: no login needed")
        + ")",
        f"  token            curl -s -X POST {info['base_url']}/auth/token -H 'Content-Type: application/json' "
        f'-d \'{{"username": "{info["user"]}", "password": "{info["password"]}"}}\'',
        f"  dags folder      {info['dags_folder']}",
        f"  AIRFLOW_HOME     {info['airflow_home']}",
        f"  task logs        {info['task_logs']}",
        "  component logs",
        *(f"    {name:<14} {path}  (pid {info['pids'][name]})" for name, path in info["component_logs"].items()),
        "Ctrl-C or SIGTERM stops every process started here.",
    ]
    print("\n".join(lines), flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="airflow-stack",
        description="Start a throw-away Airflow 3 deployment (api-server, scheduler, "
        "dag-processor, triggerer, and Celery workers) in a temporary AIRFLOW_HOME.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a stack, print where it is, stop it on Ctrl-C or SIGTERM")
    up.add_argument(
        "--dags",
        action="append",
        metavar="PATH",
        help="a DAG file or a folder copied into the dags folder (repeatable; default: example_dags/)",
    )
    up.add_argument("--database", choices=DATABASES, default="postgres", help="metadata database (default postgres)")
    up.add_argument("--executor", choices=sorted(EXECUTORS), default="local", help="executor (default local)")
    up.add_argument("--workers", type=int, default=2, help="Celery workers, worker-1..N (default 2)")
    up.add_argument("--concurrency", type=int, default=4, help="task slots per Celery worker (default 4)")
    up.add_argument("--broker", default=REDIS_URL, help=f"Redis URL of the Celery broker (default {REDIS_URL})")
    up.add_argument("--port", type=int, default=None, help="api-server port (default: a free one)")
    up.add_argument("--no-login", action="store_true", help="all-admins mode: the UI and REST API need no login")
    up.add_argument("--keep", action="store_true", help="keep the temp dir (logs) after stopping")
    up.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    up.add_argument("--timeout", type=float, default=180.0, help="seconds to become healthy (default 180)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``airflow-stack up ...``: run a stack in the foreground; 0 after a clean stop."""
    parser = _parser()
    args = parser.parse_args(argv)
    stop = threading.Event()
    started = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()
        if not started.is_set():
            raise KeyboardInterrupt  # abort the start; `finally` stops what was started

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    try:
        stack = AirflowStack(
            args.dags or [ROOT / "example_dags"],
            database=args.database,
            executor=args.executor,
            workers=args.workers,
            worker_concurrency=args.concurrency,
            broker_url=args.broker,
            port=args.port,
            all_admins=args.no_login,
            keep=args.keep,
            startup_timeout=args.timeout,
        )
    except ValueError as err:  # a combination the stack refuses (celery on SQLite, no workers)
        parser.error(str(err))
    code = 0
    try:
        print(f"starting Airflow in {stack.root} ...", file=sys.stderr, flush=True)
        stack.start()
        started.set()
        info = stack.describe()
        if args.json:
            print(json.dumps(info), flush=True)
        else:
            _print_summary(info)
        while not stop.wait(1.0):
            stack.check_alive()
    except StackError as err:
        print(f"airflow-stack: {err}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    finally:
        # Signals during the stop must not interrupt it half way.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        print("stopping Airflow ...", file=sys.stderr, flush=True)
        stack.stop()
        print("stopped" + (f"; logs kept in {stack.root}" if stack.keep else ""), file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
