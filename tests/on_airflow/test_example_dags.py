"""The example DAGs run end to end on a real Airflow (``dag.test()``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.airflow

DAGS = Path(__file__).resolve().parent / "dags"


def test_handwritten_example_runs_end_to_end() -> None:
    spec = importlib.util.spec_from_file_location("examples_under_test", DAGS / "examples.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = module.dag
    assert [t.task_id for t in dag.tasks] == ["build", "test", "deploy"]
    dr = dag.test(run_conf={"ref": "feature/login"})
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dr.get_task_instances()}
    assert states == {"build": "success", "test": "success", "deploy": "success"}
