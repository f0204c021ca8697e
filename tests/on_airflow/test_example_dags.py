"""The example DAGs run end to end on a real Airflow (``dag.test()``)."""

from __future__ import annotations

import pytest
from dag_files import load_dag_file

pytestmark = pytest.mark.airflow
ISOLATION = "sandbox"  # these jobs stay inside their workspace: they run as users run them


def test_handwritten_example_runs_end_to_end() -> None:
    dag = load_dag_file("examples.py", "examples_under_test").dag
    assert [t.task_id for t in dag.tasks] == ["build", "test", "deploy"]
    dr = dag.test(run_conf={"ref": "feature/login"})
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dr.get_task_instances()}
    assert states == {"build": "success", "test": "success", "deploy": "success"}
