"""``airflow-ci-vars lint``, ``graph`` and ``explain`` on temporary pipelines and settings files."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_ci_vars.cli import main

GROUP_PASSWORD = "group-pw-8f3kd92"
PROJECT_PASSWORD = "proj-pw-Zq81xLm4"
DEPLOY_TOKEN = "glpat-prodonly7788"
BACKSLASH_SECRET = r"raw\Secret'9x\"q"
SECRETS = (GROUP_PASSWORD, PROJECT_PASSWORD, DEPLOY_TOKEN, BACKSLASH_SECRET)

ETL = """\
variables:
  PIPELINE_NAME: nightly-etl
  OCTAL: 012345

deploy:
  stage: deploy
  environment:
    name: review/$CI_COMMIT_REF_SLUG
  variables:
    LOG_LEVEL: error
    TARGET: "$S3_BUCKET/$PIPELINE_NAME"
    PRICE: "$$5"
    LEAKY: "x:${RAW_SECRET}:y"
  script:
    - echo "deploying $TARGET"
"""

SETTINGS = f"""\
project: acme/data/etl
default_branch: main
protected_refs: [main]
instance:
  variables:
    - {{key: LOG_LEVEL, value: info}}
groups:
  acme:
    variables:
      - {{key: WAREHOUSE_URL, value: "postgres://etl:$DB_PASSWORD@db/warehouse"}}
      - {{key: DB_PASSWORD, value: "{GROUP_PASSWORD}", masked: true}}
      - {{key: LOG_LEVEL, value: warning}}
  acme/data:
    variables:
      - {{key: LOG_LEVEL, value: debug}}
      - {{key: S3_BUCKET, value: acme-data-review, environment_scope: "review/*"}}
      - {{key: S3_BUCKET, value: acme-data-prod, environment_scope: production}}
projects:
  acme/data/etl:
    variables:
      - {{key: DB_PASSWORD, value: "{PROJECT_PASSWORD}", masked: true, hidden: true}}
      - {{key: DEPLOY_TOKEN, value: "{DEPLOY_TOKEN}", masked: true, protected: true}}
      - {{key: RAW_SECRET, value: '{BACKSLASH_SECRET.replace("'", "''")}', masked: true, raw: true}}
      - {{key: GCP_KEY_JSON, value: '{{"type": "service_account"}}', variable_type: file}}
"""

MATRIX = """\
stages: [build, test, deploy]
default:
  image: alpine
build:
  stage: build
  script: make
  services: [postgres]
test:
  parallel:
    matrix:
      - OS: [linux, mac]
  needs: [build]
  script: make test
lint:
  needs: []
  script: lint
deploy:
  stage: deploy
  needs:
    - job: test
      parallel:
        matrix:
          - OS: linux
  when: manual
  script: deploy
"""


NODE = re.compile(r'    ("[^"]+") \[label="(.+)"\];\Z')


@pytest.fixture(autouse=True)
def file_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CIVaultBackend and no [ci_vars] settings_file: --settings picks the file store."""
    monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND", "")
    monkeypatch.delenv("AIRFLOW__CI_VARS__SETTINGS_FILE", raising=False)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def etl(tmp_path: Path) -> tuple[str, str]:
    return write(tmp_path, ".gitlab-ci.yml", ETL), write(tmp_path, "settings.yml", SETTINGS)


# --- lint ------------------------------------------------------------------------------------


def test_lint_valid_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, ".gitlab-ci.yml", ETL)
    assert run(capsys, "lint", path) == (0, f"{path}: valid (1 job in 1 stage)\n", "")


def test_lint_reports_every_error_with_its_location(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path,
        "bad.yml",
        """\
stages: [build, test]

build:
  stage: build
  image: python:3.12
  script: make
  rules:
    - if: '$CI_COMMIT_BRANCH == "main"'
    - if: '$CI_COMMIT_BRANCH ==== "x"'

test:
  stage: tests
  script: pytest
  needs: [compile]

workflow:
  rules:
    - if: '($CI_PIPELINE_SOURCE == "push"'
""",
    )
    code, out, err = run(capsys, "lint", path)
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        f"{path}:5:3: warning: jobs:build:image is ignored: it only configures a GitLab runner",
        f'{path}:9:7: jobs:build:rules:1:if invalid expression `$CI_COMMIT_BRANCH ==== "x"`: '
        "Invalid left operand (at character 18)",
        f"{path}:12:3: test job: chosen stage tests does not exist; available stages are .pre, build, test, .post",
        f"{path}:14:3: test job: undefined need: compile",
        f'{path}:18:7: workflow:rules:0:if invalid expression `($CI_PIPELINE_SOURCE == "push"`: '
        "Unprocessable token found in parse tree: parenthesis_open (at character 0)",
    ]


