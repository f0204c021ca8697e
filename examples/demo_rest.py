"""`make demo`, part 2: the etl pipeline triggered over REST on a real, embedded Airflow.

Starts a throw-away Airflow 3 (api-server, scheduler, dag-processor, triggerer; SQLite and
LocalExecutor in a temporary ``AIRFLOW_HOME``; a real login) with example_dags/gitlab_etl.py
deployed, then does what a user does from another system with curl: gets a JWT from
``/auth/token``, sends one invalid trigger (HTTP 400, no run created), triggers the pipeline with
CircleCI ``build_parameters`` and a ``ref``, waits for it, and reads each job's log (masked by
the real deployment) and the dotenv handoff back over the REST API. Every process started is
stopped at the end, also on Ctrl-C, SIGTERM or an error. Airflow's own logs go to a file, named
at the end. Exit 0 only if the pipeline succeeded and no masked value was seen in clear.

The REST calls run ``curl`` when it is installed (else ``httpx``, which Airflow depends on); each
call is printed as the curl command a user would type.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from airflow_stack import AirflowStack, StackError  # noqa: E402

from airflow_ci_vars.settings import load_settings  # noqa: E402

EXAMPLES = ROOT / "example_dags"
PIPELINE = EXAMPLES / "pipelines" / "etl"
DAG_ID = "acme_data_etl"  # gitlab_etl.py: project acme/data/etl
# What a user's CircleCI-era script sends (seed 000): any JSON value, seen by jobs as a string.
CONF: dict[str, Any] = {
    "build_parameters": {"BATCH": 500, "TABLES": ["orders", "customers"], "DRY_RUN": True},
    "ref": "feature/login",
}
# A name CircleCI refuses ("only ASCII letters, digits and the underscore character").
BAD_CONF: dict[str, Any] = {"build_parameters": {"dry-run": True}}
JOB_LOGGER = ".CIJobOperator"  # the operator's logger: the job's commands and output
DEFAULT_AIRFLOW_LOG = ROOT / ".demo-airflow.log"


class DemoError(RuntimeError):
    """A step of the demo failed (the message says which)."""


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer: status code, and the body (parsed JSON, or text)."""

    status: int
    body: Any


class Rest:
    """The user's HTTP client: curl when installed, else httpx; prints each call as curl."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.curl = shutil.which("curl")
        self.token: str | None = None

    def describe(self) -> str:
        """Which client makes the calls, for the reader."""
        if self.curl:
            return f"calls made with curl ({self.curl})"
        return "curl is not installed: calls made with httpx; the commands shown are their curl equivalents"

    def show(self, method: str, path: str, body: Any = None, *, accept_json: bool = False) -> None:
        """Print the curl command of a call (``$AIRFLOW``, ``$TOKEN`` and ``$RUN`` as shell variables)."""
        parts = ["curl -s"]
        if method != "GET":
            parts.append(f"-X {method}")
        parts.append(f'"$AIRFLOW{path}"')
        if self.token is not None and not path.startswith("/auth/"):
            parts.append('-H "Authorization: Bearer $TOKEN"')
        if accept_json:
            parts.append("-H 'Accept: application/json'")
        if body is not None:
            parts.append("-H 'Content-Type: application/json'")
            parts.append(f"-d {shlex.quote(json.dumps(body))}")
        print("$ " + " ".join(parts))

    def call(self, method: str, path: str, body: Any = None, *, accept_json: bool = False, run_id: str = "") -> Reply:
        """One request to ``base_url + path`` (``$RUN`` in ``path`` stands for ``run_id``)."""
        url = self.base_url + path.replace("$RUN", run_id)
        headers = {}
        if self.token is not None and not path.startswith("/auth/"):
            headers["Authorization"] = f"Bearer {self.token}"
        if accept_json:
            headers["Accept"] = "application/json"
        if body is not None:
            headers["Content-Type"] = "application/json"
        data = None if body is None else json.dumps(body)
        if self.curl:
            status, text = self._curl(method, url, headers, data)
        else:
            resp = httpx.request(method, url, headers=headers, content=data, timeout=60)
            status, text = resp.status_code, resp.text
        try:
            return Reply(status, json.loads(text))
        except ValueError:
            return Reply(status, text)

    def _curl(self, method: str, url: str, headers: Mapping[str, str], data: str | None) -> tuple[int, str]:
        assert self.curl is not None
        args = [self.curl, "-sS", "--max-time", "60", "-X", method, url, "-w", "\n%{http_code}"]
        for name, value in headers.items():
            args += ["-H", f"{name}: {value}"]
        if data is not None:
            args += ["--data-binary", data]
        proc = subprocess.run(args, capture_output=True, text=True, check=False, timeout=90)
        if proc.returncode != 0:
            raise DemoError(f"curl {method} {url} failed (exit {proc.returncode}): {proc.stderr.strip()}")
        text, _, code = proc.stdout.rpartition("\n")
        return int(code), text


def heading(text: str) -> None:
    print(f"\n== {text} " + "=" * max(0, 70 - len(text)), flush=True)


def short(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def expect(reply: Reply, status: int, what: str) -> Any:
    """The body of a reply with the expected status; else DemoError."""
    if reply.status != status:
        raise DemoError(f"{what}: HTTP {reply.status} (expected {status}): {short(reply.body, 1000)}")
    return reply.body


def masked_values() -> set[str]:
    """The masked values of the example's variable store (they must never be seen in clear)."""
    settings = load_settings(PIPELINE / "settings.yml")
    stored = [*settings.instance, *(v for vs in settings.groups.values() for v in vs)]
    stored += [v for vs in settings.projects.values() for v in vs]
    return {v.value for v in stored if v.masked}


