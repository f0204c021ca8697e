"""Test DAGs for CIJobOperator semantics; each test passes OUT (a directory) in the run's conf.

Jobs write what they see into $OUT so tests can assert on it after ``dag.test()``.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from airflow.sdk import DAG

from airflow_ci_vars.jobs import JobSpec
from airflow_ci_vars.operators import CIJobOperator

HERE = Path(__file__).parent
SETTINGS = HERE / "settings.yml"


def pipeline_dag(dag_id: str, text: str, edges: list[tuple[str, str]]) -> DAG:
    """A DAG of CIJobOperator tasks from a small .gitlab-ci.yml text (top-level `variables` = defaults)."""
    data = yaml.safe_load(text)
    defaults = data.pop("variables", None)
    with DAG(dag_id, schedule=None) as dag:
        tasks = {
            name: CIJobOperator(
                task_id=name,
                job=JobSpec.from_yaml(name, spec, default_variables=defaults),
                settings_file=SETTINGS,
                project_dir=HERE / "project",
            )
            for name, spec in data.items()
        }
        for up, down in edges:
            tasks[up] >> tasks[down]
    return dag


env_dag = pipeline_dag(
    "ci_env",
    """
variables:
  LEVEL: default
  FROM_DEFAULT: default-value
  OVERRIDE_ME: from-default
deploy:
  stage: deploy
  environment: {name: "review/$CI_COMMIT_REF_SLUG"}
  variables:
    LEVEL: job
    DERIVED: "$BUCKET/$FROM_DEFAULT"
    PRICE: "$$5"
  script:
    - env | sort > "$OUT/env.txt"
    - stat -c '%a' "$KUBECONFIG_DATA" > "$OUT/file_mode.txt"
    - cat "$KUBECONFIG_DATA" > "$OUT/file_content.txt"
    - echo "$KUBECONFIG_DATA" > "$OUT/file_path.txt"
    - ls > "$OUT/project_files.txt"
    - pwd > "$OUT/pwd.txt"
""",
    [],
)

scripts_dag = pipeline_dag(
    "ci_scripts",
    """
ok:
  before_script: [echo before > "$OUT/order.txt"]
  script:
    - echo script >> "$OUT/order.txt"
    - export FROM_SCRIPT=exported
    - echo "FROM_GITLAB_ENV=appended" >> "$GITLAB_ENV"
  after_script:
    - echo "after:$FROM_SCRIPT:$FROM_GITLAB_ENV:$CI_JOB_STATUS" > "$OUT/after_ok.txt"
fails:
  script:
    - echo first > "$OUT/fails.txt"
    - exit 4
    - echo never >> "$OUT/fails.txt"
  after_script:
    - echo "after:$CI_JOB_STATUS" > "$OUT/after_fails.txt"
    - exit 9
pipefail:
  script:
    - false | true
    - echo never > "$OUT/pipefail.txt"
allowed:
  script: [exit 3]
  allow_failure: {exit_codes: [3]}
not_allowed_code:
  script: [exit 5]
  allow_failure: {exit_codes: [3]}
""",
    [],
)

dotenv_dag = pipeline_dag(
    "ci_dotenv",
    """
build1:
  stage: build
  script:
    - printf 'BUILD_VERSION=v1.0.0\\nSHARED=from-build1\\nREF_HOME=$CI_JOB_STAGE/x\\n' > build.env
  artifacts: {reports: {dotenv: build.env}}
build2:
  stage: build
  script:
    - printf 'SHARED=from-build2\\nOTHER=o\\n' > other.env
  artifacts: {reports: {dotenv: other.env}}
missing_dotenv:
  stage: build
  script: ["true"]
  artifacts: {reports: {dotenv: nothing-here.env}}
all_earlier:
  stage: test
  script: [env | grep -E '^(BUILD_VERSION|SHARED|OTHER|REF_HOME)=' | sort > "$OUT/all_earlier.txt"]
deps_build1:
  stage: test
  dependencies: [build1]
  script: [env | grep -E '^(BUILD_VERSION|SHARED|OTHER)=' | sort > "$OUT/deps_build1.txt" || true]
deps_none:
  stage: test
  dependencies: []
  script: [env | grep -E '^(BUILD_VERSION|SHARED|OTHER)=' | sort > "$OUT/deps_none.txt" || true]
needs_build2_then_build1:
  stage: test
  needs: [build2, build1]
  script: [env | grep -E '^(BUILD_VERSION|SHARED|OTHER)=' | sort > "$OUT/needs_order.txt" || true]
