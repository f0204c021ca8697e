"""Benchmark: the api-server permission gate, trigger latency with it and without it.

Run with ``.venv/bin/python bench/bench_gate.py [--n 200] [--warmup 20] [--big-projects 100]
[--big-every 1]`` (not a test; about 2 minutes). It needs what the stack tests need: the local
PostgreSQL server (127.0.0.1:5432, trust auth) and ``asyncpg``.

One deployment (scripts/airflow_stack.py: api-server, scheduler with LocalExecutor,
dag-processor, triggerer, a fresh PostgreSQL database; login mode, users ``olga`` with Airflow
role ``op`` -> GitLab maintainer, ``bob`` with role ``user`` -> developer) runs two CI pipeline
DAGs of the same two-job ``.gitlab-ci.yml`` written by this script:

* ``bench_gate``: project ``acme/gate`` with a small settings file (one project, 3 variables);
* ``bench_gate_big``: project ``acme/gate-big`` in a large settings file (``--big-projects``
  projects of 10 variables each, plus instance and group variables), which the gate reads whole
  on every request.

Both DAGs are paused, so a triggered run stays queued: what is measured is the request alone.
A second api-server runs against the same metadata database and environment (``stack.env``):
this script with ``--serve-ungated PORT`` builds Airflow's app as ``airflow api-server`` does
(``airflow.api_fastapi.app.cached_app``), removes ``PermissionGate`` from ``app.user_middleware``
before the middleware stack is built (on the first request) and serves it with uvicorn, with the
uvicorn options of ``airflow api-server``. Before measuring, the script checks that a conf with
``pipeline_source`` is refused (400) by the gated server and accepted by the other, that a gated
run carries the trigger stamp (``conf["ci_trigger"]``) and an ungated one does not, and that the
same JWT (``POST /auth/token`` on the gated server) works on both.

Then, after ``--warmup`` rounds, ``--n`` rounds of ``POST /api/v2/dags/{id}/dagRuns`` (one
keep-alive connection per server and user, one request at a time, the order of the requests
rotating every round so that each kind sees the same machine):

* **gated** / **ungated**: ``bench_gate`` as ``olga`` on the default branch (allowed; the gated
  server checks and stamps), every round;
* **refused**: ``bench_gate`` as ``bob`` on the protected default branch: the gated server
  answers 403 itself, no run is created; every round;
* **gated-big** / **ungated-big**: the same as gated/ungated on ``bench_gate_big``, every
  ``--big-every`` rounds (default every round; a big file costs the gated server a parse per
  request, fewer rounds keep a run with a bigger ``--big-projects`` short).

Latency is client-side (``time.perf_counter`` around the request and the response's body);
median, p90, min and max per kind, the ratio gated/ungated of the medians and the median of the
ratios round by round. The settings-file part of the gate's work (``FileStore.load`` and the
project's access settings, what the gate does per request) is also timed in this process.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from airflow_stack import AirflowStack, StackError, free_port, tail  # noqa: E402

DAG_ID = "bench_gate"
BIG_DAG_ID = "bench_gate_big"
PROJECT = "acme/gate"
BIG_PROJECT = "acme/gate-big"
USERS = {"olga": "op", "bob": "user"}  # op -> maintainer (may run on main), user -> developer (may not)
STAMP_KEY = "ci_trigger"

DAG_FILE = '''\
"""Benchmark DAGs written by bench/bench_gate.py: one pipeline, a small and a large settings file."""
from pathlib import Path

from airflow_ci_vars.dag_factory import gitlab_ci_dag

HERE = Path(__file__).parent / "bench_gate"

small = gitlab_ci_dag(HERE / ".gitlab-ci.yml", project="{project}", dag_id="{dag_id}", settings=HERE / "settings.yml")
big = gitlab_ci_dag(
    HERE / ".gitlab-ci.yml", project="{big_project}", dag_id="{big_dag_id}", settings=HERE / "settings_big.yml"
)
'''

PIPELINE = """\
stages: [build, deploy]

build:
  stage: build
  script:
    - echo "build $CI_COMMIT_REF_NAME"

deploy:
  stage: deploy
  environment: production
  script:
    - echo "deploy ${#PROD_SECRET}"
"""

ACCESS = """\
default_branch: main
protected_refs: [main]                 # maintainers may run on main, developers may not
protected_environments: [production]
"""

PROJECT_VARIABLES = """\
    pipeline_variables_minimum_role: maintainer
    variables:
      - {key: PROTECTED_TOKEN, value: "Qz7kPwTk8v2Mx9Lr", masked: true, protected: true}
      - {key: PROD_SECRET, value: "Vb3nHs6Jd1Fe8GuY", masked: true, environment_scope: production}
      - {key: GREETING, value: "hello"}
