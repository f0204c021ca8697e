"""GitLab's Run pipeline form as Airflow's trigger form, end to end with ``dag.test()``.

``dags/pipelines/run_form/.gitlab-ci.yml`` has ``spec:inputs`` and two prefilled variables (``LEVEL``,
``MODE``); the variable store (``dags/settings.yml``) gives the project a ``LEVEL`` of its own.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import ParamValidationError
from dag_files import load_dag_file

pytestmark = pytest.mark.airflow


def run_form_dag() -> Any:
    return load_dag_file("ci_run_form.py", "ci_run_form_under_test").run_form


def run(conf: dict[str, Any], out: Path) -> dict[str, str]:
    """Run the DAG with ``conf`` (``OUT`` added as a pipeline variable); task states by task id."""
    variables = {**conf.get("variables", {}), "OUT": str(out)}
    dr = run_form_dag().test(run_conf={**conf, "variables": variables})
    return {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dr.get_task_instances()}


#: What Airflow's trigger form submits when nothing is changed: every param, at its default.
FORM_DEFAULTS = {"target": "staging", "replicas": 2, "release": "v1", "LEVEL": "from-yaml", "MODE": "fast"}


def test_inputs_and_prefilled_variables_are_params_with_their_schema() -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    dag = run_form_dag()
    # PLAIN has no description; the conf keys every pipeline reads follow (section "Pipeline")
    assert list(dag.params)[:5] == ["target", "replicas", "release", "LEVEL", "MODE"]
    assert list(dag.params)[5:] == ["variables", "build_parameters", "ref", "sha", "environment"]
    target = dag.params.get_param("target")
    assert (target.value, target.description) == ("staging", "Where to deploy")
    assert target.schema == {
        "type": "string",
        "section": "Inputs",
        "title": "target",
        "enum": ["staging", "production"],
    }
    assert dag.params.get_param("replicas").schema["type"] == "number"
    mode = dag.params.get_param("MODE")
    assert (mode.value, mode.schema["enum"], mode.schema["section"]) == ("fast", ["fast", "thorough"], "Variables")
    # What the UI's trigger form reads: the serialized DAG keeps the sections.
    serialized = dict(DagSerialization.to_dict(dag)["dag"]["params"])
    assert serialized["LEVEL"]["schema"]["__var"]["section"] == "Variables"


@pytest.mark.parametrize(
    ("conf", "param"),
    [
        ({"target": "qa"}, "target"),  # not one of the input's options
        ({"replicas": "two"}, "replicas"),  # not a number
        ({"MODE": "slow"}, "MODE"),  # not one of the variable's options
    ],
)
def test_an_invalid_value_is_refused_when_the_run_is_created(conf: dict[str, Any], param: str, tmp_path: Path) -> None:
    with pytest.raises(ParamValidationError, match=f"Invalid input for param {param}"):
        run(conf, tmp_path)
    assert not (tmp_path / "deploy.txt").exists()


def test_a_value_not_matching_an_input_regex_fails_the_jobs(tmp_path: Path) -> None:
    # The regex is RE2: Airflow's form (Python's `re`) does not check it; every job does, first.
    states = run({**FORM_DEFAULTS, "release": "1.0"}, tmp_path)
    assert states["deploy"] == "failed"
    assert not (tmp_path / "deploy.txt").exists()


def test_a_prefilled_variable_from_the_form_is_a_pipeline_variable(tmp_path: Path) -> None:
    states = run({**FORM_DEFAULTS, "LEVEL": "from-form", "MODE": "thorough"}, tmp_path)
    assert states["deploy"] == "success"
    # A pipeline variable outranks the project's LEVEL (which outranks the YAML value).
    assert (tmp_path / "deploy.txt").read_text().strip() == "deploy staging x2 v1 LEVEL=from-form MODE=thorough"


def test_a_rest_call_without_the_variable_leaves_the_project_value(tmp_path: Path) -> None:
    run({}, tmp_path)
    assert (tmp_path / "deploy.txt").read_text().strip() == "deploy staging x2 v1 LEVEL=project MODE=fast"


def test_conf_variables_win_over_the_form(tmp_path: Path) -> None:
    run({**FORM_DEFAULTS, "LEVEL": "from-form", "variables": {"LEVEL": "from-api"}}, tmp_path)
    assert "LEVEL=from-api" in (tmp_path / "deploy.txt").read_text()


def test_inputs_given_at_trigger_time_change_the_job(tmp_path: Path) -> None:
    states = run({**FORM_DEFAULTS, "target": "production", "replicas": 3}, tmp_path)
    assert (tmp_path / "deploy.txt").read_text().startswith("deploy production x3 v1 ")
    # The DAG was built with target=staging: that job is not in this run's pipeline.
    assert states["check-staging"] == "skipped" and not (tmp_path / "check-staging").exists()
    assert states["pipeline"] == "success"


def test_conf_inputs_is_the_rest_form_of_inputs(tmp_path: Path) -> None:
    states = run({"inputs": {"replicas": 5, "release": "v7"}}, tmp_path)
    assert (tmp_path / "deploy.txt").read_text().startswith("deploy staging x5 v7 ")
    assert states["check-staging"] == "success"


def test_a_bad_conf_inputs_value_fails_the_jobs(tmp_path: Path) -> None:
    # conf["inputs"] is not a declared param: GitLab's checks run in each job (`provided value is not a number`).
    states = run({"inputs": {"replicas": "many"}}, tmp_path)
    assert states["deploy"] == "failed" and states["pipeline"] == "failed"
    assert not (tmp_path / "deploy.txt").exists()


def test_a_bad_default_is_an_import_error_naming_file_and_line(tmp_path: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    (tmp_path / "p").mkdir()
    (tmp_path / "p/.gitlab-ci.yml").write_text(
        "variables:\n  MODE:\n    value: slow\n    options: [fast, thorough]\n    description: d\nj: {script: [x]}\n"
    )
    (tmp_path / "q").mkdir()
    (tmp_path / "q/.gitlab-ci.yml").write_text(
        "spec:\n  inputs:\n    n: {type: number, default: two}\n---\nj: {script: [x]}\n"
    )
    (tmp_path / "dags.py").write_text(
        textwrap.dedent(
            """
            from pathlib import Path
            from airflow_ci_vars.dag_factory import gitlab_ci_dag
            dag = gitlab_ci_dag(Path(__file__).parent / NAME / ".gitlab-ci.yml", dag_id="bad_" + NAME)
            """
        )
    )
    for name, expected in [
        ("p", "p/.gitlab-ci.yml:2:3: variables:MODE config value must be present in options"),
        ("q", "q/.gitlab-ci.yml:3:23: `n` input: default value is not a number"),  # at `default`,
    ]:
        file = tmp_path / f"dag_{name}.py"
        file.write_text(f"NAME = {name!r}\n" + (tmp_path / "dags.py").read_text())
        bag = DagBag(dag_folder=file, safe_mode=False, load_op_links=False)
        assert not bag.dags
        assert expected in str(bag.import_errors[str(file)])
