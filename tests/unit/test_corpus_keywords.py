"""What real ``.gitlab-ci.yml`` files use and GitLab accepts, through the real loader (issue 12).

Booleans and floats in ``variables`` (``SimpleVariable``: any scalar, Ruby ``to_s``), ``needs`` and
``dependencies`` naming one ``parallel`` instance (``Config::Normalizer`` expands them before the
needs are checked), and ``type:``, the deprecated alias of ``stage:`` (``entry/job.rb``).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from airflow_ci_vars.jobs import JobSpec
from airflow_ci_vars.pipeline.expressions import evaluate_rules
from airflow_ci_vars.pipeline.loader import load_pipeline
from airflow_ci_vars.pipeline.model import Pipeline, PipelineInvalidError


def load(tmp_path: Path, text: str, **files: str) -> Pipeline:
    for name, body in files.items():
        (tmp_path / name).write_text(textwrap.dedent(body))
    ci = tmp_path / ".gitlab-ci.yml"
    ci.write_text(textwrap.dedent(text))
    return load_pipeline(ci)


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(PipelineInvalidError) as err:
        load(tmp_path, text)
    return [str(p) for p in err.value.problems]


def values(variables: object) -> dict[str, str]:
    return {v.key: v.value for v in variables or ()}  # type: ignore[attr-defined]


# --- booleans and floats in variables ---------------------------------------------------------


def test_boolean_and_float_variables_are_stringified_everywhere(tmp_path: Path) -> None:
    pipeline = load(
        tmp_path,
        """
        variables:
          DEBUG: true
          RATIO: 1.5
          WHOLE: 1.0
          HUGE: 1.0e+20
          NOT_A_FLOAT: 1e3
          DESCRIBED: {value: false, description: "a flag"}
        workflow:
          rules:
            - if: $CI_COMMIT_BRANCH
              variables: {WF_FLAG: false, WF_RATIO: 0.5}
        build:
          variables: {STRIP: off, LEVEL: 2.0}
          rules:
            - if: $CI_COMMIT_BRANCH
              variables: {RULE_FLAG: yes, RULE_RATIO: 2.25}
          script: [echo]
        child:
          stage: deploy
          variables: {FORWARDED: on}
          trigger:
            include: child.yml
        """,
        **{"child.yml": "c:\n  variables: {CHILD_FLAG: true}\n  script: [echo]\n"},
    )
    assert values(pipeline.variables) == {
        "DEBUG": "true",
        "RATIO": "1.5",
        "WHOLE": "1.0",
        "HUGE": "1.0e+20",
        "NOT_A_FLOAT": "1e3",  # Psych needs a dot in a float: a string
        "DESCRIBED": "false",
    }
    build = pipeline.job("build")
    assert values(build.spec.variables) == {"STRIP": "false", "LEVEL": "2.0"}
    assert values(pipeline.job("child").spec.variables) == {"FORWARDED": "true"}
    assert values(pipeline.children["child"].job("c").spec.variables) == {"CHILD_FLAG": "true"}
    # rules:variables and workflow:rules:variables reach the run as GitLab's strings.
    outcome = evaluate_rules(build.spec.rules, {"CI_COMMIT_BRANCH": "main"})
    assert outcome is not None and dict(outcome.variables) == {"RULE_FLAG": "true", "RULE_RATIO": "2.25"}
    workflow = evaluate_rules(pipeline.workflow_rules, {"CI_COMMIT_BRANCH": "main"}, job_when="always")
    assert workflow is not None and dict(workflow.variables) == {"WF_FLAG": "false", "WF_RATIO": "0.5"}


@pytest.mark.parametrize(
    ("block", "where", "key"),
    [
        ("variables:\n  LIST: [a, b]\nj: {script: [x]}\n", "2:3", "LIST"),
        ("j:\n  script: [x]\n  variables:\n    NESTED: {value: {a: 1}}\n", "4:5", "NESTED"),
        ("j:\n  script: [x]\n  variables:\n    V: [1]\n", "4:5", "V"),
    ],
)
def test_a_list_or_mapping_value_keeps_its_located_error(tmp_path: Path, block: str, where: str, key: str) -> None:
    # Reported once, at the key (a top-level one is not repeated for every job inheriting it).
    assert problems(tmp_path, block) == [
        f"{tmp_path / '.gitlab-ci.yml'}:{where}: variables:{key} variable definition must be either a string or a hash"
    ]


# --- needs and dependencies naming one parallel instance ---------------------------------------

MATRIX = """
stages: [build, test]
build-win:
  stage: build
  parallel:
    matrix:
      - TARGET: [x86_64-w64-mingw32, i686-w64-mingw32]
  script: [echo]
