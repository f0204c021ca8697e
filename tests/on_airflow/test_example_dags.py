"""The example DAGs run end to end on a real Airflow (``dag.test()``)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

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


def test_handwritten_example_artifact_holds_no_store() -> None:
    """Issue 11: the example tarred its project folder, variable store included, into an artifact."""
    dag = load_dag_file("examples.py", "examples_under_test").dag
    dr = dag.test(run_conf={"ref": "main"})  # a protected ref: protected values are resolved too
    home = Path(os.environ["AIRFLOW_HOME"])
    archive = home / "ci-artifacts" / dag.dag_id / dr.run_id / "build" / "files" / "dist" / "etl.tar.gz"
    data = archive.read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = {Path(n).name for n in tar.getnames()}
        contents = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())  # type: ignore[union-attr]
    assert "build.env" in names  # the project's own files are there
    assert "settings.yml" not in names
    for value in (b"proj-pw-Zq81xLm4", b"glpat-prodonly7788", b"group-pw-8f3kd92"):
        assert value not in contents
