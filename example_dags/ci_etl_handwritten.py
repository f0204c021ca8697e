"""A GitLab-style pipeline written by hand with CIJobOperator (no DAG factory).

build (writes build.env and dist/) -> test (receives BUILD_VERSION and dist/) -> deploy (to a
review environment whose URL comes from its own dotenv report and shows as a link in the UI).
Variables come from examples/etl/settings.yml (instance, groups acme and acme/data, project
acme/data/etl; kept beside the project files for the demo's sake, never copied into a job's
workspace) plus the run's conf, e.g. {"ref": "main", "variables": {"DRY_RUN": "1"}}.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from airflow.sdk import DAG

from airflow_ci_vars.jobs import JobSpec
from airflow_ci_vars.operators import CIJobOperator

PROJECT = Path(__file__).resolve().parent.parent / "examples" / "etl"
DEFAULTS = {"PIPELINE_NAME": "nightly-etl"}

build = JobSpec.from_yaml(
    "build",
    {
        "stage": "build",
        "script": [
            'echo "BUILD_VERSION=1.4.$CI_PIPELINE_ID" >> build.env',
            # The workspace holds the project's files, never the variable store beside them
            # (settings.yml is left out of every copy: docs/security.md).
            "mkdir -p dist && tar czf dist/etl.tar.gz --exclude=./dist .",
        ],
        "artifacts": {"paths": ["dist/"], "reports": {"dotenv": "build.env"}},
    },
    default_variables=DEFAULTS,
)
test = JobSpec.from_yaml(
    "test",
    {
        "stage": "test",
        "script": ['echo "testing $PIPELINE_NAME $BUILD_VERSION"', "tar tzf dist/etl.tar.gz"],
    },
    default_variables=DEFAULTS,
)
deploy = JobSpec.from_yaml(
    "deploy",
    {
        "stage": "deploy",
        "environment": {"name": "review/$CI_COMMIT_REF_SLUG", "url": "$REVIEW_URL"},
        "script": [
            'echo "deploying $BUILD_VERSION to $S3_BUCKET with password $DB_PASSWORD"',
            'echo "REVIEW_URL=https://$CI_ENVIRONMENT_SLUG.review.example.com" >> deploy.env',
        ],
        "after_script": ['echo "deploy finished: $CI_JOB_STATUS"'],
        "artifacts": {"reports": {"dotenv": "deploy.env"}},
    },
    default_variables=DEFAULTS,
)

with DAG("ci_etl_handwritten", schedule=None, tags=["airflow-ci-vars"]) as dag:
    common = {"project_dir": PROJECT, "settings_file": PROJECT / "settings.yml", "project": "acme/data/etl"}
    b = CIJobOperator(task_id="build", job=build, **common)
    t = CIJobOperator(task_id="test", job=test, **common)
    d = CIJobOperator(task_id="deploy", job=deploy, execution_timeout=timedelta(minutes=10), **common)
    b >> t >> d
