"""Fixtures for tests that run jobs on a real Airflow (``dag.test()``, SQLite metadata DB)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


@pytest.fixture(scope="session", autouse=True)
def airflow_db() -> None:
    """Migrate the test AIRFLOW_HOME's metadata DB once (set up in tests/conftest.py)."""
    proc = subprocess.run(
        [str(BIN / "airflow"), "db", "migrate"], capture_output=True, text=True, env=os.environ, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="session", autouse=True)
def local_user() -> Iterator[None]:
    """``dag.test()`` runs act for the local developer, as ``airflow-ci-vars run`` does
    (``airflow_ci_vars.auth.LOCAL_RUN_ENV``; session-wide, as module fixtures run DAGs too)."""
    from airflow_ci_vars.auth import LOCAL_RUN_ENV

    os.environ[LOCAL_RUN_ENV] = "1"
    yield
    os.environ.pop(LOCAL_RUN_ENV, None)


@pytest.fixture
def as_dag_test_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """This test's ``dag.test()`` runs act for the plain Airflow user ``dag_test`` (rights from ``members``)."""
    from airflow_ci_vars.auth import LOCAL_RUN_ENV

    monkeypatch.delenv(LOCAL_RUN_ENV, raising=False)
