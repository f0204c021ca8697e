"""``when: manual`` on Airflow: played through the run's conf, or asked for through Airflow's
Human-in-the-loop (HITL) request and answered through Airflow's REST API, as a person would.

``dag.test()`` keeps a run alive while a task waits for input; a helper thread plays the person:
it watches the task states in the metadata DB and answers through the real API route.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dag_files import load_dag_file

from airflow_ci_vars.pipeline.model import task_id_for

pytestmark = pytest.mark.airflow

DAG_ID = "factory_manual"
GATE_DEPLOY = task_id_for("stage deploy")


def manual_dag() -> Any:
    return load_dag_file("ci_manual.py", "ci_manual_under_test").manual


def value(state: Any) -> str | None:
    return None if state is None else str(getattr(state, "value", state))


class Person:
    """Answers HITL requests of the running ``factory_manual`` run through Airflow's REST API."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.error: BaseException | None = None

    def run_id(self) -> str:
        """The running DAG run's id (waits for it to exist)."""
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from sqlalchemy import select

        def find() -> str | None:
            with create_session() as session:
                return session.scalars(
                    select(DagRun.run_id)
                    .where(DagRun.dag_id == DAG_ID, DagRun.state == "running")
                    .order_by(DagRun.id.desc())
                ).first()

        return self.wait_for(find, "a running DAG run")

    def states(self, run_id: str) -> dict[str, str | None]:
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            tis = session.scalars(
                select(TaskInstance).where(TaskInstance.dag_id == DAG_ID, TaskInstance.run_id == run_id)
            ).all()
            return {ti.task_id: value(ti.state) for ti in tis}

    def wait_for(self, probe: Callable[[], Any], what: str, timeout: float = 120) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = probe()
            if found:
                return found
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}")

    def awaiting(self, run_id: str, *task_ids: str) -> dict[str, str | None]:
        """Wait until every task in ``task_ids`` waits for input; return all states then."""

        def probe() -> dict[str, str | None] | None:
            states = self.states(run_id)
            return states if all(states.get(t) == "awaiting_input" for t in task_ids) else None

        self.wait_for(probe, f"{task_ids} awaiting input")
        # Answer as a person does, not within milliseconds of the request: on this test's SQLite
        # there are no row locks, so an answer racing the task's own park transaction can be
        # overwritten by it (the task then waits forever). PostgreSQL's FOR UPDATE, which
        # update_hitl_detail takes, serializes the two in a deployment.
        time.sleep(1.0)
        return self.wait_for(probe, f"{task_ids} awaiting input")

    def request(self, run_id: str, task_id: str) -> dict[str, Any]:
        reply = self.api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails")
        assert reply.status_code == 200, reply.text
        return dict(reply.json())

    def answer(self, run_id: str, task_id: str, option: str, variables: str = "") -> None:
        reply = self.api.patch(
            f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails",
            json={"chosen_options": [option], "params_input": {"variables": variables}},
        )
        assert reply.status_code == 200, reply.text

    def skip_everything_pending(self) -> None:
        """Let ``dag.test()`` end after a failed check: answer every open request with Skip."""
        try:
            run_id = self.run_id()
            for task_id, state in self.states(run_id).items():
                if state == "awaiting_input":
                    self.answer(run_id, task_id, "Skip")
        except BaseException:  # the check's own error is the one to report
            pass


@pytest.fixture(scope="module")
def api() -> Iterator[Any]:
    """Airflow's own REST API app, in-process, on the test metadata DB (every caller is an admin)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    with TestClient(create_app("core")) as client:
        yield client
    mp.undo()


def run_with_person(conf: dict[str, Any], api: Any, script: Callable[[Person], None]) -> tuple[Any, dict[str, str]]:
    """``dag.test(run_conf=conf)`` while ``script`` plays the person answering the requests."""
    person = Person(api)

    def act() -> None:
        try:
            script(person)
        except BaseException as err:
            person.error = err
            person.skip_everything_pending()

    thread = threading.Thread(target=act, daemon=True)
    thread.start()
    dr = manual_dag().test(run_conf=conf)
    thread.join(timeout=60)
    if person.error is not None:
        raise person.error
    states = {ti.task_id: str(value(ti.state)) for ti in dr.get_task_instances()}
    return dr, states


def hitl_requests(run_id: str) -> dict[str, Any]:
    """The HITL requests of a run, by task id (Airflow's own model)."""
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.task_id, HITLDetail)
            .join(HITLDetail, HITLDetail.ti_id == TaskInstance.id)
            .where(TaskInstance.dag_id == DAG_ID, TaskInstance.run_id == run_id)
        ).all()
        return {task_id: detail.options for task_id, detail in rows}


def test_optional_manual_job_is_not_in_the_stage_order_nor_before_the_pipeline_status() -> None:
    dag = manual_dag()
    assert set(dag.get_task(GATE_DEPLOY).upstream_task_ids) == {"release"}
    assert "optional" not in dag.get_task("pipeline").upstream_task_ids
    assert set(dag.get_task("smoke").upstream_task_ids) == {"optional"}


