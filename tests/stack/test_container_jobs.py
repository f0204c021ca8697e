"""Container jobs on CeleryExecutor with two workers (tests/stack/container_dags).

The pipeline's ``build`` job (``tags: [worker-1]``) runs in ``busybox:latest`` beside a
``fake-postgres:16`` service reached by its alias ``db`` and writes a dotenv report; ``test``
(``tags: [worker-2]``, ``needs: [build]``) runs in ``python:3.11-slim`` and prints the value it
received. Both print the masked stored variable ``SECRET_TOKEN``, which must be ``[MASKED]`` in the
logs the REST API serves and must never reach the service.

``[ci_vars] isolation`` is read by the worker running a task and has no per-DAG switch, so this
module starts its own small deployment (CeleryExecutor, ``worker-1`` and ``worker-2``, the docker
options in every component's environment, its own dags folder): the session's deployments keep
the default isolation. The Docker daemon is scripts/docker-env's (``make docker-env``, or
``CI_VARS_TEST_DOCKER_HOST``; the ``docker_*`` fixtures of tests/conftest.py) with the test images
built locally; if it does not answer, or an image is missing, the tests fail, they never skip.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker  # type: ignore[import-untyped]
import pytest
import yaml
from airflow_stack import AirflowStack

pytestmark = pytest.mark.stack

DAG_ID = "ci_stack_containers"
DAGS = Path(__file__).parent / "container_dags"
SETTINGS = DAGS / "containers" / "settings.yml"
TOKEN: str = yaml.safe_load(SETTINGS.read_text())["projects"]["acme/containers"]["variables"][0]["value"]
# On every container and network a container job makes: its job's name, and its task process.
JOB_LABEL = "airflow-ci-vars.job"
OWNER_LABEL = "airflow-ci-vars.owner"
JOBS = ("build", "test")


@pytest.fixture(scope="module")
def container_stack(docker_host: str, test_images: tuple[str, ...]) -> Iterator[AirflowStack]:
    """CeleryExecutor with ``worker-1`` and ``worker-2`` running jobs in containers; the daemon must
    answer and hold the test images first (the jobs never pull)."""
    docker_env = {
        "AIRFLOW__CI_VARS__ISOLATION": "docker",
        "AIRFLOW__CI_VARS__DOCKER_HOST": docker_host,
        "AIRFLOW__CI_VARS__DOCKER_PULL_POLICY": "never",
    }
    stack = AirflowStack(
        [DAGS],
        executor="celery",
        workers=2,
        worker_concurrency=2,
        min_file_process_interval=60,  # one DAG file, there from the start
        extra_env=docker_env,
    )
    try:
        stack.start()
        yield stack
    finally:
        # Nothing runs any more: 5 s of grace instead of 15 (the triggerer alone takes 13 s to
        # exit on SIGTERM) before what is left is killed, the database dropped (FORCE).
        stack.stop(grace=5)


def _owned(client: docker.DockerClient, pids: set[str]) -> set[str]:
    """Names of the containers and networks on the daemon now that a task process of ``pids``
    made (the runner's owner label: ``<host> <pid> <start time>``)."""
    label = {"label": JOB_LABEL}
    found = [(c.name, c.labels) for c in client.containers.list(all=True, filters=label)]
    found += [(n.name, n.attrs.get("Labels") or {}) for n in client.networks.list(filters=label)]
    return {name for name, labels in found if _owner_pid(labels) in pids}


def _owner_pid(labels: dict[str, str]) -> str:
    parts = labels.get(OWNER_LABEL, "").split()
    return parts[1] if len(parts) == 3 else ""


class Creations:
    """The containers the daemon creates while it is open: the events are read as they come (the
    daemon keeps only its last 256 events for a later ``since`` query, and may serve others)."""

    def __init__(self, client: docker.DockerClient) -> None:
        self._stream = client.events(decode=True, filters={"type": "container", "event": "create"})
        self.seen: list[dict[str, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        with contextlib.suppress(Exception):  # the stream ends when closed
            for event in self._stream:
                self.seen.append(dict(event["Actor"]["Attributes"]))

    def close(self) -> None:
        time.sleep(1)  # the last events on their way
        self._stream.close()
        self._reader.join(timeout=10)


@dataclass
class ContainerRun:
    stack: AirflowStack
    run_id: str
    state: str
    task_instances: dict[str, dict[str, Any]]
    created: list[dict[str, str]]  # labels and image of each container the jobs' task processes created
    left_over: set[str]  # containers and networks of those processes still on the daemon after the run

    def events(self, task_id: str) -> list[dict[str, Any]]:
        """The events of the task's log, from ``GET .../logs/1``."""
        return self.stack.rest_log_events(DAG_ID, self.run_id, task_id)

    def log(self, task_id: str) -> list[str]:
        """The messages of the task's log, from ``GET .../logs/1``."""
        return [str(e.get("event", "")) for e in self.events(task_id)]


@pytest.fixture(scope="module")
def container_run(docker_client: docker.DockerClient, container_stack: AirflowStack) -> ContainerRun:
    creations = Creations(docker_client)
    try:
        run_id = container_stack.trigger(DAG_ID)
        state = container_stack.wait(DAG_ID, run_id, timeout=180)
    finally:
        creations.close()
    tis = {ti["task_id"]: ti for ti in container_stack.task_instances(DAG_ID, run_id)}
    # Each job's runner runs in its task's process, whose pid its task instance records.
    pids = {str(tis[job]["pid"]) for job in JOBS}
    created = [a for a in creations.seen if a.get(JOB_LABEL) in JOBS and _owner_pid(a) in pids]
    return ContainerRun(container_stack, run_id, state, tis, created, _owned(docker_client, pids))


def test_pipeline_succeeds(container_run: ContainerRun) -> None:
    states = {task_id: container_run.task_instances[task_id]["state"] for task_id in JOBS}
    assert (container_run.state, states) == ("success", {"build": "success", "test": "success"})


def test_each_job_runs_on_the_worker_its_tag_names(container_run: ContainerRun) -> None:
    build, test = container_run.task_instances["build"], container_run.task_instances["test"]
    assert (build["queue"], test["queue"]) == ("worker-1", "worker-2")
    assert (build["hostname"], test["hostname"]) == ("worker-1", "worker-2")


def test_jobs_run_in_their_images_with_the_service(container_run: ContainerRun) -> None:
    build, test = container_run.log("build"), container_run.log("test")
    for log in (build, test):
        assert any(line.startswith("Job isolation: containers on the Docker daemon") for line in log), log
    assert "hello from BusyBox in /builds/acme/containers" in build
    # Reached by its alias on the job's network; no stored variable reached its environment.
    assert "service says: fake-postgres db=etl user=postgres password_set=no secret_seen=no" in build
    assert "python 3.11 in /builds/acme/containers" in test
    # What the daemon made for each job: its image's container (build's script, maybe its
    # after_script) and build's service.
    made = {(a[JOB_LABEL], a["image"]) for a in container_run.created}
    assert made == {("build", "busybox:latest"), ("build", "fake-postgres:16"), ("test", "python:3.11-slim")}


def test_dotenv_value_reaches_the_other_worker(container_run: ContainerRun) -> None:
    path = f"/dags/{DAG_ID}/dagRuns/{container_run.run_id}/taskInstances/build/xcomEntries/dotenv"
    value = container_run.stack.get_json(path)["value"]
    report = json.loads(value) if isinstance(value, str) else value
    assert report["BUILD_VERSION"].startswith("3.1.") and report["BUILD_VERSION"] != "3.1."
    assert f"received BUILD_VERSION={report['BUILD_VERSION']}" in container_run.log("test")


def test_masked_variable_is_masked_in_both_logs(container_run: ContainerRun) -> None:
    assert "token in build: [MASKED]" in container_run.log("build")
    assert "token in test: [MASKED]" in container_run.log("test")
    for task_id in ("build", "test"):
        assert TOKEN not in json.dumps(container_run.events(task_id)), f"{task_id}'s log holds SECRET_TOKEN"


def test_no_container_or_network_is_left(container_run: ContainerRun) -> None:
    assert container_run.created, "no container of the run was seen: the owner check below would prove nothing"
    assert container_run.left_over == set()


def test_images_and_services_are_the_tasks_rendered_fields(container_run: ContainerRun) -> None:
    build, test = container_run.task_instances["build"], container_run.task_instances["test"]
    # What ran, as the UI's "Rendered Templates" shows it: the image, each service with its host names.
    assert build["rendered_fields"] == {"image": "busybox:latest", "services": "fake-postgres:16 (fake-postgres, db)"}
    assert test["rendered_fields"] == {"image": "python:3.11-slim", "services": ""}
    assert TOKEN not in json.dumps(build["rendered_fields"]) + json.dumps(test["rendered_fields"])
