"""``needs:pipeline`` refused as GitLab refuses it, on a real Airflow (``dag.test()``): a child
pipeline's job may only read a job of its own parent pipeline (``operators/cross_pipeline.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dag_files import load_dag_file

pytestmark = pytest.mark.airflow


def test_needs_pipeline_reads_only_its_parent_pipelines_jobs(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    dag = load_dag_file("ci_factory.py", "ci_factory_cross_pipeline").needs_pipeline
    dr = dag.test(run_conf={"variables": {"OUT": str(tmp_path)}})
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dr.get_task_instances()}
    assert states["notes"] == "success"
    assert states["child__child.other-pipeline"] == "failed"
    assert states["child__child.no-such-job"] == "failed"
    assert list(tmp_path.iterdir()) == []  # neither script ran
    log = "".join(capfd.readouterr())
    assert (
        "other-pipeline job: needs:pipeline '4242' is not this child pipeline's parent pipeline "
        "(pass it as PARENT_PIPELINE_ID: $CI_PIPELINE_ID in the trigger job's variables)"
    ) in log
    assert "no-such-job job: needs:pipeline: the parent pipeline has no job 'ghost'" in log
