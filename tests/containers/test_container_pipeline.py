"""A container pipeline through Airflow: ``airflow-ci-vars run`` (the factory's DAG, the operator,
``dag.test()``) with ``[ci_vars] isolation = docker`` on the real daemon.

examples/containers: two jobs on two images, a service reached by alias, a masked stored variable,
a file variable, and a dotenv handoff from one container job to the next.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "containers"
CLI = Path(sys.executable).parent / "airflow-ci-vars"
SECRET = "tok-Hq72kLm9Zx"


def run_cli(home: Path, docker_host: str, *args: str, **options: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env |= {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CI_VARS__ISOLATION": "docker",
        "AIRFLOW__CI_VARS__DOCKER_HOST": docker_host,
        "AIRFLOW__CI_VARS__DOCKER_PULL_POLICY": "never",
    }
    env |= {f"AIRFLOW__CI_VARS__{key.upper()}": value for key, value in options.items()}
    command = [str(CLI), "run", str(EXAMPLE / ".gitlab-ci.yml"), "--settings", str(EXAMPLE / "settings.yml"), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False)


def records(proc: subprocess.CompletedProcess[str]) -> tuple[list[tuple[str, str]], dict[str, str]]:
    found = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    lines = [(r["job"], r["line"]) for r in found if "line" in r]
    return lines, {r["job"]: r["status"] for r in found if "status" in r}


def test_container_pipeline_runs_with_service_dotenv_and_masking(
    tmp_path: Path, docker_host: str, docker_client: docker.DockerClient, test_images: object
) -> None:
    proc = run_cli(tmp_path, docker_host, "--output", "jsonl")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines, statuses = records(proc)
    assert statuses == {"build": "success", "test": "success"}
    assert ("build", "Using Docker executor with image busybox:latest ...") in lines
    assert ("build", "building in /builds/acme/data/containers with token [MASKED]") in lines
    # The service by its alias, with the YAML variable; the stored masked token never reaches it.
    assert ("build", "fake-postgres db=warehouse user=postgres password_set=no secret_seen=no") in lines
    assert ("build", '{"type": "service_account", "i') in lines  # the file variable, read in the container
    assert ("test", "Using Docker executor with image python:3.11-slim ...") in lines
    assert ("test", "testing version 1.4.2") in lines  # dotenv from one container job to the next
    assert ("test", "3.11.2") in lines  # the image's python
    assert SECRET not in proc.stdout + proc.stderr


def test_disallowed_image_fails_the_job_naming_image_and_setting(
    tmp_path: Path, docker_host: str, docker_client: docker.DockerClient, test_images: object
) -> None:
    proc = run_cli(tmp_path, docker_host, "--job", "test", docker_allowed_images="busybox:*")
    assert proc.returncode != 0
    said = proc.stdout + proc.stderr
    assert "the image 'python:3.11-slim' is not allowed by [ci_vars] docker_allowed_images (busybox:*)" in said


def test_worker_without_docker_fails_the_job_instead_of_running_it_on_the_host(
    tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    missing = f"unix://{tmp_path}/no-docker.sock"
    proc = run_cli(tmp_path, missing, "--job", "build")
    assert proc.returncode != 0
    said = proc.stdout + proc.stderr
    assert f"the one at {missing} ([ci_vars] docker_host) cannot be reached on this worker" in said
    assert "building in" not in said  # the script never ran anywhere