def test_lint_warnings_only_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, ".gitlab-ci.yml", MATRIX)
    code, out, err = run(capsys, "lint", path)
    assert code == 0
    assert out == f"{path}: valid (5 jobs in 3 stages)\n"
    # default:image is written once: one warning naming the jobs, not one per job.
    assert err.splitlines() == [
        f"{path}:3:3: warning: image is ignored: it only configures a GitLab runner (jobs build, test, lint, deploy)",
        f"{path}:7:3: warning: jobs:build:services is ignored: it only configures a GitLab runner",
    ]


def test_lint_malformed_rules_if_alone_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path,
        "ci.yml",
        "job:\n  script: echo\n  rules:\n    - when: manual\n"
        "    - if: $A =~ /unclosed\n    - if: 5\n    - just-a-string\n",
    )
    code, out, err = run(capsys, "lint", path)
    assert (code, out) == (1, "")
    lines = err.splitlines()
    assert lines[0].startswith(f"{path}:5:7: jobs:job:rules:1:if invalid expression `$A =~ /unclosed`: ")
    assert lines[1:] == [
        f"{path}:6:7: jobs:job:rules:2:if invalid expression `5`: must be a string, but got int",
        f"{path}:7:7: jobs:job:rules:3 config should be a hash",
    ]


def test_lint_rules_from_a_template_are_located_in_the_template(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "templates.yml", ".rules:\n  rules:\n    - if: $A == ==\n")
    path = write(tmp_path, ".gitlab-ci.yml", "include: templates.yml\njob:\n  extends: .rules\n  script: echo\n")
    code, _, err = run(capsys, "lint", path)
    assert code == 1
    assert err.startswith(f"{tmp_path / 'templates.yml'}:3:7: jobs:job:rules:0:if invalid expression `$A == ==`")


def test_lint_malformed_include_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path, "ci.yml", "include:\n  - local: other.yml\n    rules:\n      - if: '$X =='\njob:\n  script: echo\n"
    )
    code, _, err = run(capsys, "lint", path)
    assert code == 1
    assert err == f"{path}:2:5: include:rules:if invalid expression `$X ==`: Invalid left operand (at character 3)\n"


def test_lint_and_graph_evaluate_include_rules_as_the_factory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The seed of a DAG parse: a pipeline on main of the project given to the factory (--project).
    write(tmp_path, "acme.yml", "acme:\n  script: echo\n")
    write(tmp_path, "tagged.yml", ".runner:\n  variables:\n    RUNNER: shared\n")
    path = write(
        tmp_path,
        ".gitlab-ci.yml",
        "include:\n"
        "  - local: tagged.yml\n    rules:\n      - if: $TAGGED_RUNNERS == null && $CI_COMMIT_BRANCH == 'main'\n"
        "  - local: acme.yml\n    rules:\n      - if: $CI_PROJECT_PATH == 'acme/app'\n"
        "job:\n  extends: .runner\n  script: echo\n",
    )
    note = "; include:rules evaluated for a pipeline on main, as the DAG factory does"
    assert run(capsys, "lint", path) == (0, f"{path}: valid (1 job in 1 stage{note})\n", "")
    assert run(capsys, "lint", path, "--project", "acme/app") == (0, f"{path}: valid (2 jobs in 1 stage{note})\n", "")
    code, out, _ = run(capsys, "graph", path, "--project", "acme/app")
    # each job from another file says which; each included file, the include that brought it
    acme, tagged = tmp_path / "acme.yml", tmp_path / "tagged.yml"
    assert (code, out) == (
        0,
        f"test:\n  acme  (from {acme})\n  job\nincluded files:\n"
        f"    {tagged}  <- {path}:2:5 (include:local tagged.yml)\n"
        f"    {acme}  <- {path}:5:5 (include:local acme.yml)\n",
    )
    assert "include:rules are evaluated as the factory" in " ".join(run(capsys, "lint", "--help")[1].split())