def wait_for_dag(rest: Rest, timeout: float, stack: AirflowStack) -> None:
    rest.show("GET", f"/api/v2/dags/{DAG_ID}")
    deadline = time.monotonic() + timeout
    while (reply := rest.call("GET", f"/api/v2/dags/{DAG_ID}")).status != 200:
        stack.check_alive()
        if time.monotonic() > deadline:
            errors = rest.call("GET", "/api/v2/importErrors").body
            raise DemoError(
                f"DAG {DAG_ID} not parsed after {timeout:g} s (HTTP {reply.status}); import errors: {errors}"
            )
        time.sleep(0.5)
    print(f"-> 200: DAG {reply.body['dag_id']} is parsed (paused: {reply.body['is_paused']})")


def job_tasks(rest: Rest, run_id: str) -> list[dict[str, Any]]:
    """The run's task instances (``GET .../taskInstances``)."""
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/$RUN/taskInstances"
    return list(expect(rest.call("GET", path, run_id=run_id), 200, "task instances")["task_instances"])


def wait_for_run(rest: Rest, run_id: str, timeout: float, stack: AirflowStack) -> str:
    """Poll the run, printing each job's state changes; return the run's final state."""
    rest.show("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/$RUN")
    print("   (polled every second; the jobs' states from .../dagRuns/$RUN/taskInstances)")
    started = time.monotonic()
    seen: dict[str, str] = {}
    while True:
        stack.check_alive()
        run = expect(rest.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/$RUN", run_id=run_id), 200, "run state")
        for ti in job_tasks(rest, run_id):
            if ti["operator"] not in ("CIJobOperator", "PipelineStatusOperator"):
                continue  # the stage gates
            state = ti["state"]
            if state and seen.get(ti["task_id"]) != state:
                seen[ti["task_id"]] = state
                print(f"   {time.monotonic() - started:5.1f} s  {ti['task_display_name']:<16} {state}", flush=True)
        if run["state"] in ("success", "failed"):
            return str(run["state"])
        if time.monotonic() - started > timeout:
            raise DemoError(f"run {run_id} still {run['state']} after {timeout:g} s")
        time.sleep(1.0)


def job_log(rest: Rest, run_id: str, ti: Mapping[str, Any]) -> list[str]:
    """The job's lines of its log, as the REST API serves it (JSON events)."""
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/$RUN/taskInstances/{ti['task_id']}/logs/{max(ti['try_number'], 1)}"
    rest.show("GET", path, accept_json=True)
    body = expect(rest.call("GET", path, accept_json=True, run_id=run_id), 200, f"log of {ti['task_id']}")
    lines = []
    for event in body.get("content", []):
        if not isinstance(event, dict):
            continue
        # The job's commands and output come from the operator; errors from Airflow's task runner.
        if str(event.get("logger", "")).endswith(JOB_LOGGER) or event.get("level") in ("error", "critical"):
            lines.append(str(event.get("event", "")))
            for detail in event.get("error_detail") or []:  # the exception of a failed job
                lines.append(f"{detail.get('exc_type')}: {detail.get('exc_value')}")
    return lines


def show_handoff(rest: Rest, run_id: str, jobs: list[dict[str, Any]], logs: Mapping[str, list[str]]) -> None:
    """Each producer's ``dotenv`` XCom, and the lines of later jobs that printed its values."""
    producers = 0
    for ti in jobs:
        path = f"/api/v2/dags/{DAG_ID}/dagRuns/$RUN/taskInstances/{ti['task_id']}/xcomEntries/dotenv"
        reply = rest.call("GET", path, run_id=run_id)
        if reply.status == 404:
            continue  # no dotenv report
        producers += 1
        rest.show("GET", path)
        report = expect(reply, 200, f"dotenv of {ti['task_id']}")["value"]
        print(f"-> {ti['task_display_name']}'s dotenv XCom: {json.dumps(report)}")
        for key, value in report.items():
            consumers = [
                f"{job} > {line}"
                for job, lines in logs.items()
                if job != ti["task_display_name"]
                for line in lines
                if value in line and not line.startswith("$ ")
            ]
            if consumers:
                print(f"   {key} handed on; the consumers printed:")
                print("\n".join(f"     {line}" for line in consumers))
                continue
            # A dotenv value may also be the job's own environment:url (GitLab's dynamic URL).
            links_path = f"/api/v2/dags/{DAG_ID}/dagRuns/$RUN/taskInstances/{ti['task_id']}/links"
            links = rest.call("GET", links_path, run_id=run_id)
            found = links.body.get("extra_links", {}) if links.status == 200 else {}
            named = [name for name, url in found.items() if url == value]
            if named:
                rest.show("GET", links_path)
                print(f"-> {json.dumps(found)}: {key} is the '{named[0]}' link of {ti['task_display_name']}")
            else:
                print(f"   {key}: printed by no other job")
    if not producers:
        print("(no job published a dotenv report)")


def demo(stack: AirflowStack, rest: Rest, secrets: set[str], conf: Mapping[str, Any]) -> int:
    """The REST part of the demo on a running stack, triggering with ``conf``; the exit code."""
    heading("a token from /auth/token (Simple auth manager, user admin)")
    print(f"$ AIRFLOW={stack.base_url}")
    login = {"username": stack.user, "password": stack.password}
    rest.show("POST", "/auth/token", login)
    rest.token = expect(rest.call("POST", "/auth/token", login), 201, "login")["access_token"]
    print(f"-> 201: {{'access_token': '{rest.token[:16]}...'}}")
    print("$ TOKEN=<access_token>    # a JWT, valid for 24 h ([api_auth] jwt_expiration_time)")
    wait_for_dag(rest, 180, stack)

    heading("an invalid request: HTTP 400, and no run is created")
    body: dict[str, Any] = {"logical_date": None, "conf": BAD_CONF}
    rest.show("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", body)
    reply = rest.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", body)
    detail = expect(reply, 400, "the invalid trigger")["detail"]
    print(f"-> 400: {str(detail).splitlines()[0]}")
    rest.show("GET", f"/api/v2/dags/{DAG_ID}/dagRuns")
    runs = expect(rest.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns"), 200, "runs")
    print(f"-> 200: total_entries {runs['total_entries']}")
    if runs["total_entries"] != 0:
        raise DemoError("the invalid request created a run")

    heading("trigger the pipeline" + (" with CircleCI build_parameters" if "build_parameters" in conf else ""))
    body = {"logical_date": None, "conf": dict(conf)}
    rest.show("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", body)
    run = expect(rest.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", body), 200, "the trigger")
    run_id = str(run["dag_run_id"])
    print(
        f"-> 200: run {run_id}, state {run['state']}, triggered_by {run['triggered_by']}, "
        f"user {run['triggering_user_name']}"
    )
    print(f"$ RUN='{run_id}'")
    started = time.monotonic()
    state = wait_for_run(rest, run_id, 300, stack)
    print(f"-> the pipeline finished: {state} ({time.monotonic() - started:.0f} s after the trigger)")

    heading("each job's log, from the REST API (masked by the deployment)")
    jobs = [ti for ti in job_tasks(rest, run_id) if ti["operator"] == "CIJobOperator"]
    jobs.sort(key=lambda ti: (ti["start_date"] is None, ti["start_date"] or ""))
    logs: dict[str, list[str]] = {}
    for ti in jobs:
        lines = job_log(rest, run_id, ti) if ti["try_number"] else []
        logs[ti["task_display_name"]] = lines
        print("\n".join(f"   {ti['task_display_name']} > {line}" for line in lines))
        print(f"   {ti['task_display_name']}: {ti['state']}")

    heading("the dotenv handoff (XCom 'dotenv' of the producing job)")
    show_handoff(rest, run_id, jobs, logs)

    everything = json.dumps(logs)
    seen = sorted(s for s in secrets if s in everything)
    print(f"\nmasked values of settings.yml: {len(secrets)}; seen in clear in the logs fetched: {len(seen)}")
    if seen:
        print("ERROR: a masked value was printed in clear", file=sys.stderr)
        return 1
    if state != "success":
        print(f"ERROR: the pipeline {state}", file=sys.stderr)
        return 1
    print("Next: docs/rest.md (these calls and more); `airflow-ci-vars run` (docs/cli.md) runs the same")
    print("pipeline without a deployment; `scripts/airflow-stack up --database sqlite` keeps one up for the UI.")
    return 0


def save_airflow_logs(root: Path, target: Path) -> None:
    """Every log the deployment wrote (components, DAG parsing, tasks), in one file."""
    files = sorted(p for p in root.rglob("*.log") if p.is_file())
    with target.open("w") as out:
        for path in files:
            out.write(f"===== {path.relative_to(root)}\n")
            out.write(path.read_text(errors="replace"))
            out.write("\n")


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not JSON: {err}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGINT, SIGTERM and SIGHUP stop the demo the same way


def main(argv: list[str] | None = None) -> int:
    """Run the REST demo; 0 if the pipeline succeeded, 1 if not, 130 when interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--airflow-log",
        type=Path,
        default=DEFAULT_AIRFLOW_LOG,
        help=f"where Airflow's own logs are saved (default {DEFAULT_AIRFLOW_LOG.name})",
    )
    parser.add_argument(
        "--conf",
        type=_json_object,
        default=CONF,
        help=f"the run's conf, a JSON object (default {json.dumps(CONF)})",
    )
    args = parser.parse_args(argv)
    begun = time.monotonic()
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # progress shows as it happens, also in a pipe
    # SIGINT too: Python leaves Ctrl-C ignored when the demo is started with it ignored (from a
    # background job of a script, `nohup`), and the demo must still stop cleanly on it.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    # keep=True: the logs are saved after every process has stopped, then the temp dir removed.
    # SQLite holds one run at a time (airflow-notes 6.2): the demo makes exactly one. The file is
    # parsed once; re-parsing it often would only take CPU from the jobs. A first start on a
    # fresh machine compiles Airflow's modules: allow it time.
    stack = AirflowStack(
        [EXAMPLES / "gitlab_etl.py"],
        database="sqlite",
        all_admins=False,
        min_file_process_interval=30,
        startup_timeout=300,
        keep=True,
    )
    rest = Rest(stack.base_url)
    code = 1
    try:
        # The loader finds its pipeline in pipelines/etl next to it, as in example_dags/.
        shutil.copytree(PIPELINE, stack.dags_folder / "pipelines" / "etl")
        heading("the etl pipeline over REST, on an embedded Airflow")
        print(f"api-server, scheduler, dag-processor, triggerer; SQLite and LocalExecutor in {stack.root}", flush=True)
        print("dags folder: example_dags/gitlab_etl.py and its pipelines/etl", flush=True)
        stack.start()
        shown = ", ".join(f"{name} {pid}" for name, pid in stack.pids.items())
        print(f"Airflow is up in {stack.startup_seconds:.0f} s at {stack.base_url} (pids: {shown})")
        print(f"REST API: {rest.describe()}")
        code = demo(stack, rest, masked_values(), args.conf)
    except (StackError, DemoError, httpx.HTTPError, subprocess.SubprocessError, OSError) as err:
        print(f"\nERROR: {err}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        code = 130
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop short
        pids = stack.pids
        print(f"\nstopping Airflow ({len(pids)} components and their children) ...", flush=True)
        stack.stop()
        try:
            save_airflow_logs(stack.root, args.airflow_log)
        except OSError as err:
            print(f"WARNING: Airflow's logs not saved: {err}", file=sys.stderr)
        shutil.rmtree(stack.root, ignore_errors=True)
        left = _groups_left(pids.values())
        if left:
            print(f"WARNING: process groups still running: {left}", file=sys.stderr)
            code = code or 1
        else:
            print(f"stopped (process groups {' '.join(map(str, pids.values()))} are gone); {stack.root} removed")
        print(f"Airflow's own logs (components, DAG parsing, tasks): {args.airflow_log}")
        print(f"demo over REST: {time.monotonic() - begun:.0f} s, exit {code}")
    return code


def _groups_left(pgids: Iterable[int], timeout: float = 10.0) -> list[int]:
    """The process groups that still exist after ``timeout`` s (killed children of a group may
    take a moment to be reaped by init)."""
    pgids = list(pgids)
    deadline = time.monotonic() + timeout
    while True:
        left = []
        for pgid in pgids:
            try:
                os.killpg(pgid, 0)
                left.append(pgid)
            except ProcessLookupError:
                pass
            except PermissionError:
                left.append(pgid)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
