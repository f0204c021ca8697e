"""GitLab's permission model on the real stack: role x channel x protected ref x protected environment.

Users (the Simple auth manager's, tests/stack/conftest.py): ``viewer`` (viewer: GitLab reporter),
``bob`` (user: developer), ``olga`` (op: maintainer), ``admin`` (owner), and ``dana``, an Airflow
``user`` whom the project's ``members`` make a maintainer. tests/stack/dags/permissions/settings.yml:
``main`` and ``production`` are maintainers' (GitLab's defaults), ``acme/perm`` restricts pipeline
variables to maintainers and lets ``acme/perm-up`` and ``acme/perm-reader`` use its jobs.

Channels: REST (a bearer token), the UI's trigger form (the UI's cookie and a ``Referer``, the
request the form sends), a manual job's Human-in-the-loop answer, schedules, a multi-project
pipeline (``trigger:project``), ``needs:project`` -- and the API calls that would forge what the
jobs hand on (Asset events, XComs) or re-run a protected run (clear).

Every refusal by the api-server is ``403`` and creates no run; every refusal in a job fails it
before its script. For every denied run, no derived form of a protected or environment-scoped
value (itself, reversed, its first characters, its length line) is in any log file, XCom,
artifact file or Asset event of that run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from airflow_stack import AirflowStack

pytestmark = pytest.mark.stack

SETTINGS = yaml.safe_load((Path(__file__).parent / "dags/permissions/settings.yml").read_text())
_PERM = {v["key"]: v["value"] for v in SETTINGS["projects"]["acme/perm"]["variables"]}
TOKEN, PROD = _PERM["PROTECTED_TOKEN"], _PERM["PROD_SECRET"]
PERM, MANUAL = "acme_perm", "acme_perm_manual"

CREATE = "Insufficient permissions to create a new pipeline"
REF = "You do not have sufficient permission to run a pipeline on 'main'."
VARIABLES = "Insufficient permissions to set pipeline variables"
DEPLOY = "The environment this job is deploying to is protected. Only users with permission may successfully run"
PLAY = "Insufficient permissions to play this manual job"


def derived(secret: str) -> dict[str, str]:
    """The forms of ``secret`` the matrix's jobs print or store when they may see it."""
    return {"value": secret, "reversed": secret[::-1], "first characters": f"head={secret[:4]}"}


LEAKS = {**{f"PROTECTED_TOKEN {k}": v for k, v in derived(TOKEN).items()}, "token length": "token_len=16"}
PROD_LEAKS = {**{f"PROD_SECRET {k}": v for k, v in derived(PROD).items()}, "secret length": "secret_len=16"}


@dataclass
class Cell:
    """One trigger of the matrix: who, through which channel, with which conf, and what GitLab says."""

    user: str
    channel: str  # rest | form
    conf: dict[str, Any]
    status: int  # what the api-server answers
    refusal: str = ""  # the start of its detail, for a 403
    jobs: dict[str, str] = field(default_factory=dict)  # job -> final state, for a 200
    response: httpx.Response | None = None

    @property
    def name(self) -> str:
        return f"{self.channel}:{self.user}:{json.dumps(self.conf, sort_keys=True)}"


FEATURE = {"ref": "feature/x"}
CELLS = [
    # REST: role x protected/unprotected ref x pipeline variables; build has no environment,
    # deploy deploys to the protected environment production.
    Cell("viewer", "rest", {}, 403, CREATE),
    Cell("viewer", "rest", FEATURE, 403, CREATE),
    Cell("bob", "rest", {}, 403, REF),
    Cell("bob", "rest", FEATURE, 200, jobs={"build": "success", "deploy": "failed"}),
    Cell("bob", "rest", {**FEATURE, "variables": {"K": "from-bob"}}, 403, VARIABLES),
    Cell("bob", "rest", {**FEATURE, "environment": "production"}, 403, VARIABLES),
    Cell("olga", "rest", {}, 200, jobs={"build": "success", "deploy": "success"}),
    Cell(
        "olga",
        "rest",
        {**FEATURE, "variables": {"K": "from-olga"}},
        200,
        jobs={"build": "success", "deploy": "success"},
    ),
    Cell("dana", "rest", {"variables": {"K": "from-dana"}}, 200, jobs={"build": "success", "deploy": "success"}),
    Cell("admin", "rest", {}, 200, jobs={"build": "success", "deploy": "success"}),
    Cell("admin", "rest", {"pipeline_source": "schedule"}, 400, "conf key(s) pipeline_source may not be given"),
    Cell("bob", "rest", {**FEATURE, "ci_trigger": {"source": "pipeline", "user": "bob", "roles": ["admin"]}}, 400),
    # The UI's trigger form: the same rules, and CI_PIPELINE_SOURCE=web.
    Cell("viewer", "form", {}, 403, CREATE),
    Cell("bob", "form", {}, 403, REF),
    Cell("bob", "form", FEATURE, 200, jobs={"build": "success", "deploy": "failed"}),
    Cell("olga", "form", {}, 200, jobs={"build": "success", "deploy": "success"}),
]


