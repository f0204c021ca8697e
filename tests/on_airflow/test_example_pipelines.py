"""The example pipelines load, and the etl and matrix ones run end to end with airflow-ci-vars run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_ci_vars.pipeline.config import load_config
from airflow_ci_vars.pipeline.model import build_pipeline

pytestmark = pytest.mark.airflow

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags" / "pipelines"
CLI = Path(sys.executable).parent / "airflow-ci-vars"


@pytest.mark.parametrize("name", ["etl", "matrix", "release"])
def test_example_pipeline_is_valid(name: str) -> None:
    config = load_config(EXAMPLES / name / ".gitlab-ci.yml")
    pipeline = build_pipeline(file=str(config.file), stages=config.stages, variables=config.variables, jobs=config.jobs)
    assert pipeline.jobs


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["AIRFLOW_HOME"] = str(home)
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home}/airflow.db"
    return subprocess.run([str(CLI), "run", *args], capture_output=True, text=True, env=env, timeout=600, check=False)


def test_etl_pipeline_runs_with_dotenv_handoff_and_masking(tmp_path: Path) -> None:
    pipeline = EXAMPLES / "etl"
    proc = run_cli(
        str(pipeline / ".gitlab-ci.yml"),
        "--settings", str(pipeline / "settings.yml"), "--ref", "feature/login", "--output", "jsonl",
        home=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    lines = [(r["job"], r["line"]) for r in records if "line" in r]
    statuses = {r["job"]: r["status"] for r in records if "status" in r}
    assert statuses == {"build": "success", "test": "success", "deploy": "success"}
    assert ("test", "wheel of nightly-etl") in lines  # artifacts reached the next stage
    deploy = [line for job, line in lines if job == "deploy" and line.startswith("deploying")]
    assert deploy and deploy[0].startswith("deploying 1.4.") and "(password [MASKED])" in deploy[0]
    assert "proj-pw-Zq81xLm4" not in proc.stdout + proc.stderr


def test_matrix_pipeline_selected_job_with_needs(tmp_path: Path) -> None:
    proc = run_cli(
        str(EXAMPLES / "matrix" / ".gitlab-ci.yml"), "--job", "test-linux", "--needs", "--ref", "main", home=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "test-linux > WHEEL_linux_311=dist/etl-linux-3.11.whl" in out
    assert "test-linux > WHEEL_linux_312=dist/etl-linux-3.12.whl" in out
    assert "WHEEL_mac" not in out.split("test-linux >", 1)[1]
    assert "publish" not in out  # not selected