"""


def _secret(i: int) -> str:
    return f"Sx{i:08d}Kq7Lm2Np"


def _variables(prefix: str, count: int, indent: str, scoped: bool = True) -> list[str]:
    lines = [f"{indent}variables:"]
    for i in range(count):
        if i % 3 == 0:
            lines.append(f'{indent}  - {{key: {prefix}_SECRET_{i}, value: "{_secret(i)}", masked: true}}')
        elif i % 3 == 1 and scoped:
            lines.append(f'{indent}  - {{key: {prefix}_VAR_{i}, value: "v-{i}", environment_scope: "review/*"}}')
        else:
            lines.append(f'{indent}  - {{key: {prefix}_VAR_{i}, value: "value {i} of {prefix}"}}')
    return lines


def big_settings(projects: int) -> str:
    """A settings file of ``projects`` projects (10 variables each), 100 instance and 100 group variables."""
    lines = [ACCESS.rstrip("\n"), "instance:", *_variables("INST", 100, "  ", scoped=False)]
    lines += ["groups:", "  acme:", *_variables("GROUP", 100, "    ")]
    lines += ["projects:", f"  {BIG_PROJECT}:", PROJECT_VARIABLES.rstrip("\n")]
    for p in range(projects):
        lines += [f"  acme/p{p:04d}:", *_variables(f"P{p}", 10, "    ")]
    return "\n".join(lines) + "\n"


def write_dags(dags_folder: Path, big_projects: int) -> tuple[Path, Path]:
    """The DAG file and its pipeline folder; the two settings files' paths."""
    folder = dags_folder / "bench_gate"
    folder.mkdir()
    (folder / ".gitlab-ci.yml").write_text(PIPELINE)
    small = folder / "settings.yml"
    small.write_text(f"{ACCESS}projects:\n  {PROJECT}:\n{PROJECT_VARIABLES}")
    big = folder / "settings_big.yml"
    big.write_text(big_settings(big_projects))
    dag_file = DAG_FILE.format(project=PROJECT, dag_id=DAG_ID, big_project=BIG_PROJECT, big_dag_id=BIG_DAG_ID)
    (dags_folder / "bench_gate_dags.py").write_text(dag_file)
    return small, big


# -- the api-server without the gate ---------------------------------------------------------------


def serve_ungated(port: int) -> None:
    """``--serve-ungated PORT``: Airflow's api-server app without ``PermissionGate``, on uvicorn."""
    os.environ["_AIRFLOW_PROCESS_CONTEXT"] = "server"  # as airflow.api_fastapi.main does
    os.environ["AIRFLOW_API_APPS"] = "all"  # as `airflow api-server` does (default --apps all)
    import uvicorn
    from airflow.api_fastapi.app import cached_app
    from airflow.api_fastapi.auth.tokens import get_signing_args
    from airflow.configuration import conf

    from airflow_ci_vars.plugins.gate import PermissionGate

    get_signing_args()
    app = cached_app(apps="all")
    kept = [m for m in app.user_middleware if m.cls is not PermissionGate]
    removed = len(app.user_middleware) - len(kept)
    if not removed:
        raise SystemExit("PermissionGate is not among the app's middleware: the comparison would be meaningless")
    # Starlette builds the middleware stack from this list on the first request.
    app.user_middleware = kept
    names = [getattr(m.cls, "__name__", repr(m.cls)) for m in kept]
    print(f"ungated api-server: removed {removed} PermissionGate; middleware left: {names}", flush=True)
    timeout = conf.getint("api", "worker_timeout", fallback=120)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        workers=1,
        timeout_keep_alive=timeout,
        timeout_graceful_shutdown=timeout,
        access_log=False,
        log_level=conf.get("logging", "uvicorn_logging_level", fallback="info").lower(),
        proxy_headers=False,
        log_config=None,
    )