"""


def test_needs_and_dependencies_name_one_matrix_instance(tmp_path: Path) -> None:
    pipeline = load(
        tmp_path,
        MATRIX
        + """
package:
  stage: test
  needs: ["build-win: [x86_64-w64-mingw32]"]
  dependencies: ["build-win: [x86_64-w64-mingw32]"]
  script: [echo]
numbered:
  stage: build
  parallel: 2
  script: [echo]
second:
  stage: test
  needs: [{job: "numbered 2/2", artifacts: false}]
  script: [echo]
""",
    )
    package = pipeline.job("package").spec
    assert [n.job for n in package.needs or ()] == ["build-win: [x86_64-w64-mingw32]"]
    assert package.dependencies == ("build-win: [x86_64-w64-mingw32]",)
    (need,) = pipeline.job("second").spec.needs or ()
    assert need.job == "numbered 2/2" and not need.artifacts


@pytest.mark.parametrize(
    ("consumer", "message"),
    [
        ('needs: ["build-win: [arm64]"]', "package job: undefined need: build-win: [arm64]"),
        ('dependencies: ["build-win: [arm64]"]', "package job: undefined dependency: build-win: [arm64]"),
        (
            'needs: [{job: "build-win: [i686-w64-mingw32]", parallel: {matrix: [{TARGET: a}]}}]',
            "package job: need build-win: [i686-w64-mingw32] uses parallel:matrix, "
            "but build-win: [i686-w64-mingw32] has no parallel:matrix",
        ),
    ],
)
def test_an_instance_that_does_not_exist_is_a_located_error(tmp_path: Path, consumer: str, message: str) -> None:
    (problem,) = problems(tmp_path, MATRIX + f"package:\n  stage: test\n  {consumer}\n  script: [echo]\n")
    assert problem == f"{tmp_path / '.gitlab-ci.yml'}:11:3: {message}"


def test_an_optional_need_on_a_missing_instance_is_dropped(tmp_path: Path) -> None:
    pipeline = load(
        tmp_path,
        MATRIX + 'package:\n  stage: test\n  needs: [{job: "build-win: [arm64]", optional: true}]\n  script: [echo]\n',
    )
    assert pipeline.job("package").spec.needs == ()


def test_a_need_on_an_instance_of_a_later_stage_is_refused(tmp_path: Path) -> None:
    text = MATRIX.replace("stage: build", "stage: test") + (
        'package:\n  stage: build\n  needs: ["build-win: [i686-w64-mingw32]"]\n  script: [echo]\n'
    )
    assert problems(tmp_path, text) == [
        f"{tmp_path / '.gitlab-ci.yml'}:11:3: package job: need build-win is not defined in current or prior stages"
    ]


# --- type:, the deprecated alias of stage: ----------------------------------------------------


def test_type_is_the_stage_of_a_job(tmp_path: Path) -> None:
    pipeline = load(
        tmp_path,
        """
        stages: [build, test, deploy]
        .template: {type: deploy}
        compile: {type: build, script: [echo]}
        both: {type: build, stage: deploy, script: [echo]}
        nulled: {type: build, stage: null, script: [echo]}
        inherited: {extends: .template, script: [echo]}
        overridden: {extends: .template, stage: test, script: [echo]}
        plain: {script: [echo]}
        """,
    )
    stages = {j.name: (j.stage, j.stage_index) for j in pipeline.jobs}
    assert stages == {
        "compile": ("build", 1),
        "both": ("deploy", 3),  # stage: wins over type: (entry/job.rb compose!)
        "nulled": ("build", 1),  # a null stage: is not specified
        "inherited": ("deploy", 3),
        "overridden": ("test", 2),
        "plain": ("test", 2),
    }
    assert not pipeline.warnings  # GitLab does not warn about type:


def test_a_type_naming_an_unknown_stage_is_located_at_type(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, "stages: [build]\njob:\n  script: [echo]\n  type: lint\n")
    assert problem == (
        f"{tmp_path / '.gitlab-ci.yml'}:4:3: job job: chosen stage lint does not exist; "
        "available stages are .pre, build, .post"
    )


def test_type_is_not_a_key_of_a_trigger_job(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, "a: {script: [echo]}\nt: {type: test, trigger: acme/other}\n")
    assert problem.endswith("jobs:t config contains unknown keys: type")


def test_a_hand_written_job_reads_type_as_the_loader_does() -> None:
    assert JobSpec.from_yaml("j", {"script": "x", "type": "build"}).stage == "build"
    assert JobSpec.from_yaml("j", {"script": "x", "type": "build", "stage": "deploy"}).stage == "deploy"
    assert JobSpec.from_yaml("j", {"script": "x", "stage": None}).stage == "test"
