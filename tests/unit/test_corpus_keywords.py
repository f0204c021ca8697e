"""What real ``.gitlab-ci.yml`` files use and GitLab accepts, through the real loader (issue 12).

Booleans and floats in ``variables`` (``SimpleVariable``: any scalar, Ruby ``to_s``), ``needs`` and
``dependencies`` naming one ``parallel`` instance (``Config::Normalizer`` expands them before the
needs are checked), and ``type:``, the deprecated alias of ``stage:`` (``entry/job.rb``).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from airflow_ci_vars.pipeline.expressions import evaluate_rules
from airflow_ci_vars.pipeline.model import Pipeline, PipelineInvalidError, load_pipeline


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
    outcome = evaluate_rules(build.rules, {"CI_COMMIT_BRANCH": "main"})
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
