"""The images of scripts/docker-env do what the container-job tests rely on, on the real daemon.

Every container and network here carries the ``airflow-ci-vars.job`` label, so the leftover check
of conftest.py also proves these tests clean up after themselves.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator

import docker
import pytest
from docker.models.containers import Container
from docker.models.networks import Network

from airflow_ci_vars.containers.docker_runner import OWNER_LABEL
from airflow_ci_vars.runner import process_stamp

JOB_LABEL = "airflow-ci-vars.job"  # the leftover check of conftest.py looks for it
# The owner label names this test process, as the runner's labels name the task process.
LABELS = {JOB_LABEL: "test-docker-env", OWNER_LABEL: f"{socket.gethostname()} {process_stamp(os.getpid()).strip()}"}


def _run(client: docker.DockerClient, image: str, command: list[str], **kwargs: object) -> str:
    """Run a labelled container to its end and return its output (it is removed either way)."""
    output = client.containers.run(image, command, labels=LABELS, remove=True, **kwargs)
    assert isinstance(output, bytes)
    return output.decode()


def _wait_for_log(container: Container, text: str, timeout: float) -> float:
    """Seconds until ``text`` appears in the container's output; fails with the output after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if text in container.logs().decode():
            return time.monotonic() - start
        container.reload()
        assert container.status in ("created", "running"), container.logs().decode()
        time.sleep(0.1)
    pytest.fail(f"{container.name} did not print {text!r} within {timeout} s: {container.logs().decode()!r}")


@pytest.fixture
def network(docker_client: docker.DockerClient, test_images: tuple[str, ...]) -> Iterator[Network]:
    """A labelled user-defined bridge network, removed with its containers afterwards."""
    net = docker_client.networks.create(f"ci-vars-test-{uuid.uuid4().hex[:8]}", labels=LABELS)
    yield net
    net.reload()
    for container in net.containers:
        container.remove(force=True)
    net.remove()


def _start_postgres(client: docker.DockerClient, net: Network, environment: dict[str, str]) -> Container:
    container = client.containers.run(
        "fake-postgres:16", detach=True, labels=LABELS, environment=environment, network=net.name
    )
    # The SDK's run() takes no alias; reconnect with one, as a job's service container is reached.
    net.disconnect(container)
    net.connect(container, aliases=["db"])
    return container


@pytest.mark.parametrize("image", ["busybox:latest", "busybox:1.36"])
def test_busybox_runs_a_shell(docker_client: docker.DockerClient, test_images: tuple[str, ...], image: str) -> None:
    assert _run(docker_client, image, ["sh", "-c", "echo ok"]) == "ok\n"


def test_python_image_runs_python3(docker_client: docker.DockerClient, test_images: tuple[str, ...]) -> None:
    out = _run(docker_client, "python:3.11-slim", ["python3", "-c", "import sys; print(sys.version_info[:2])"])
    assert out == "(3, 11)\n"
    assert _run(docker_client, "python:3.11-slim", ["bash", "-c", "command -v python3"]) == "/usr/bin/python3\n"


def test_fake_postgres_answers_by_network_alias(docker_client: docker.DockerClient, network: Network) -> None:
    db = _start_postgres(docker_client, network, {"POSTGRES_DB": "app", "POSTGRES_USER": "ci"})
    _wait_for_log(db, "fake-postgres ready", timeout=30)

    answer = _run(docker_client, "busybox:latest", ["nc", "db", "5432"], network=network.name)

    assert answer == "fake-postgres db=app user=ci password_set=no secret_seen=no\n"
    db.remove(force=True)


def test_fake_postgres_start_delay_and_secret(docker_client: docker.DockerClient, network: Network) -> None:
    env = {"POSTGRES_DB": "app", "POSTGRES_PASSWORD": "pw", "SECRET_TOKEN": "s3cr3t", "FAKE_PG_START_DELAY": "2"}
    db = _start_postgres(docker_client, network, env)
    early = _run(docker_client, "busybox:latest", ["sh", "-c", "nc db 5432 || echo refused"], network=network.name)
    assert early == "refused\n"

    waited = _wait_for_log(db, "fake-postgres ready", timeout=30)
    answer = _run(docker_client, "busybox:latest", ["nc", "db", "5432"], network=network.name)

    assert waited > 0.5
    assert answer == "fake-postgres db=app user=postgres password_set=yes secret_seen=yes\n"
    db.remove(force=True)