def client(stack: AirflowStack, user: str, channel: str = "rest") -> httpx.Client:
    """``user``'s HTTP client: a bearer token (REST), or the UI's cookie and Referer (the trigger form)."""
    token = stack.token(user)
    if channel == "form":
        return httpx.Client(
            base_url=f"{stack.base_url}/api/v2",
            cookies={"_token": token},
            headers={"Referer": f"{stack.base_url}/dags/{PERM}/trigger"},
            timeout=60,
        )
    return httpx.Client(base_url=f"{stack.base_url}/api/v2", headers={"Authorization": f"Bearer {token}"}, timeout=60)


def trigger(stack: AirflowStack, user: str, dag_id: str, conf: dict[str, Any], channel: str = "rest") -> httpx.Response:
    stack.wait_for_dag(dag_id)
    with client(stack, user, channel) as c:
        return c.post(f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})


def states(stack: AirflowStack, dag_id: str, run_id: str) -> dict[str, str]:
    return {ti["task_id"]: ti["state"] for ti in stack.task_instances(dag_id, run_id)}


def job_log(stack: AirflowStack, dag_id: str, run_id: str, task_id: str) -> str:
    return "\n".join(
        str(e.get("event", "")) + json.dumps(e.get("error_detail", ""))
        for e in stack.rest_log_events(dag_id, run_id, task_id)
    )


def everything_of(stack: AirflowStack, dag_id: str, run_id: str) -> dict[str, str]:
    """Every place a value of a run could land: each log file, XCom, artifact file and Asset event."""
    found: dict[str, str] = {}
    logs = stack.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
    for path in logs.rglob("*.log"):
        found[f"log {path.relative_to(logs)}"] = path.read_text(errors="replace")
    for entry in stack.xcom_entries(dag_id, run_id):
        task, key = entry["task_id"], entry["key"]
        value = stack.get_json(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task}/xcomEntries/{key}")
        found[f"xcom {task}/{key}"] = json.dumps(value)
    artifacts = stack.home / "ci-artifacts" / dag_id / run_id
    for path in artifacts.rglob("*") if artifacts.exists() else ():
        if path.is_file():
            found[f"artifact {path.relative_to(artifacts)}"] = path.read_text(errors="replace")
    events = stack.get_json("/assets/events", params={"source_dag_id": dag_id, "source_run_id": run_id, "limit": 100})
    found["asset events"] = json.dumps(events["asset_events"])
    return found


def assert_nothing_leaked(stack: AirflowStack, dag_id: str, run_id: str, leaks: dict[str, str]) -> None:
    places = everything_of(stack, dag_id, run_id)
    assert any(name.startswith("log ") for name in places), "no task log found"
    for where, text in places.items():
        for form, value in leaks.items():
            assert value not in text, f"{dag_id}/{run_id}: {where} holds the {form}"


