"""The DAG files of tests/on_airflow/dags, executed as a fresh module on each call (as a parse does)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

DAGS = Path(__file__).parent / "dags"


def load_dag_file(file_name: str, module_name: str) -> ModuleType:
    """Execute ``dags/<file_name>`` as module ``module_name`` and return it."""
    spec = importlib.util.spec_from_file_location(module_name, DAGS / file_name)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
