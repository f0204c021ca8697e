"""Test-wide set-up: a private AIRFLOW_HOME, configured before anything imports Airflow."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_HOME = tempfile.mkdtemp(prefix="ci-vars-airflow-home-")
os.environ["AIRFLOW_HOME"] = _HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = os.path.join(os.path.dirname(__file__), "on_airflow", "dags")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME}/airflow.db"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "INFO"


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