def test_lint_yaml_error_and_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "ci.yml", "job:\n  script: [echo\n")
    code, out, err = run(capsys, "lint", path)
    assert (code, out) == (1, "")
    assert err.startswith(f"{path}:2:11: ")
    missing = str(tmp_path / "nope.yml")
    assert run(capsys, "lint", missing) == (1, "", f"{missing}: cannot read the file: No such file or directory\n")


def test_lint_all_model_errors_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path,
        "ci.yml",
        "a:\n  script: echo\n  needs: [b]\nb:\n  script: echo\n  needs: [a]\nc:\n  script: echo\n  when: never\n",
    )
    code, _, err = run(capsys, "lint", path)
    assert code == 1
    assert err.splitlines() == [
        f"{path}:3:3: The pipeline has circular dependencies: a, b",
        f"{path}:9:3: jobs:c when unknown value: never",
    ]


# --- graph -----------------------------------------------------------------------------------


def test_graph_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, ".gitlab-ci.yml", MATRIX)
    code, out, err = run(capsys, "graph", path)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "build:",
        "  build",
        "test:",
        "  test: [linux] <- build",
        "  test: [mac] <- build",
        "  lint <- (none)",
        "deploy:",
        "  deploy <- test: [linux]  (when: manual)",
    ]


def test_graph_dot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, ".gitlab-ci.yml", MATRIX)
    code, out, _ = run(capsys, "graph", path, "--format", "dot")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f'digraph "{path}" {{'
    assert lines[-1] == "}"
    assert '    label="test";' in lines
    assert sum(line.startswith("  subgraph cluster_") for line in lines) == 3
    nodes = {m[2]: m[1] for m in map(NODE.match, lines) if m}  # label -> node id
    assert nodes["test: [linux]"].startswith('"test_linux-')
    assert f'  "build" -> {nodes["test: [linux]"]};' in lines
    assert f'  {nodes["test: [linux]"]} -> "deploy";' in lines
    assert nodes["deploy  (when: manual)"] == '"deploy"'
    edges = [line for line in lines if "->" in line and "invis" not in line]
    assert len(edges) == 3  # build -> both test instances, test: [linux] -> deploy; none for lint


PARENT = """\
build:
  stage: build
  script: [make]
child:
  trigger:
    include: child.yml
    strategy: depend
"""


def test_graph_shows_a_child_pipeline_under_its_trigger_job(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, ".gitlab-ci.yml", PARENT)
    write(tmp_path, "child.yml", "unit:\n  script: [t]\nship:\n  stage: deploy\n  needs: [unit]\n  script: [s]\n")
    code, out, err = run(capsys, "graph", path)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "build:",
        "  build",
        "test:",
        "  child  (trigger)",
        "    child pipeline:",
        "      test:",
        "        unit",
        "      deploy:",
        "        ship <- unit",
        "included files:",
        f"    {tmp_path / 'child.yml'}  <- {path}:4:1 (include:local child.yml)",  # the trigger job
    ]
    code, out, _ = run(capsys, "graph", path, "--format", "dot")
    assert '  "child" -> "child/unit" [style=dashed];' in out.splitlines()
    assert '    "child/unit" -> "child/ship";' in out.splitlines()


def test_lint_checks_child_pipelines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, ".gitlab-ci.yml", PARENT)
    child = write(tmp_path, "child.yml", "unit:\n  image: alpine\n  needs: [missing]\n  script: [t]\n")
    code, _, err = run(capsys, "lint", path)
    assert code == 1
    # The failing child pipeline's warnings are kept too, in file order.
    assert err == (
        f"{child}:2:3: warning: jobs:unit:image is ignored: it only configures a GitLab runner\n"
        f"{child}:3:3: unit job: undefined need: missing\n"
    )


def test_graph_of_an_invalid_file_prints_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "ci.yml", "job:\n  stage: nope\n  script: echo\n")
    code, out, err = run(capsys, "graph", path)
    assert (code, out) == (1, "")
    assert err == (
        f"{path}:2:3: job job: chosen stage nope does not exist; "
        "available stages are .pre, build, test, deploy, .post\n"
    )


