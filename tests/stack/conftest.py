"""Fixtures for end-to-end tests on a real Airflow deployment (scripts/airflow_stack.py).

* ``airflow_stack``: api-server, scheduler (LocalExecutor), dag-processor and triggerer on a
  fresh PostgreSQL database, for the whole session. REST calls log in (``POST /auth/token``) as
  a user would: ``admin`` (Airflow role admin), or ``alice`` and ``bob`` (role ``user``) with
  ``stack.token("bob")``.
* ``include_repos``: the folder of the git repositories the ``airflow_stack`` deployment maps
  the project paths of ``INCLUDE_PROJECTS`` to (``[ci_vars] include_projects``, ``file://``):
  test_component_tags.py creates them there once the stack runs (the options must be set before
  it starts; no other DAG of the session includes these projects, so nothing else changes).
* ``executor_stack``: the same tests on each executor: ``local`` is ``airflow_stack`` itself,
  ``celery`` a CeleryExecutor deployment with two workers (``worker-1``, ``worker-2``, each
  consuming ``default`` and its own queue; Redis at 127.0.0.1:6379 is the broker), started once
  when the first ``celery`` test needs it.

Every file of tests/stack/dags is in their dags folder. They need the local PostgreSQL server
(127.0.0.1:5432, trust auth), ``asyncpg``, and for Celery the Redis server and the Celery
provider: if anything is missing the fixture raises, these tests fail, they never skip.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow_stack import AirflowStack

DAGS = Path(__file__).parent / "dags"
# The DAG files are all there before the start (new ones are still found every 2 s): re-parsing
# them every few seconds would only take CPU from the tasks on a small machine.
REPARSE_SECONDS = 60
# Simple auth manager users besides admin, one per role (test_permissions_matrix.py, test_rest.py).
USERS = {"alice": "user", "bob": "user", "dana": "user", "olga": "op", "viewer": "viewer"}
# Task slots per Celery worker: a task spends most of its life starting (a process, the DAG
# file parsed again) and in API calls, not on the CPU, so more slots than cores pay off
# (test_rest_load.py: 50 runs took 190 s with 2 slots per worker, 70 s with 8).
CELERY_CONCURRENCY = 8
# include:project / include:component (test_component_tags.py): each project path maps to a git
# repository in ``include_repos`` named after its last segment. ``acme/gone`` is never created (an
# unreachable remote nothing was fetched from). A new tag is seen by the first parse that starts
# INCLUDE_GIT_REFRESH seconds after the last fetch; $CI_SERVER_FQDN is INCLUDE_SERVER_FQDN.
INCLUDE_PROJECTS = ("acme/components", "acme/gone")
INCLUDE_GIT_REFRESH = 2
INCLUDE_SERVER_FQDN = "gitlab.example.com"


def include_env(repos: Path) -> dict[str, str]:
    """The ``[ci_vars] include_*`` options of the session's deployment (``AIRFLOW__CI_VARS__...``)."""
    projects = {path: {"git": (repos / path.rsplit("/", 1)[1]).as_uri()} for path in INCLUDE_PROJECTS}
    return {
        "AIRFLOW__CI_VARS__INCLUDE_PROJECTS": json.dumps(projects),
        "AIRFLOW__CI_VARS__INCLUDE_GIT_REFRESH": str(INCLUDE_GIT_REFRESH),
        "AIRFLOW__CI_VARS__INCLUDE_SERVER_FQDN": INCLUDE_SERVER_FQDN,
    }


@pytest.fixture(scope="session")
def include_repos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the git repositories of ``INCLUDE_PROJECTS`` are (empty until a test creates them)."""
    return tmp_path_factory.mktemp("include-repos")


@pytest.fixture(scope="session")
def airflow_stack(include_repos: Path) -> Iterator[AirflowStack]:
    """A running LocalExecutor deployment with tests/stack/dags/* in its dags folder and the
    include options of ``include_env``."""
    with AirflowStack.running(
        [DAGS],
        all_admins=False,
        users=USERS,
        min_file_process_interval=REPARSE_SECONDS,
        extra_env=include_env(include_repos),
    ) as stack:
        yield stack


@pytest.fixture(scope="session", params=["local", "celery"])
def executor_stack(request: pytest.FixtureRequest) -> Iterator[AirflowStack]:
    """The deployment on each executor (session scope: pytest runs every ``local`` test first,
    then starts the Celery deployment once for the ``celery`` ones)."""
    if request.param == "local":
        yield request.getfixturevalue("airflow_stack")
        return
    with AirflowStack.running(
        [DAGS],
        executor="celery",
        workers=2,
        worker_concurrency=CELERY_CONCURRENCY,
        all_admins=False,
        users=USERS,
        min_file_process_interval=REPARSE_SECONDS,
    ) as stack:
        yield stack
