"""The real Docker daemon of the container-job tests, made by ``scripts/docker-env`` (``make docker-env``).

The daemon listens on ``CI_VARS_TEST_DOCKER_HOST`` (default: the script's private socket) and holds
the four test images, built locally without a registry. A missing daemon or image fails the tests
loudly; nothing here skips. After every test, containers and networks labelled
``airflow-ci-vars.job`` must be gone: leftovers fail the test (and are removed).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import docker
import docker.errors
import pytest
from docker.models.containers import Container
from docker.models.networks import Network

from airflow_ci_vars.containers.docker_runner import OWNER_LABEL
from airflow_ci_vars.runner import process_alive, process_stamp

DEFAULT_DOCKER_HOST = "unix:///tmp/airflow-ci-vars-docker/docker.sock"
JOB_LABEL = "airflow-ci-vars.job"
TEST_IMAGES = ("busybox:latest", "busybox:1.36", "python:3.11-slim", "fake-postgres:16")


@pytest.fixture(scope="session")
def docker_host() -> str:
    """The Docker daemon's URL (``CI_VARS_TEST_DOCKER_HOST``, else scripts/docker-env's socket)."""
    return os.environ.get("CI_VARS_TEST_DOCKER_HOST") or DEFAULT_DOCKER_HOST


@pytest.fixture(scope="session")
def docker_client(docker_host: str) -> Iterator[docker.DockerClient]:
    """A client of the test daemon, which must answer a ping."""
    try:
        # the constructor already asks the daemon for its API version
        client = docker.DockerClient(base_url=docker_host)
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(
            f"no Docker daemon answers on {docker_host} ({exc}); start it with `make docker-env` "
            "(scripts/docker-env, as root) or point CI_VARS_TEST_DOCKER_HOST at one",
            pytrace=False,
        )
    yield client
    client.close()


@pytest.fixture(scope="session")
def test_images(docker_client: docker.DockerClient) -> tuple[str, ...]:
    """The images the tests run; each must exist on the daemon (scripts/docker-env builds them)."""
    for name in TEST_IMAGES:
        try:
            docker_client.images.get(name)
        except docker.errors.ImageNotFound:
            pytest.fail(
                f"the test image {name} is missing on {docker_client.api.base_url}; "
                "build it with `make docker-env` (no registry is used)",
                pytrace=False,
            )
    return TEST_IMAGES


def _job_resources(client: docker.DockerClient) -> tuple[list[Container], list[Network]]:
    label = {"label": JOB_LABEL}
    return client.containers.list(all=True, filters=label), client.networks.list(filters=label)


def _ours(labels: dict[str, str]) -> bool:
    """Whether a labelled object belongs to this test process or to a process that is gone."""
    host, _, stamp = labels.get(OWNER_LABEL, "").partition(" ")
    if host != socket.gethostname():
        return not host  # unlabelled owner: counted; another machine's: not ours
    return stamp == process_stamp(os.getpid()).strip() or not process_alive(stamp)


@pytest.fixture(autouse=True)
def no_leftover_job_resources(docker_client: docker.DockerClient) -> Iterator[None]:
    """Fail the test if it leaves containers or networks labelled ``airflow-ci-vars.job``; remove them.

    Only resources made during the test count, and not those of another live process (the
    ``airflow-ci-vars.owner`` label): the daemon may be shared with other test sessions.
    """
    containers_before, networks_before = _job_resources(docker_client)
    seen = {c.id for c in containers_before} | {n.id for n in networks_before}
    yield
    containers, networks = _job_resources(docker_client)
    containers = [c for c in containers if c.id not in seen and _ours(c.labels)]
    networks = [n for n in networks if n.id not in seen and _ours(n.attrs.get("Labels") or {})]
    if not containers and not networks:
        return
    names = [f"container {c.name} ({JOB_LABEL}={c.labels.get(JOB_LABEL)})" for c in containers]
    names += [f"network {n.name} ({JOB_LABEL}={(n.attrs.get('Labels') or {}).get(JOB_LABEL)})" for n in networks]
    for container in containers:
        container.remove(force=True, v=True)
    for network in networks:
        network.remove()
    pytest.fail(f"the test left {len(names)} Docker resource(s) behind: {', '.join(names)}", pytrace=False)