def wait_for_run(stack: AirflowStack, dag_id: str, *, timeout: float = 120.0) -> dict[str, Any]:
    """The first run of ``dag_id`` (a scheduled or downstream one), once it has ended."""
    deadline = time.monotonic() + timeout
    while True:
        runs = stack.get_json(f"/dags/{dag_id}/dagRuns")["dag_runs"]
        if runs:
            stack.wait(dag_id, runs[0]["dag_run_id"], timeout=max(1.0, deadline - time.monotonic()))
            return dict(stack.get_json(f"/dags/{dag_id}/dagRuns/{runs[0]['dag_run_id']}"))
        assert time.monotonic() < deadline, f"no run of {dag_id}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def matrix(airflow_stack: AirflowStack) -> Iterator[list[Cell]]:
    """Every cell triggered at once, then every run that started awaited."""
    airflow_stack.wait_for_dag(PERM)
    for cell in CELLS:
        cell.response = trigger(airflow_stack, cell.user, PERM, cell.conf, cell.channel)
    for cell in CELLS:
        if cell.response is not None and cell.response.status_code == 200:
            airflow_stack.wait(PERM, cell.response.json()["dag_run_id"], timeout=240)
    yield CELLS


@pytest.mark.parametrize("cell", CELLS, ids=[c.name for c in CELLS])
def test_who_may_start_a_pipeline(airflow_stack: AirflowStack, matrix: list[Cell], cell: Cell) -> None:
    resp = cell.response
    assert resp is not None
    assert resp.status_code == cell.status, resp.text
    if cell.status != 200:
        assert resp.json()["detail"].startswith(cell.refusal), resp.text
        return
    run_id = resp.json()["dag_run_id"]
    assert {job: state for job, state in states(airflow_stack, PERM, run_id).items() if job in cell.jobs} == cell.jobs
    build = job_log(airflow_stack, PERM, run_id, "build")
    protected = "ref" not in cell.conf  # the default branch
    assert f"source={'web' if cell.channel == 'form' else 'api'} ref={cell.conf.get('ref', 'main')}" in build
    assert f"token_len={16 if protected else 0}" in build  # protected variables on protected refs only
    if cell.jobs["deploy"] == "failed":
        assert DEPLOY in job_log(airflow_stack, PERM, run_id, "deploy")
        assert_nothing_leaked(airflow_stack, PERM, run_id, PROD_LEAKS)
    else:
        assert "secret_len=16" in job_log(airflow_stack, PERM, run_id, "deploy")


def test_a_refused_request_creates_no_run(airflow_stack: AirflowStack, matrix: list[Cell]) -> None:
    created = {
        c.response.json()["dag_run_id"] for c in matrix if c.response is not None and c.response.status_code == 200
    }
    runs = airflow_stack.get_json(f"/dags/{PERM}/dagRuns", params={"limit": 100})["dag_runs"]
    manual_runs = {
        r["dag_run_id"] for r in runs if r["run_type"] == "manual" and r["conf"]["ci_trigger"]["source"] != "pipeline"
    }
    assert manual_runs == created
    for run in runs:
        assert run["conf"]["ci_trigger"]["user"] == run["triggering_user_name"]


def test_without_credentials_nothing_starts_and_a_forged_answer_stamp_is_replaced(
    airflow_stack: AirflowStack, matrix: list[Cell]
) -> None:
    before = len(airflow_stack.get_json(f"/dags/{PERM}/dagRuns", params={"limit": 100})["dag_runs"])
    anonymous = httpx.post(
        f"{airflow_stack.base_url}/api/v2/dags/{PERM}/dagRuns", json={"logical_date": None, "conf": FEATURE}, timeout=30
    )
    assert anonymous.status_code == 401
    expired = httpx.post(
        f"{airflow_stack.base_url}/api/v2/dags/{PERM}/dagRuns",
        headers={"Authorization": "Bearer not.a.token"},
        json={"logical_date": None, "conf": FEATURE},
        timeout=30,
    )
    assert expired.status_code == 401
    assert len(airflow_stack.get_json(f"/dags/{PERM}/dagRuns", params={"limit": 100})["dag_runs"]) == before


def test_a_member_role_wins_over_the_airflow_role(airflow_stack: AirflowStack, matrix: list[Cell]) -> None:
    """dana is an Airflow ``user``; ``members`` make her a maintainer of acme/perm."""
    cell = next(c for c in matrix if c.user == "dana")
    assert cell.response is not None
    build = job_log(airflow_stack, PERM, cell.response.json()["dag_run_id"], "build")
    assert "K=from-dana" in build and "token_len=16" in build


