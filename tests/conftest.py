"""Test-wide set-up: a private AIRFLOW_HOME, configured before anything imports Airflow."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

_HOME = tempfile.mkdtemp(prefix="ci-vars-airflow-home-")
os.environ["AIRFLOW_HOME"] = _HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = os.path.join(os.path.dirname(__file__), "on_airflow", "dags")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME}/airflow.db"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "INFO"


# The Docker daemon of the container-job tests (tests/containers, tests/stack/test_container_jobs.py),
# made by scripts/docker-env (`make docker-env`): it listens on CI_VARS_TEST_DOCKER_HOST (default: the
# script's private socket) and holds TEST_IMAGES, built locally without a registry. A missing daemon
# or image fails the tests that use it loudly; nothing skips.
DEFAULT_DOCKER_HOST = "unix:///tmp/airflow-ci-vars-docker/docker.sock"
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


# Modules observing a job from outside -- its script writes what it sees into ``$OUT``, a folder
# of the test's, which the sandbox (rightly) forbids -- run their jobs with isolation ``none``.
# A module says otherwise with ``ISOLATION = "sandbox"``; the sandbox itself is tested there, in
# tests/security (on a real deployment, in every mode) and in tests/unit/test_isolation.py.
_OBSERVED_FROM_OUTSIDE = {"on_airflow", "vault"}


@pytest.fixture(scope="module", autouse=True)
def job_isolation(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """``[ci_vars] isolation`` for the module's in-process runs (``dag.test()``)."""
    folder = Path(str(request.module.__file__)).parent.name
    mode = getattr(request.module, "ISOLATION", "none" if folder in _OBSERVED_FROM_OUTSIDE else None)
    if mode is None:
        yield None
        return
    key = "AIRFLOW__CI_VARS__ISOLATION"
    before = os.environ.get(key)
    os.environ[key] = mode
    yield mode
    if before is None:
        os.environ.pop(key, None)
    else:
        os.environ[key] = before