class UngatedServer:
    """This script in ``--serve-ungated`` mode, in its own session, with the stack's environment."""

    def __init__(self, stack: AirflowStack) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = stack.component_log("api-server-ungated")
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve-ungated", str(self.port)],
            env=dict(stack.env),
            cwd=stack.root,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_healthy(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise StackError(f"the ungated api-server exited ({self.proc.returncode}):\n{tail(self.log_path)}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=5).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise StackError(f"the ungated api-server did not answer after {timeout:g} s:\n{tail(self.log_path)}")
            time.sleep(0.5)

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM its process group (only this process and what it started), SIGKILL after ``grace``."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._log.close()


# -- measuring -------------------------------------------------------------------------------------


@dataclass
class Kind:
    """One kind of request: which server, DAG and user, the status it must get, its latencies."""

    label: str
    client: httpx.Client
    dag_id: str
    expect: int
    samples: list[float] = field(default_factory=list)
    count: int = 0

    def send(self, record: bool) -> float:
        self.count += 1
        body = {"logical_date": None, "conf": {}, "dag_run_id": f"bench-{self.label.split()[0]}-{self.count:05d}"}
        started = time.perf_counter()
        resp = self.client.post(f"/api/v2/dags/{self.dag_id}/dagRuns", json=body)
        elapsed = time.perf_counter() - started
        if resp.status_code != self.expect:
            raise StackError(f"{self.label}: HTTP {resp.status_code} (expected {self.expect}): {resp.text[:500]}")
        if record:
            self.samples.append(elapsed)
        return elapsed


def _client(base_url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def _check_setup(stack: AirflowStack, gated: httpx.Client, ungated: httpx.Client) -> None:
    """The token works on both servers; only the gated one refuses ``pipeline_source`` and stamps."""
    for name, client in (("gated", gated), ("ungated", ungated)):
        resp = client.get(f"/api/v2/dags/{DAG_ID}")
        if resp.status_code != 200:
            raise StackError(f"{name} server: olga's token: GET /dags/{DAG_ID}: HTTP {resp.status_code}: {resp.text}")
    body = {"logical_date": None, "conf": {"pipeline_source": "schedule"}}
    refused = gated.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={**body, "dag_run_id": "check-source-gated"})
    accepted = ungated.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={**body, "dag_run_id": "check-source-ungated"})
    if refused.status_code != 400 or accepted.status_code != 200:
        raise StackError(
            f"conf with pipeline_source: gated HTTP {refused.status_code} (expected 400), ungated HTTP "
            f"{accepted.status_code} (expected 200): {refused.text[:300]} / {accepted.text[:300]}"
        )
    stamps = {}
    for name, client in (("gated", gated), ("ungated", ungated)):
        run_id = f"check-stamp-{name}"
        resp = client.post(
            f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": {}, "dag_run_id": run_id}
        )
        if resp.status_code != 200:
            raise StackError(f"{name} trigger: HTTP {resp.status_code}: {resp.text[:500]}")
        stamps[name] = (stack.get_json(f"/dags/{DAG_ID}/dagRuns/{run_id}")["conf"] or {}).get(STAMP_KEY)
    if not stamps["gated"] or stamps["ungated"] is not None:
        raise StackError(f"trigger stamps: {stamps} (expected one on the gated run only)")
    print(
        f"checked: pipeline_source refused by the gated server ({refused.json()['detail'][:60]}...), accepted by the "
        f"ungated one; gated run stamped {stamps['gated']}, ungated run not; olga's token works on both",
        flush=True,
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def _stats(samples: list[float]) -> tuple[float, float, float, float]:
    p90 = statistics.quantiles(samples, n=10, method="inclusive")[-1]
    return statistics.median(samples), p90, min(samples), max(samples)


def _settings_cost(path: Path, project: str, dag_id: str, repeats: int = 30) -> float:
    """The median time of what the gate does with a settings file per request (this process)."""
    from airflow_ci_vars.stores.configured import project_settings
    from airflow_ci_vars.stores.file import FileStore

    def once() -> None:
        name, settings = project_settings(FileStore(path), project, dag_id)
        settings.access(name)

    return _median_time(once, repeats)


def _median_time(func: Callable[[], Any], repeats: int) -> float:
    func()  # warm-up
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        func()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def measure(args: argparse.Namespace) -> None:
    stack = AirflowStack(
        [],
        all_admins=False,
        users=USERS,
        # Parsed once: re-parsing every few seconds would compete with the requests for CPU.
        min_file_process_interval=300,
        keep=args.keep,
    )
    server: UngatedServer | None = None
    clients: list[httpx.Client] = []
    try:
        small, big = write_dags(stack.dags_folder, args.big_projects)
        _settings_cost(big, BIG_PROJECT, BIG_DAG_ID, repeats=1)  # both files load (before anything starts)
        _settings_cost(small, PROJECT, DAG_ID, repeats=1)
        stack.start()
        server = UngatedServer(stack)
        for dag_id in (DAG_ID, BIG_DAG_ID):
            stack.wait_for_dag(dag_id, timeout=120)
            resp = stack.api("PATCH", f"/dags/{dag_id}", json={"is_paused": True})
            if resp.status_code != 200 or resp.json().get("is_paused") is not True:
                raise StackError(f"pausing {dag_id}: HTTP {resp.status_code}: {resp.text[:300]}")
        server.wait_healthy()
        olga, bob = stack.token("olga"), stack.token("bob")
        gated = _client(stack.base_url, olga)
        ungated = _client(server.base_url, olga)
        refusing = _client(stack.base_url, bob)
        clients += [gated, ungated, refusing]
        _check_setup(stack, gated, ungated)
        main_kinds = [
            Kind("gated", gated, DAG_ID, 200),
            Kind("ungated", ungated, DAG_ID, 200),
            Kind("refused (403, bob on main)", refusing, DAG_ID, 403),
        ]
        big_kinds = [
            Kind("gated-big (big settings file)", gated, BIG_DAG_ID, 200),
            Kind("ungated-big (same DAG)", ungated, BIG_DAG_ID, 200),
        ]
        kinds = main_kinds[:2] + big_kinds + main_kinds[2:]
        detail = refusing.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": {}})
        print(f"refused request: HTTP {detail.status_code}: {detail.json().get('detail')}", flush=True)
        print(
            f"stack up in {stack.startup_seconds:.1f} s; big settings file {big.stat().st_size / 1024:.0f} KB; "
            f"load average {os.getloadavg()[0]:.1f}; {args.warmup} warm-up + {args.n} rounds of "
            f"{len(main_kinds)} requests, every {args.big_every} round(s) {len(big_kinds)} more on {BIG_DAG_ID}",
            flush=True,
        )
        pairs: dict[str, list[float]] = {"small": [], "big": []}
        started = time.monotonic()
        for i in range(args.warmup + args.n):
            record = i >= args.warmup
            todo = main_kinds + (big_kinds if i % args.big_every == 0 else [])
            shift = i % len(todo)
            took = {k.label: k.send(record) for k in todo[shift:] + todo[:shift]}
            if record:
                pairs["small"].append(took[main_kinds[0].label] / took[main_kinds[1].label])
                if len(todo) > len(main_kinds):
                    pairs["big"].append(took[big_kinds[0].label] / took[big_kinds[1].label])
        span = time.monotonic() - started
        small_cost = _settings_cost(small, PROJECT, DAG_ID)
        big_cost = _settings_cost(big, BIG_PROJECT, BIG_DAG_ID)
        big_kb = big.stat().st_size / 1024
        queued = stack.get_json(f"/dags/{DAG_ID}/dagRuns", params={"state": "queued", "limit": 1})["total_entries"]
        running = stack.get_json(f"/dags/{DAG_ID}/dagRuns", params={"state": "running", "limit": 1})["total_entries"]
    finally:
        for client in clients:
            client.close()
        if server is not None:
            server.stop()
        stack.stop()

    print(
        f"\n{args.n} rounds in {span:.1f} s; load average {os.getloadavg()[0]:.1f}; runs of {DAG_ID}: "
        f"{queued} queued, {running} running (paused DAG)"
    )
    header = f"{'request (POST .../dagRuns)':<32} {'n':>4} {'median ms':>10} {'p90 ms':>8} {'min ms':>8} {'max ms':>8}"
    print(header)
    print("-" * len(header))
    medians = {}
    for kind in kinds:
        median, p90, low, high = _stats(kind.samples)
        medians[kind.label] = median
        print(f"{kind.label:<32} {len(kind.samples):>4} {_ms(median):>10} {_ms(p90):>8} {_ms(low):>8} {_ms(high):>8}")
    g, u, gb, ub = (medians[k.label] for k in kinds[:4])
    print(
        f"\ngated/ungated, small settings file: {g / u:.2f}x of medians (round by round: "
        f"{statistics.median(pairs['small']):.2f}x); the gate adds {_ms(g - u)} ms"
    )
    print(
        f"gated/ungated, big settings file:   {gb / ub:.2f}x of medians (round by round: "
        f"{statistics.median(pairs['big']):.2f}x); the gate adds {_ms(gb - ub)} ms"
    )
    print(
        f"settings file read per request (in this process, median): small {_ms(small_cost)} ms, "
        f"big ({big_kb:.0f} KB, {args.big_projects} projects) {_ms(big_cost)} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="measured rounds (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="rounds not counted, first (default 20)")
    parser.add_argument("--big-projects", type=int, default=100, help="projects of the big settings file (default 100)")
    parser.add_argument(
        "--big-every", type=int, default=1, help="measure the big settings file every N rounds (default 1)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the deployment's temp dir (logs)")
    # The ungated api-server: this script, started by the benchmark itself.
    parser.add_argument("--serve-ungated", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_ungated is not None:
        serve_ungated(args.serve_ungated)
        return
    measure(args)


if __name__ == "__main__":
    main()