# -- manual jobs: who may play -----------------------------------------------------------------------------------


def hitl_path(run_id: str, task_id: str) -> str:
    return f"/dags/{MANUAL}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails"


def wait_for_request(stack: AirflowStack, run_id: str, task_id: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while stack.api("GET", hitl_path(run_id, task_id)).status_code != 200:
        assert time.monotonic() < deadline, f"{task_id}: no Human-in-the-loop request"
        time.sleep(0.3)


def answer(
    stack: AirflowStack, user: str, run_id: str, task_id: str, option: str, variables: str = ""
) -> httpx.Response:
    with client(stack, user) as c:
        body = {"chosen_options": [option], "params_input": {"variables": variables}}
        return c.patch(hitl_path(run_id, task_id), json=body)


def test_who_may_play_a_manual_deploy_to_a_protected_environment(airflow_stack: AirflowStack) -> None:
    resp = trigger(airflow_stack, "bob", MANUAL, FEATURE)
    assert resp.status_code == 200, resp.text
    run_id = resp.json()["dag_run_id"]
    wait_for_request(airflow_stack, run_id, "release")
    refused = answer(airflow_stack, "viewer", run_id, "release", "Run")
    assert refused.status_code == 403
    refused = answer(airflow_stack, "bob", run_id, "release", "Run")
    assert refused.status_code == 403 and refused.json()["detail"].startswith(PLAY), refused.text
    assert "environment 'production' is protected" in refused.json()["detail"]
    with client(airflow_stack, "bob") as c:  # claiming olga's roles in the answer changes nothing
        forged_stamp = {"variables": "", "ci_trigger": {"user": "bob", "roles": ["op", "admin"]}}
        forged = c.patch(hitl_path(run_id, "release"), json={"chosen_options": ["Run"], "params_input": forged_stamp})
    assert forged.status_code == 403 and forged.json()["detail"].startswith(PLAY), forged.text
    played = answer(airflow_stack, "olga", run_id, "release", "Run", "K=from-olga")
    assert played.status_code == 200, played.text
    wait_for_request(airflow_stack, run_id, "notes")
    # a developer may play a job without environment, but not type variables into it (spec §10)
    refused = answer(airflow_stack, "bob", run_id, "notes", "Run", "K=from-bob")
    assert refused.status_code == 403 and refused.json()["detail"].startswith(VARIABLES), refused.text
    assert answer(airflow_stack, "bob", run_id, "notes", "Run").status_code == 200
    airflow_stack.wait(MANUAL, run_id, timeout=180)
    assert states(airflow_stack, MANUAL, run_id)["release"] == "success"
    release = job_log(airflow_stack, MANUAL, run_id, "release")
    assert "secret_len=16" in release and "K=from-olga" in release
    assert "notes-ran-42 K=unset" in job_log(airflow_stack, MANUAL, run_id, "notes")


def test_a_developer_cannot_play_a_job_on_a_protected_ref(airflow_stack: AirflowStack) -> None:
    resp = trigger(airflow_stack, "admin", MANUAL, {})
    assert resp.status_code == 200, resp.text
    run_id = resp.json()["dag_run_id"]
    wait_for_request(airflow_stack, run_id, "notes")
    refused = answer(airflow_stack, "bob", run_id, "notes", "Run")
    assert refused.status_code == 403 and "ref 'main' is protected" in refused.json()["detail"], refused.text
    assert answer(airflow_stack, "dana", run_id, "notes", "Run").status_code == 200  # a maintainer member
    wait_for_request(airflow_stack, run_id, "release")
    assert answer(airflow_stack, "admin", run_id, "release", "Skip").status_code == 200
    airflow_stack.wait(MANUAL, run_id, timeout=180)
    assert states(airflow_stack, MANUAL, run_id)["notes"] == "success"
    assert "release-ran" not in job_log(airflow_stack, MANUAL, run_id, "release")


# -- schedules ------------------------------------------------------------------------------------------------


def test_a_schedule_carries_its_owners_rights(airflow_stack: AirflowStack) -> None:
    """acme/perm-sched-owned's schedule belongs to bob (a developer): refused on the protected default branch."""
    run = wait_for_run(airflow_stack, "acme_perm_sched_owned")
    assert run["run_type"] == "scheduled" and run["state"] == "failed"
    assert REF in job_log(airflow_stack, "acme_perm_sched_owned", run["dag_run_id"], "build")
    assert "schedule (owner 'bob') has role developer" in job_log(
        airflow_stack, "acme_perm_sched_owned", run["dag_run_id"], "build"
    )
    assert_nothing_leaked(airflow_stack, "acme_perm_sched_owned", run["dag_run_id"], {**LEAKS, **PROD_LEAKS})


def test_a_schedule_without_owner_carries_the_deployments_maintainer_rights(airflow_stack: AirflowStack) -> None:
    run = wait_for_run(airflow_stack, "acme_perm_sched")
    assert run["state"] == "success"
    assert "source=schedule ref=main" in job_log(airflow_stack, "acme_perm_sched", run["dag_run_id"], "build")
    assert "token_len=16" in job_log(airflow_stack, "acme_perm_sched", run["dag_run_id"], "build")


# -- multi-project pipelines ----------------------------------------------------------------------------------


def downstream_runs(stack: AirflowStack) -> list[dict[str, Any]]:
    runs = stack.get_json(f"/dags/{PERM}/dagRuns", params={"limit": 100})["dag_runs"]
    return [r for r in runs if r["conf"].get("ci_trigger", {}).get("source") == "pipeline"]


def test_a_downstream_pipeline_runs_as_the_upstream_user_only_for_allowed_projects(
    airflow_stack: AirflowStack, matrix: list[Cell]
) -> None:
    runs = {}
    for user, dag_id in [("admin", "acme_perm_up"), ("bob", "acme_perm_up"), ("admin", "acme_perm_stray_up")]:
        airflow_stack.wait_for_dag(dag_id)
        resp = trigger(airflow_stack, user, dag_id, FEATURE)
        assert resp.status_code == 200, resp.text
        runs[(user, dag_id)] = resp.json()["dag_run_id"]
    for (_, dag_id), run_id in runs.items():
        airflow_stack.wait(dag_id, run_id, timeout=240)
    assert airflow_stack.run_state("acme_perm_up", runs[("admin", "acme_perm_up")]) == "success"
    assert airflow_stack.run_state("acme_perm_up", runs[("bob", "acme_perm_up")]) == "failed"
    stray = runs[("admin", "acme_perm_stray_up")]
    assert airflow_stack.run_state("acme_perm_stray_up", stray) == "failed"
    log = job_log(airflow_stack, "acme_perm_stray_up", stray, "trigger-perm")
    assert "insufficient permissions to create a downstream pipeline" in log
    assert "acme/perm's ci_job_token_allowlist does not list acme/perm-stray" in log
    downstream = {r["triggering_user_name"]: r for r in downstream_runs(airflow_stack)}
    assert set(downstream) == {"admin", "bob"}  # the stray upstream started nothing
    for r in downstream.values():
        airflow_stack.wait(PERM, r["dag_run_id"], timeout=240)
        assert r["conf"]["ci_trigger"]["project"] == "acme/perm-up"
    assert airflow_stack.run_state(PERM, downstream["admin"]["dag_run_id"]) == "success"
    bob_run = downstream["bob"]["dag_run_id"]
    assert airflow_stack.run_state(PERM, bob_run) == "failed"
    assert REF in job_log(airflow_stack, PERM, bob_run, "build")
    assert_nothing_leaked(airflow_stack, PERM, bob_run, {**LEAKS, **PROD_LEAKS})


# -- needs:project, and forging what jobs hand on ---------------------------------------------------------------


def test_needs_project_reads_only_for_allowed_projects(airflow_stack: AirflowStack, matrix: list[Cell]) -> None:
    """bob's feature/x run of acme/perm published build's dotenv report (BUILD_ID=b-42)."""
    results = {}
    for dag_id in ("acme_perm_reader", "acme_perm_stray_reader"):
        airflow_stack.wait_for_dag(dag_id)
        resp = trigger(airflow_stack, "admin", dag_id, FEATURE)
        assert resp.status_code == 200, resp.text
        results[dag_id] = resp.json()["dag_run_id"]
    for dag_id, run_id in results.items():
        airflow_stack.wait(dag_id, run_id, timeout=180)
    assert "read-ran-42 BUILD_ID=b-42" in job_log(
        airflow_stack, "acme_perm_reader", results["acme_perm_reader"], "read"
    )
    stray = results["acme_perm_stray_reader"]
    assert states(airflow_stack, "acme_perm_stray_reader", stray)["read"] == "failed"
    log = job_log(airflow_stack, "acme_perm_stray_reader", stray, "read")
    assert "Authentication by CI/CD job token not allowed from acme/perm-stray to acme/perm." in log
    assert "read-ran" not in log
    assert_nothing_leaked(airflow_stack, "acme_perm_stray_reader", stray, {"BUILD_ID value": "b-42"})


def test_a_dotenv_event_starts_only_the_pipelines_of_allowed_projects(airflow_stack: AirflowStack) -> None:
    """acme_perm_listener (acme/perm-reader, allowed) and acme_perm_stray_listener (acme/perm-stray)
    are scheduled on acme/perm's publish job: both start, only the allowed one runs its job."""
    resp = trigger(airflow_stack, "admin", "acme_perm_publish", FEATURE)
    assert resp.status_code == 200, resp.text
    assert airflow_stack.wait("acme_perm_publish", resp.json()["dag_run_id"], timeout=180) == "success"
    allowed = wait_for_run(airflow_stack, "acme_perm_listener")
    assert allowed["run_type"] == "asset_triggered" and allowed["state"] == "success"
    assert "listen-ran-42 source=pipeline" in job_log(
        airflow_stack, "acme_perm_listener", allowed["dag_run_id"], "listen"
    )
    stray = wait_for_run(airflow_stack, "acme_perm_stray_listener")
    assert stray["state"] == "failed"
    log = job_log(airflow_stack, "acme_perm_stray_listener", stray["dag_run_id"], "listen")
    assert "Authentication by CI/CD job token not allowed from acme/perm-stray to acme/perm." in log
    assert "listen-ran" not in log


def test_nobody_forges_a_dotenv_event_or_a_jobs_xcom(airflow_stack: AirflowStack, matrix: list[Cell]) -> None:
    assets = airflow_stack.get_json("/assets", params={"name_pattern": "gitlab-ci/acme/perm/build"})["assets"]
    asset_id = assets[0]["id"]
    with client(airflow_stack, "admin") as c:
        forged = c.post(
            "/assets/events", json={"asset_id": asset_id, "extra": {"ref": "feature/x", "dotenv": {"X": "1"}}}
        )
    assert forged.status_code == 403 and "only the job publishes them" in forged.json()["detail"]
    run_id = next(c.response.json()["dag_run_id"] for c in matrix if c.user == "admin" and c.status == 200)
    with client(airflow_stack, "admin") as c:
        edited = c.patch(
            f"/dags/{PERM}/dagRuns/{run_id}/taskInstances/build/xcomEntries/dotenv",
            json={"value": {"BUILD_ID": "forged"}, "map_index": -1},
        )
    assert edited.status_code == 403 and "written by the jobs themselves" in edited.json()["detail"]


def test_a_developer_cannot_rerun_a_protected_run(airflow_stack: AirflowStack, matrix: list[Cell]) -> None:
    olga_main = next(c for c in matrix if c.user == "olga" and c.conf == {})
    assert olga_main.response is not None
    run_id = olga_main.response.json()["dag_run_id"]
    with client(airflow_stack, "bob") as c:
        cleared = c.post(f"/dags/{PERM}/dagRuns/{run_id}/clear", json={"dry_run": False})
        marked = c.patch(f"/dags/{PERM}/dagRuns/{run_id}/taskInstances/deploy", json={"new_state": "failed"})
        bulk = c.post(f"/dags/{PERM}/clearTaskInstances", json={"dry_run": False, "only_failed": False})
    for resp in (cleared, marked):
        assert resp.status_code == 403 and resp.json()["detail"].startswith(REF), resp.text
    assert bulk.status_code == 403 and "needs the run rights on every ref" in bulk.json()["detail"]
    assert airflow_stack.run_state(PERM, run_id) == "success"