needs_no_artifacts:
  stage: test
  needs: [{job: build1, artifacts: false}]
  script: [env | grep -E '^(BUILD_VERSION|SHARED|OTHER)=' | sort > "$OUT/needs_no_artifacts.txt" || true]
""",
    [
        (u, d)
        for u in ("build1", "build2", "missing_dotenv")
        for d in ("all_earlier", "deps_build1", "deps_none", "needs_build2_then_build1", "needs_no_artifacts")
    ],
)

artifacts_dag = pipeline_dag(
    "ci_artifacts",
    """
build:
  stage: build
  script:
    - mkdir -p dist/sub logs
    - echo wheel > dist/pkg.whl
    - echo nested > dist/sub/deep.txt
    - echo debug > dist/sub/debug.log
    - echo log > logs/build.log
    - echo "URL_FROM_DOTENV=https://review.example.com/$CI_COMMIT_REF_SLUG" > deploy.env
  environment: {name: review/x, url: "$URL_FROM_DOTENV"}
  artifacts:
    paths: [dist/, missing-dir/]
    exclude: ["dist/**/*.log"]
    reports: {dotenv: deploy.env}
untracked:
  stage: build
  script: [echo made > made-by-job.txt]
  artifacts: {untracked: true}
on_failure:
  stage: build
  script: [echo crash > crash.txt, exit 1]
  allow_failure: true
  artifacts: {paths: [crash.txt], when: on_failure}
test:
  stage: test
  script:
    - find . -type f | sort > "$OUT/test_files.txt"
no_artifacts:
  stage: test
  needs: [{job: build, artifacts: false}]
  script:
    - find . -type f | sort > "$OUT/no_artifacts_files.txt"
""",
    [("build", "test"), ("untracked", "test"), ("on_failure", "test"), ("build", "no_artifacts")],
)

with DAG("ci_timeout", schedule=None) as timeout_dag:
    from datetime import timedelta

    CIJobOperator(
        task_id="slow",
        job=JobSpec.from_yaml(
            "slow",
            {
                "script": [
                    'sleep 60 & echo $! > "$OUT/child.pid"',
                    'echo "$KUBECONFIG_DATA" > "$OUT/file_path.txt"',
                    'pwd > "$OUT/pwd.txt"',
                    "wait",
                ]
            },
        ),
        settings_file=SETTINGS,
        execution_timeout=timedelta(seconds=3),
    )

refused_dotenv_dag = pipeline_dag(
    "ci_dotenv_refused",
    """
bad_dotenv:
  stage: build
  script:
    - printf 'GOOD=1\\n\\nexport BAD=2\\n' > bad.env
  artifacts: {reports: {dotenv: bad.env}}
secret_dotenv:
  stage: build
  script:
    - echo "LEAK=$DB_PASSWORD" > leak.env
  artifacts: {reports: {dotenv: leak.env}}
after:
  stage: test
  when: always
  script: [env | grep -E '^(GOOD|LEAK)=' | sort > "$OUT/after.txt" || true]
on_success_job:
  stage: test
  script: [touch "$OUT/on_success_ran"]
""",
    [
        ("bad_dotenv", "after"),
        ("secret_dotenv", "after"),
        ("bad_dotenv", "on_success_job"),
        ("secret_dotenv", "on_success_job"),
    ],
)

rules_dag = pipeline_dag(
    "ci_rules",
    """
variables:
  TARGET: staging
on_main_only:
  rules:
    - if: $CI_COMMIT_BRANCH == "main"
  script: [touch "$OUT/on_main_only"]
by_pipeline_variable:
  rules:
    - if: $DEPLOY == "yes"
      variables: {MODE: from-rule}
    - when: never
  script: [echo "$MODE" > "$OUT/by_pipeline_variable"]
unexpanded:
  variables: {REF: "$TARGET"}
  rules:
    - if: $REF == "$TARGET"
  script: [touch "$OUT/unexpanded"]
rule_allows_failure:
  rules:
    - if: $TARGET =~ /^stag/
      allow_failure: true
  script: [exit 7]
""",
    [],
)

excluded_need_dag = pipeline_dag(
    "ci_excluded_need",
    """
maybe:
  stage: build
  rules:
    - if: $BUILD == "yes"
  script: ["true"]
needs_it:
  needs: [maybe]
  script: [touch "$OUT/needs_it"]
optional_need:
  needs: [{job: maybe, optional: true}]
  script: [touch "$OUT/optional_need"]
""",
    [("maybe", "needs_it"), ("maybe", "optional_need")],
)
