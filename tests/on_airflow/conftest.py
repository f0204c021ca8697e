"""Fixtures for tests that run jobs on a real Airflow (``dag.test()``, SQLite metadata DB)."""

from __future__ import annotations

import os
import subprocess
import sys
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
