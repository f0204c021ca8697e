"""Test DAG: dotenv handoff between stages."""

from __future__ import annotations

import yaml
from airflow.sdk import DAG

from airflow_ci_vars.jobs import JobSpec
from airflow_ci_vars.operators import CIJobOperator

PIPELINE = yaml.safe_load(
    """
build:
  stage: build
  script:
    - echo "BUILD_VERSION=v1.$CI_PIPELINE_SOURCE" >> build.env
  artifacts: {reports: {dotenv: build.env}}
test:
  stage: test
  script:
    - echo "got $BUILD_VERSION" > "$OUT/test.txt"
"""
)

with DAG("ci_handoff", schedule=None) as dag:
    tasks = {name: CIJobOperator(task_id=name, job=JobSpec.from_yaml(name, spec)) for name, spec in PIPELINE.items()}
    tasks["build"] >> tasks["test"]
