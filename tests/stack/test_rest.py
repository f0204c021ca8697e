"""Pipelines triggered over REST with parameters, on the real LocalExecutor deployment.

Every request carries a JWT from ``POST /auth/token`` (login mode): ``admin``, or ``alice`` and
``bob``, both Airflow ``user``\\s (the stack's ``simple_auth_manager_users``). The run's conf is
what a user would send with curl: CircleCI's ``build_parameters`` (seed 000's example), GitLab's
``variables`` in map or list form, ``ref`` and ``sha``. What a job saw is read back from its
task log through ``GET .../logs/1``.

* tests/stack/dags/rest/params: the ``show`` job prints each variable between ``<...>`` (a
  file-type variable as ``file<content>``), the ref, the SHA and ``CI_PIPELINE_SOURCE``.
* tests/stack/dags/rest/restricted: ``pipeline_variables_minimum_role: maintainer`` and
  ``members: {alice: maintainer}``; the ``build`` job prints a marker the shell computes.

Invalid conf never becomes a run: Airflow checks it against the DAG's param schemas and
answers HTTP 400 (``Invalid input for param ...``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from airflow_stack import AirflowStack

pytestmark = pytest.mark.stack

DAG_ID = "ci_stack_rest"
RESTRICTED = "ci_stack_rest_restricted"
SHA = "8f2c1e9a7b6d5c4e3f2a1b0c9d8e7f6a5b4c3d2e"
MARKER = "restricted-script-ran-42"
FORBIDDEN = "Insufficient permissions to set pipeline variables"

# (name, user, DAG, conf) of every run this module makes; they are all triggered first, then awaited.
RUNS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "circleci": (
        "admin",
        DAG_ID,
        {"build_parameters": {"param1": "value1", "param2": 500, "qux": {"quux": 1}, "list": ["a", "list"]}},
    ),
    "gitlab_map": ("admin", DAG_ID, {"variables": {"K": "v"}, "ref": "feature/login", "sha": SHA}),
    "gitlab_list": (
        "admin",
        DAG_ID,
        {"variables": [{"key": "K", "value": "v", "variable_type": "file"}], "ref": "release-2", "sha": SHA},
    ),
    "bob_plain": ("bob", RESTRICTED, {"ref": "feature/x"}),  # a developer, off the protected default branch
    "alice_variables": ("alice", RESTRICTED, {"variables": {"K": "from-alice"}}),
}


@dataclass
class Run:
    stack: AirflowStack
    dag_id: str
    run_id: str
    record: dict[str, Any]

    def task_states(self) -> dict[str, str]:
        return {ti["task_id"]: ti["state"] for ti in self.stack.task_instances(self.dag_id, self.run_id)}

    def events(self, task_id: str) -> list[dict[str, Any]]:
        return self.stack.rest_log_events(self.dag_id, self.run_id, task_id)

    def lines(self, task_id: str) -> list[str]:
        """The messages of the task's log (the job's output lines among them)."""
        return [str(e.get("event", "")) for e in self.events(task_id)]


def client_as(stack: AirflowStack, user: str) -> httpx.Client:
    """An HTTP client of ``user``, with the JWT ``POST /auth/token`` gave them."""
    return httpx.Client(
        base_url=f"{stack.base_url}/api/v2", headers={"Authorization": f"Bearer {stack.token(user)}"}, timeout=60
    )


@pytest.fixture(scope="module")
def runs(airflow_stack: AirflowStack) -> dict[str, Run]:
    """Every run of RUNS, triggered by its user over REST, once they have all ended."""
    created: dict[str, tuple[str, str]] = {}
    for name, (user, dag_id, conf) in RUNS.items():
        airflow_stack.wait_for_dag(dag_id)
        with client_as(airflow_stack, user) as client:
            resp = client.post(f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})
        assert resp.status_code == 200, f"{name}: HTTP {resp.status_code}: {resp.text}"
        created[name] = (dag_id, resp.json()["dag_run_id"])
    done = {}
    for name, (dag_id, run_id) in created.items():
        airflow_stack.wait(dag_id, run_id, timeout=180)
        record = airflow_stack.get_json(f"/dags/{dag_id}/dagRuns/{run_id}")
        done[name] = Run(airflow_stack, dag_id, run_id, record)
    return done


# -- conf forms ---------------------------------------------------------------------------------


def test_circleci_build_parameters_reach_the_job_as_strings(runs: dict[str, Run]) -> None:
    """Seed 000: numbers, objects and lists become their JSON text, exactly."""
    run = runs["circleci"]
    assert run.record["state"] == "success"
    lines = run.lines("show")
    for expected in ("param1=<value1>", "param2=<500>", 'qux=<{"quux": 1}>', 'list=<["a", "list"]>', "K=<unset>"):
        assert expected in lines, f"{expected!r} not in {lines}"


def test_gitlab_variables_map_form_with_ref_and_sha(runs: dict[str, Run]) -> None:
    run = runs["gitlab_map"]
    assert run.record["state"] == "success"
    lines = run.lines("show")
    assert "K=<v>" in lines
    assert "param1=<unset>" in lines
    assert f"ref=<feature/login> sha=<{SHA}> source=<api>" in lines


def test_gitlab_variables_list_form_with_a_file_variable(runs: dict[str, Run]) -> None:
    run = runs["gitlab_list"]
    assert run.record["state"] == "success"
    lines = run.lines("show")
    assert "K=file<v>" in lines  # $K is the path of a file holding the value
    assert f"ref=<release-2> sha=<{SHA}> source=<api>" in lines


def test_a_run_without_ref_is_on_the_default_branch(runs: dict[str, Run]) -> None:
    assert "ref=<main> sha=<0000000000000000000000000000000000000000> source=<api>" in runs["circleci"].lines("show")


# -- invalid conf: HTTP 400, no run -------------------------------------------------------------


def _run_count(stack: AirflowStack, dag_id: str) -> int:
    return int(stack.get_json(f"/dags/{dag_id}/dagRuns", params={"limit": 1})["total_entries"])


@pytest.mark.parametrize(
    ("conf", "param", "shown"),
    [
        pytest.param({"variables": {"1bad-": "x"}}, "variables", "'1bad-' does not match", id="bad-variable-name"),
        pytest.param(
            {"build_parameters": {"1param": "x"}}, "build_parameters", "'1param' does not match", id="bad-parameter"
        ),
        pytest.param({"variables": {"K": True}}, "variables", "True is not of type", id="boolean-value"),
        pytest.param(
            {"variables": [{"key": "K", "variable_type": "file"}]},
            "variables",
            "'value' is a required property",
            id="list-item-without-value",
        ),
    ],
)
def test_invalid_conf_is_refused_and_creates_no_run(
    airflow_stack: AirflowStack, runs: dict[str, Run], conf: dict[str, Any], param: str, shown: str
) -> None:
    before = _run_count(airflow_stack, DAG_ID)
    resp = airflow_stack.api("POST", f"/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": conf})
    assert resp.status_code == 400, resp.text
    detail = resp.json()["detail"]
    assert detail.startswith(f"Invalid input for param {param}: "), detail
    assert shown in detail
    assert _run_count(airflow_stack, DAG_ID) == before


# -- who may set pipeline variables -------------------------------------------------------------


def test_runs_name_the_user_who_triggered_them(runs: dict[str, Run]) -> None:
    assert {name: run.record["triggering_user_name"] for name, run in runs.items()} == {
        name: user for name, (user, _, _) in RUNS.items()
    }


def test_variables_from_a_user_below_the_minimum_role_are_refused_before_a_run_exists(
    airflow_stack: AirflowStack, runs: dict[str, Run]
) -> None:
    before = _run_count(airflow_stack, RESTRICTED)
    for conf in (
        {"ref": "feature/x", "variables": {"K": "from-bob"}},
        {"ref": "feature/x", "build_parameters": {"K": 1}},
    ):
        with client_as(airflow_stack, "bob") as client:
            resp = client.post(f"/dags/{RESTRICTED}/dagRuns", json={"logical_date": None, "conf": conf})
        assert resp.status_code == 403, resp.text
        detail = resp.json()["detail"]
        assert detail.startswith(FORBIDDEN) and "user 'bob' has role developer" in detail
        assert "from-bob" not in detail
    assert _run_count(airflow_stack, RESTRICTED) == before


def test_a_run_without_variables_is_not_restricted(runs: dict[str, Run]) -> None:
    run = runs["bob_plain"]
    assert run.record["state"] == "success"
    assert f"{MARKER} K=<unset>" in run.lines("build")


def test_pipeline_source_comes_from_how_the_run_started_never_from_the_conf(airflow_stack: AirflowStack) -> None:
    before = _run_count(airflow_stack, DAG_ID)
    resp = airflow_stack.api(
        "POST", f"/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": {"pipeline_source": "schedule"}}
    )
    assert resp.status_code == 400, resp.text
    assert "pipeline_source may not be given" in resp.json()["detail"]
    assert _run_count(airflow_stack, DAG_ID) == before


def test_a_maintainer_member_may_set_variables(runs: dict[str, Run]) -> None:
    """alice's Airflow role is only ``user``; ``members`` makes her a maintainer of the project."""
    run = runs["alice_variables"]
    assert run.record["state"] == "success"
    lines = run.lines("build")
    assert f"{MARKER} K=<from-alice>" in lines
    assert not any(FORBIDDEN in line for line in lines)
