"""Fixtures for end-to-end tests on a real Airflow deployment (see airflow_stack.py).

The ``airflow_stack`` fixture starts api-server, scheduler (LocalExecutor) and dag-processor
on a fresh PostgreSQL database, with every file of tests/stack/dags in its dags folder. It
needs the local PostgreSQL server (127.0.0.1:5432, trust auth) and ``asyncpg``; if anything is
missing the fixture raises: these tests fail, they never skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow_stack import AirflowStack

DAGS = Path(__file__).parent / "dags"


@pytest.fixture(scope="session")
def airflow_stack() -> Iterator[AirflowStack]:
    """A running Airflow deployment with tests/stack/dags/* in its dags folder."""
    with AirflowStack.running([DAGS]) as stack:
        yield stack
