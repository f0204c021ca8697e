"""``airflow-ci-vars run``: the direct engine (the default) and ``--engine airflow`` (dag.test(),
Airflow's task runner) give the same run, line by line.

Each pipeline runs through both engines with ``--output jsonl``; per job, the masked output
lines, the status and (through the printing jobs) the dotenv values handed on must be equal,
and so must the exit code. Job order may differ between the engines (both respect the DAG's
edges), so records are compared per job.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.airflow

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).parent / "airflow-ci-vars"
EXAMPLES = ROOT / "example_dags" / "pipelines"
PARENT_CHILD = ROOT / "tests" / "conformance" / "gitlab-ci-local" / "parent-child"
#: GitLab's numeric ids (CI_PIPELINE_ID, CI_JOB_ID) differ from run to run, whatever the engine.
NUMERIC_ID = re.compile(r"\d{9,}")

SETTINGS = """\
project: acme/data/etl
instance:
  variables:
    - {key: REGION, value: eu-west-1}
groups:
  acme:
    variables:
      - {key: DEPLOY_TOKEN, value: tok-Vq3xZ81mLp, masked: true}
      - {key: GREETING, value: from-group}
projects:
  acme/data/etl:
    variables:
      - {key: STAGING_ONLY, value: staging-value, environment_scope: staging}
"""

SEMANTICS = """\
stages: [build, test, deploy, cleanup]
variables:
  GREETING: from-yaml
  MODE: fast
build:
  stage: build
  script:
    - echo "greeting $GREETING region $REGION token $DEPLOY_TOKEN"
    - echo "job $CI_JOB_NAME stage $CI_JOB_STAGE ref $CI_COMMIT_REF_NAME source $CI_PIPELINE_SOURCE"
    - mkdir -p dist && echo wheel > dist/app.whl
    - printf 'VERSION=1.4.2\\nCHANNEL=beta\\n' > build.env
    - echo "EXTRA=from-gitlab-env" >> "$GITLAB_ENV"
  after_script:
    - echo "after $CI_JOB_STATUS extra $EXTRA"
  artifacts:
    paths: [dist/]
    reports: {dotenv: build.env}
lint:
  stage: build
  needs: []
  script: [echo linting, exit 3]
  allow_failure: {exit_codes: [3]}
unit:
  stage: test
  parallel:
    matrix:
      - PY: ["3.10", "3.11"]
  script:
    - echo "unit $PY got $VERSION/$CHANNEL and $(cat dist/app.whl)"
ruled:
  stage: test
  rules:
    - if: $MODE == "slow"
      when: never
    - if: $MODE == "fast"
      variables: {RULED: yes}
  script: [echo "ruled $RULED"]
skipped-by-rule:
  stage: test
  rules:
    - if: $MODE == "slow"
  script: [echo never]
broken:
  stage: test
  needs: []
  script: [echo breaking, exit 1]
deploy:
  stage: deploy
  environment: {name: staging}
  script: [echo "deploy $VERSION staging-only $STAGING_ONLY"]
rollback:
  stage: deploy
  when: on_failure
  dependencies: []
  script: [echo "rolling back without $VERSION"]
approve:
  stage: deploy
  when: manual
  needs: [build]
  script: [echo "approved $VERSION"]
optional:
  stage: deploy
  when: manual
  script: [echo never played]
tidy:
  stage: cleanup
  when: always
  script: [echo "tidy after all"]
"""


def _run(engine: str, file: Path, *args: str, home: Path) -> tuple[int, dict[str, list[str]], dict[str, str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["AIRFLOW_HOME"] = str(home)
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home}/airflow.db"
    proc = subprocess.run(
        [str(CLI), "run", str(file), "--engine", engine, "--output", "jsonl", *args],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    lines: dict[str, list[str]] = {}
    statuses: dict[str, str] = {}
    for record in map(json.loads, proc.stdout.splitlines()):
        if "line" in record:
            lines.setdefault(record["job"], []).append(NUMERIC_ID.sub("<id>", record["line"]))
        else:
            statuses[record["job"]] = record["status"]
    return proc.returncode, lines, statuses, proc.stderr


def _semantics(tmp_path: Path) -> tuple[Path, list[str]]:
    folder = tmp_path / "semantics"
    folder.mkdir()
    (folder / ".gitlab-ci.yml").write_text(SEMANTICS)
    (folder / "settings.yml").write_text(SETTINGS)
    return folder / ".gitlab-ci.yml", ["--settings", str(folder / "settings.yml"), "--manual", "approve"]


CASES = {
    "etl": lambda tmp: (
        EXAMPLES / "etl" / ".gitlab-ci.yml",
        ["--settings", str(EXAMPLES / "etl" / "settings.yml"), "--ref", "feature/login"],
    ),
    "matrix": lambda tmp: (EXAMPLES / "matrix" / ".gitlab-ci.yml", ["--ref", "main"]),
    "semantics": _semantics,
    # child pipelines (trigger:include, nested, strategy: depend, forwarded variables), one failing
    "parent-child-2": lambda tmp: (PARENT_CHILD / ".gitlab-ci-2.yml", []),
    "parent-child-7": lambda tmp: (PARENT_CHILD / ".gitlab-ci-7.yml", []),
}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One AIRFLOW_HOME for the module: its metadata DB is migrated once."""
    return tmp_path_factory.mktemp("airflow-home")


@pytest.mark.parametrize("case", sorted(CASES))
def test_both_engines_give_the_same_run(case: str, tmp_path: Path, home: Path) -> None:
    file, args = CASES[case](tmp_path)
    direct = _run("direct", file, *args, home=home)
    airflow = _run("airflow", file, *args, home=home)
    assert direct[2], direct[3][-3000:]  # jobs ran
    assert direct[2] == airflow[2], (direct[3][-2000:], airflow[3][-2000:])  # statuses
    for job in sorted(set(direct[1]) | set(airflow[1])):  # masked output and dotenv values, line by line
        assert direct[1].get(job) == airflow[1].get(job), job
    assert direct[0] == airflow[0]
    assert "Deprecat" not in airflow[3]  # no Airflow warning noise (Starlette's about httpx was one)


def test_the_semantics_pipeline_exercises_what_it_claims(tmp_path: Path, home: Path) -> None:
    """The crafted pipeline's run shows each behaviour the comparison above relies on."""
    file, args = _semantics(tmp_path)
    code, lines, statuses, stderr = _run("direct", file, *args, home=home)
    assert code == 1  # `broken` fails the pipeline
    assert statuses == {
        "build": "success", "lint": "warning", "unit: [3.10]": "success", "unit: [3.11]": "success",
        "ruled": "success", "skipped-by-rule": "skipped", "broken": "failed", "deploy": "skipped",
        "rollback": "success", "approve": "success", "optional": "skipped", "tidy": "success",
    }  # fmt: skip
    build = lines["build"]
    assert "greeting from-group region eu-west-1 token [MASKED]" in build  # group beats YAML; masked
    assert "job build stage build ref main source api" in build
    assert "after success extra from-gitlab-env" in build
    assert "unit 3.11 got 1.4.2/beta and wheel" in lines["unit: [3.11]"]  # dotenv and artifacts
    assert "ruled true" in lines["ruled"]  # a rule's variables (YAML yes: true)
    assert "rolling back without " in lines["rollback"]
    assert "approved 1.4.2" in lines["approve"]  # a played manual job, with what it needs
    assert "tok-Vq3xZ81mLp" not in json.dumps(lines) + stderr