# --- explain ---------------------------------------------------------------------------------


def explain(capsys: pytest.CaptureFixture[str], etl: tuple[str, str], *argv: str) -> tuple[int, str, str]:
    path, settings = etl
    code, out, err = run(capsys, "explain", path, "--settings", settings, *argv)
    for secret in SECRETS:
        assert secret not in out + err
        assert secret.replace("\\", "\\\\") not in out + err  # escaped forms (repr, JSON)
    return code, out, err


def test_explain_precedence_and_overrides(etl: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = explain(capsys, etl, "--job", "deploy", "--key", "LOG_LEVEL", "--key", "S3_BUCKET")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "job 'deploy' (stage deploy) of project acme/data/etl, ref main (protected), environment review/main",
        "decision: run (when: on_success, previous jobs success)",
        "",
        "LOG_LEVEL = 'debug'  (group acme/data)",
        "    overridden group acme: 'warning'",
        "    overridden instance: 'info'",
        "    overridden job: 'error'",
        "S3_BUCKET = 'acme-data-review'  (group acme/data) [scope review/*]",
        "    excluded group acme/data: 'acme-data-prod' [scope production] -- "
        "scope 'production' does not match environment 'review/main'",
    ]


def test_explain_every_variable_and_masking(etl: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = explain(capsys, etl, "--job", "deploy")
    assert code == 0
    lines = out.splitlines()
    assert "DB_PASSWORD = [MASKED]  (project acme/data/etl)" in lines
    assert "    overridden group acme: [MASKED]" in lines
    assert "WAREHOUSE_URL = 'postgres://etl:[MASKED]@db/warehouse'  (group acme)" in lines
    assert "DEPLOY_TOKEN = [MASKED]  (project acme/data/etl) [protected]" in lines
    assert "LEAKY = 'x:[MASKED]:y'  (job)" in lines
    assert "TARGET = 'acme-data-review/nightly-etl'  (job)" in lines
    assert "PRICE = '$5'  (job)" in lines
    assert "OCTAL = '5349'  (default)" in lines
    assert "CI_COMMIT_REF_PROTECTED = 'true'  (predefined)" in lines
    assert "CI_ENVIRONMENT_NAME = 'review/main'  (predefined)" in lines
    assert 'GCP_KEY_JSON = \'{"type": "service_account"}\'  (project acme/data/etl) [file]' in lines


def test_explain_unprotected_ref_and_pipeline_variables(
    etl: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = explain(
        capsys,
        etl,
        "--job",
        "deploy",
        "--ref",
        "feature/x",
        "--variable",
        "LOG_LEVEL=trace",
        "--variable",
        "EXTRA=a=b",
        "--key",
        "DEPLOY_TOKEN",
        "--key",
        "LOG_LEVEL",
        "--key",
        "EXTRA",
        "--key",
        "NOPE",
    )
    assert code == 0
    assert out.splitlines() == [
        "job 'deploy' (stage deploy) of project acme/data/etl, ref feature/x (not protected), "
        "environment review/feature-x",
        "decision: run (when: on_success, previous jobs success)",
        "",
        "DEPLOY_TOKEN is not set",
        "    excluded project acme/data/etl: [MASKED] [protected] -- protected variable, ref is not protected",
        "LOG_LEVEL = 'trace'  (pipeline --variable)",
        "    overridden group acme/data: 'debug'",
        "    overridden group acme: 'warning'",
        "    overridden instance: 'info'",
        "    overridden job: 'error'",
        "EXTRA = 'a=b'  (pipeline --variable)",
        "NOPE is not defined in any layer",
    ]


def test_explain_json(etl: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = explain(capsys, etl, "--job", "deploy", "--format", "json", "--ref", "dev")
    assert code == 0
    records = {r["key"]: r for r in json.loads(out)}
    assert records["LOG_LEVEL"] == {
        "key": "LOG_LEVEL",
        "value": "debug",
        "source": "group acme/data",
        "variable_type": "env_var",
        "overridden": [
            {"source": "group acme", "value": "warning"},
            {"source": "instance", "value": "info"},
            {"source": "job", "value": "error"},
        ],
        "excluded": [],
    }
    assert records["DB_PASSWORD"]["value"] == "[MASKED]"
    assert records["DB_PASSWORD"]["overridden"] == [{"source": "group acme", "value": "[MASKED]"}]
    assert records["WAREHOUSE_URL"]["value"] == "postgres://etl:[MASKED]@db/warehouse"
    assert records["DEPLOY_TOKEN"] == {
        "key": "DEPLOY_TOKEN",
        "value": None,
        "source": None,
        "variable_type": None,
        "overridden": [],
        "excluded": [
            {
                "source": "project acme/data/etl",
                "value": "[MASKED]",
                "reason": "protected variable, ref is not protected",
            }
        ],
    }
    assert records["GCP_KEY_JSON"]["variable_type"] == "file"
    assert next(iter(records)) == "CI_SERVER"  # environment order, predefined first


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_explain_environment_only(etl: tuple[str, str], capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    code, out, _ = explain(capsys, etl, "--job", "deploy", "--environment-only", "--format", fmt)
    assert code == 0
    env = json.loads(out) if fmt == "json" else dict(line.split("=", 1) for line in out.splitlines())
    assert env["DB_PASSWORD"] == "[MASKED]"
    assert env["LEAKY"] == "x:[MASKED]:y"
    assert env["GCP_KEY_JSON"].endswith("/GCP_KEY_JSON")  # a file variable holds its path
    assert env["LOG_LEVEL"] == "debug"
    assert "DEPLOY_TOKEN" in env


@pytest.mark.parametrize(
    "argv",
    [
        ["--job", "deploy"],
        ["--job", "deploy", "--format", "json"],
        ["--job", "deploy", "--ref", "feature/x"],
        ["--job", "deploy", "--ref", "feature/x", "--format", "json"],
        ["--job", "deploy", "--environment-only"],
        ["--job", "deploy", "--key", "DB_PASSWORD", "--key", "RAW_SECRET", "--key", "LEAKY"],
        ["--job", "deploy", "--project", "other/project"],
    ],
)
def test_explain_never_prints_a_masked_value(
    etl: tuple[str, str], capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, _ = explain(capsys, etl, *argv)  # explain() checks every secret and its escaped forms
    assert code == 0
    assert out


def test_explain_parallel_and_matrix_jobs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, ".gitlab-ci.yml", MATRIX + "unit:\n  parallel: 2\n  script: t\n")
    settings = write(tmp_path, "settings.yml", "project: g/p\n")
    code, out, err = run(capsys, "explain", path, "--settings", settings, "--job", "test")
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        f"{path}: 'test' is a parallel job with 2 instances; pass one of them to --job:",
        "  test: [linux]",
        "  test: [mac]",
    ]
    code, out, _ = run(capsys, "explain", path, "--settings", settings, "--job", "test: [mac]", "--key", "OS")
    assert code == 0
    assert "OS = 'mac'  (job parallel:matrix)" in out.splitlines()
    argv = ["explain", path, "--settings", settings, "--job", "unit 2/2", "--format", "json"]
    code, out, _ = run(capsys, *argv, "--key", "CI_NODE_INDEX", "--key", "CI_NODE_TOTAL")
    assert code == 0
    assert [(r["key"], r["value"]) for r in json.loads(out)] == [("CI_NODE_INDEX", "2"), ("CI_NODE_TOTAL", "2")]


def test_explain_unknown_job(etl: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = etl
    code, out, err = explain(capsys, etl, "--job", "deplyo")
    assert (code, out) == (1, "")
    assert err == f"{path}: no job 'deplyo' (did you mean 'deploy'?); jobs: deploy\n"


def test_explain_bad_pipeline_variables(etl: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = explain(capsys, etl, "--job", "deploy", "--variable", "bad key=s3cr3t-value")
    assert (code, out) == (1, "")
    assert "Key can contain only letters, digits and '_'" in err
    assert "s3cr3t-value" not in err
    code, _, err = explain(capsys, etl, "--job", "deploy", "--variable", "A=1", "--variable", "A=2")
    assert code == 1
    assert "Duplicate variable name: A" in err
    code, _, err = explain(capsys, etl, "--job", "deploy", "--variable", "NOVALUE")
    assert code == 2
    assert "expected KEY=VALUE" in err


def test_explain_rules_and_workflow_variables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path,
        ".gitlab-ci.yml",
        """\
variables:
  DEPLOY_VARIABLE: default-deploy
workflow:
  rules:
    - if: $CI_COMMIT_REF_NAME == $CI_DEFAULT_BRANCH
      variables:
        DEPLOY_VARIABLE: deploy-production
    - when: always
job1:
  variables:
    DEPLOY_VARIABLE: job1-default-deploy
  rules:
    - if: $CI_COMMIT_REF_NAME == $CI_DEFAULT_BRANCH
      variables:
        DEPLOY_VARIABLE: job1-deploy-production
    - when: on_success
  script: echo
job2:
  script: echo
job3:
  rules:
    - if: $NOPE
  script: echo
""",
    )
    settings = write(tmp_path, "settings.yml", "project: g/p\n")

    def value(job: str, ref: str) -> tuple[str, str]:
        argv = ["explain", path, "--settings", settings, "--job", job, "--ref", ref, "--format", "json"]
        code, out, err = run(capsys, *argv, "--key", "DEPLOY_VARIABLE")
        assert code == 0, err
        record = json.loads(out)[0]
        return record["value"], record["source"]

    # GitLab's documented example (workflow:rules:variables).
    assert value("job1", "main") == ("job1-deploy-production", "job rules")
    assert value("job2", "main") == ("deploy-production", "default workflow:rules")
    assert value("job1", "dev") == ("job1-default-deploy", "job")
    assert value("job2", "dev") == ("default-deploy", "default")
    code, _, err = run(capsys, "explain", path, "--settings", settings, "--job", "job3")
    assert code == 0
    assert err == "note: rules: GitLab would not add 'job3' to a pipeline on ref 'main'; shown as if it ran\n"


def test_explain_notes_dotenv_and_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path,
        ".gitlab-ci.yml",
        """\
build:
  stage: build
  script: make
  artifacts: {reports: {dotenv: build.env}}
deploy:
  stage: deploy
  script: deploy
  secrets:
    TOKEN:
      vault: ci/token@kv
""",
    )
    settings = write(tmp_path, "settings.yml", "project: g/p\n")
    code, out, err = run(capsys, "explain", path, "--settings", settings, "--job", "deploy", "--key", "TOKEN")
    assert code == 0
    assert err.splitlines() == [
        "note: dotenv variables from build are only known at run time: not shown",
        "note: secrets: are read from Vault at run time: shown as [MASKED], not read",
    ]
    assert out.splitlines()[-1] == "TOKEN = [MASKED]  (secrets ci/token@kv) [raw] [file]"


def test_explain_invalid_pipeline_or_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "ci.yml", "job:\n  script: echo\n  rules:\n    - if: $A ==\n")
    settings = write(tmp_path, "settings.yml", "project: g/p\n")
    code, out, err = run(capsys, "explain", path, "--settings", settings, "--job", "job")
    assert (code, out) == (1, "")
    assert err.startswith(f"{path}:4:7: jobs:job:rules:0:if invalid expression `$A ==`")
    good = write(tmp_path, "good.yml", "job:\n  script: echo\n")
    missing = str(tmp_path / "missing.yml")
    code, out, err = run(capsys, "explain", good, "--settings", missing, "--job", "job")
    assert (code, out) == (1, "")
    assert err == f"{missing}: settings file not found\n"


def test_explain_circular_reference(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "ci.yml", "job:\n  variables: {A: $B, B: $A}\n  script: echo\n")
    settings = write(tmp_path, "settings.yml", "project: g/p\n")
    code, out, err = run(capsys, "explain", path, "--settings", settings, "--job", "job")
    assert (code, out) == (1, "")
    assert err.startswith(f"{path}: jobs:job: circular variable reference detected")


# --- help and imports ------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["lint", "graph", "explain"])
def test_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"]) == 0
    assert f"usage: airflow-ci-vars {command}" in capsys.readouterr().out


def test_lint_and_graph_never_import_airflow(tmp_path: Path) -> None:
    path = write(tmp_path, ".gitlab-ci.yml", MATRIX)
    code = (
        "import sys; from airflow_ci_vars.cli import main; "
        f"rc = main(['lint', {path!r}]) + main(['graph', {path!r}, '--format', 'dot']); "
        "sys.exit(10 + rc if any(m == 'airflow' or m.startswith('airflow.') for m in sys.modules) else rc)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
