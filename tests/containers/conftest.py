"""The real Docker daemon of the container-job tests, made by ``scripts/docker-env`` (``make docker-env``).

The ``docker_host``, ``docker_client`` and ``test_images`` fixtures are in tests/conftest.py (also
used by tests/stack/test_container_jobs.py). After every test here, containers and networks
labelled ``airflow-ci-vars.job`` must be gone: leftovers fail the test (and are removed).
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

JOB_LABEL = "airflow-ci-vars.job"


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