def test_manual_job_played_through_conf_runs_without_asking(tmp_path: Path) -> None:
    dr = manual_dag().test(run_conf={"variables": {"OUT": str(tmp_path)}, "manual": ["optional"]})
    states = {ti.task_id: str(value(ti.state)) for ti in dr.get_task_instances()}
    assert states["optional"] == "success" and states["smoke"] == "success"
    assert (tmp_path / "optional").read_text().strip() == "CI_JOB_MANUAL=true TARGET=staging"
    assert hitl_requests(dr.run_id) == {}


def test_conf_without_the_blocking_manual_job_blocks_the_pipeline(tmp_path: Path) -> None:
    conf = {"variables": {"OUT": str(tmp_path), "BLOCKING": "yes"}, "manual": []}
    dr = manual_dag().test(run_conf=conf)
    states = {ti.task_id: str(value(ti.state)) for ti in dr.get_task_instances()}
    assert states["release"] == "skipped" and states["optional"] == "skipped"
    assert states["deploy"] == "skipped" and not (tmp_path / "deploy").exists()
    assert states["smoke"] == "skipped"
    assert states["pipeline"] == "failed" and value(dr.state) == "failed"
    assert hitl_requests(dr.run_id) == {}


def test_optional_manual_job_waiting_for_approval_does_not_hold_back_the_next_stage(tmp_path: Path, api: Any) -> None:
    seen: dict[str, Any] = {}

    def person(p: Person) -> None:
        run_id = p.run_id()
        p.wait_for(lambda: p.states(run_id).get("deploy") == "success", "deploy to run")
        seen["optional when deploy ran"] = p.states(run_id)["optional"]
        p.answer(run_id, "optional", "Skip")

    dr, states = run_with_person({"variables": {"OUT": str(tmp_path)}}, api, person)
    assert seen["optional when deploy ran"] == "awaiting_input"
    assert states["deploy"] == "success" and (tmp_path / "deploy").exists()
    assert states["optional"] == "skipped" and not (tmp_path / "optional").exists()
    assert states["smoke"] == "skipped"  # it needs the optional job, which was not played
    assert states["pipeline"] == "success" and value(dr.state) == "success"


def test_blocking_manual_job_holds_back_later_stages_until_played_with_variables(tmp_path: Path, api: Any) -> None:
    seen: dict[str, Any] = {}

    def person(p: Person) -> None:
        run_id = p.run_id()
        p.awaiting(run_id, "release", "optional")
        time.sleep(2)  # dag.test() has looped on the waiting tasks: the next stage must still wait
        seen["states"] = p.states(run_id)
        seen["request"] = p.request(run_id, "release")
        p.answer(run_id, "release", "Run", variables="TARGET=prod\n")
        p.answer(run_id, "optional", "Skip")

    conf = {"variables": {"OUT": str(tmp_path), "BLOCKING": "yes"}}
    dr, states = run_with_person(conf, api, person)
    assert seen["states"][GATE_DEPLOY] is None and seen["states"]["deploy"] is None
    request = seen["request"]
    assert request["options"] == ["Run", "Skip"] and "release" in request["subject"]
    assert "variables" in request["params"]
    assert set(hitl_requests(dr.run_id)) == {"release", "optional"}
    assert states["release"] == "success"
    assert (tmp_path / "release").read_text().strip() == "CI_JOB_MANUAL=true TARGET=prod"
    assert states["deploy"] == "success" and states["pipeline"] == "success"
    ended = {ti.task_id: ti for ti in dr.get_task_instances()}
    assert ended["deploy"].start_date >= ended["release"].end_date


def test_rejected_blocking_manual_job_blocks_the_pipeline(tmp_path: Path, api: Any) -> None:
    def person(p: Person) -> None:
        run_id = p.run_id()
        p.awaiting(run_id, "release", "optional")
        p.answer(run_id, "release", "Skip")
        p.answer(run_id, "optional", "Skip")

    conf = {"variables": {"OUT": str(tmp_path), "BLOCKING": "yes"}}
    dr, states = run_with_person(conf, api, person)
    assert states["release"] == "skipped" and not (tmp_path / "release").exists()
    assert states["deploy"] == "skipped" and not (tmp_path / "deploy").exists()
    assert states["pipeline"] == "failed" and value(dr.state) == "failed"


def test_manual_job_nobody_answers_in_time_counts_as_not_played(
    tmp_path: Path, api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__CI_VARS__MANUAL_APPROVAL_TIMEOUT", "1s")

    def person(p: Person) -> None:
        run_id = p.run_id()
        p.awaiting(run_id, "release", "optional")
        time.sleep(1.5)
        # What the scheduler does every [scheduler] trigger_timeout_check_interval: dag.test() has no scheduler.
        from airflow.jobs.job import Job
        from airflow.jobs.scheduler_job_runner import SchedulerJobRunner

        SchedulerJobRunner(job=Job()).check_awaiting_input_timeouts()

    conf = {"variables": {"OUT": str(tmp_path), "BLOCKING": "yes"}}
    dr, states = run_with_person(conf, api, person)
    assert states["release"] == "skipped" and states["optional"] == "skipped"
    assert states["deploy"] == "skipped" and not (tmp_path / "deploy").exists()
    assert states["pipeline"] == "failed" and value(dr.state) == "failed"
