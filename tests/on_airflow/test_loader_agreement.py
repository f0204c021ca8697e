"""``lint``/``graph`` and the DAG factory load a pipeline the same way (one loader).

Every ``.gitlab-ci.yml``-style pipeline under ``tests/``, ``example_dags/`` and ``examples/`` goes
through the factory (``gitlab_ci_dag``: a real Airflow DAG) and through the real CLI entry
(``airflow_ci_vars.cli.main``): both accept it or both refuse it with the same errors, and the
DAG's jobs are the jobs ``graph`` shows. Then the three cases where they used to disagree, and
``run`` refusing a file with the errors ``lint`` prints.
"""

from __future__ import annotations

import collections
import io
import textwrap
from pathlib import Path

import pytest
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

from airflow_ci_vars.cli import main
from airflow_ci_vars.dag_factory import PipelineStatusOperator, gitlab_ci_dag
from airflow_ci_vars.errors import CIVarsError, PipelineError
from airflow_ci_vars.local_run import run_pipeline
from airflow_ci_vars.operators.child_pipeline import ChildPipelineOperator
from airflow_ci_vars.pipeline.model import PipelineInvalidError

pytestmark = pytest.mark.airflow

ROOT = Path(__file__).resolve().parents[2]
PIPELINES = sorted(
    path
    for folder in ("tests", "example_dags", "examples")
    for path in (ROOT / folder).rglob("*.yml")
    if "gitlab-ci" in path.name  # .gitlab-ci.yml, and the fixtures' .gitlab-ci-<case>.yml
)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def factory(path: Path) -> DAG | CIVarsError:
    """The factory's DAG of ``path``, or the error it refuses the file with."""
    try:
        dag = gitlab_ci_dag(path, dag_id="agreement")
    except CIVarsError as err:
        return err
    assert dag is not None
    return dag


def dag_jobs(dag: DAG) -> collections.Counter[str]:
    """The job names of a factory DAG (child pipelines' included): no stage gates, no status tasks."""
    return collections.Counter(
        task.task_display_name
        for task in dag.tasks
        if not isinstance(task, (EmptyOperator, PipelineStatusOperator))
        and not (isinstance(task, ChildPipelineOperator) and not task.counts_as_job)
    )


def graph_jobs(text: str) -> collections.Counter[str]:
    """The job names ``graph`` prints: a job line is indented 2 past its stage (children 6 deeper)."""
    names: collections.Counter[str] = collections.Counter()
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip(" "))
        if indent % 6 == 2:
            names[line.strip().split(" <- ")[0].split("  (")[0]] += 1
    return names


def refused_with(error: CIVarsError) -> list[str]:
    """The lines the factory's error reports (every problem of the pipeline)."""
    if isinstance(error, PipelineInvalidError):
        return sorted({str(p) for p in error.problems})
    assert isinstance(error, PipelineError), error
    return [str(error)]


def test_the_corpus_is_found() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in PIPELINES}
    assert "example_dags/pipelines/etl/.gitlab-ci.yml" in names
    assert "tests/on_airflow/dags/pipelines/parent/.gitlab-ci.yml" in names
    assert len(PIPELINES) > 150


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_factory_and_lint_and_graph_agree(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    built = factory(path)
    lint_code, lint_out, lint_err = cli(capsys, "lint", str(path))
    graph_code, graph_out, graph_err = cli(capsys, "graph", str(path))
    errors = sorted({line for line in lint_err.splitlines() if ": warning: " not in line})
    if isinstance(built, CIVarsError):
        assert (lint_code, graph_code) == (1, 1), lint_out
        assert errors == refused_with(built)  # lint prints what the factory refuses, nothing else
        assert sorted(set(graph_err.splitlines())) == errors
        return
    assert (lint_code, graph_code) == (0, 0), lint_err
    assert errors == []
    assert lint_out.startswith(f"{path}: valid (")
    assert graph_jobs(graph_out) == dag_jobs(built)


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder / ".gitlab-ci.yml"


def test_include_rules_exists_gives_the_same_jobs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path,
        {
            ".gitlab-ci.yml": """\
                include:
                  - local: extra.yml
                    rules:
                      - exists: [extra.yml]
                build:
                  script: [make]
                """,
            "extra.yml": "extra:\n  script: [make extra]\n",
        },
    )
    dag = factory(path)
    assert isinstance(dag, DAG)
    assert dag_jobs(dag) == {"build": 1, "extra": 1}
    code, out, _ = cli(capsys, "lint", str(path))
    assert (code, out) == (0, f"{path}: valid (2 jobs in 1 stage{FACTORY_NOTE})\n")
    code, out, _ = cli(capsys, "graph", str(path))
    assert (code, graph_jobs(out)) == (0, {"build": 1, "extra": 1})


FACTORY_NOTE = "; include:rules evaluated for a pipeline on main, as the DAG factory does"


def test_the_factory_refuses_a_malformed_rules_if_as_lint_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, {".gitlab-ci.yml": "job:\n  script: [make]\n  rules:\n    - if: '$X == \"a\" &&'\n"})
    refused = factory(path)
    assert isinstance(refused, PipelineInvalidError)
    [problem] = refused.problems
    assert str(problem).startswith(f'{path}:4:7: jobs:job:rules:0:if invalid expression `$X == "a" &&`: ')
    code, _, err = cli(capsys, "lint", str(path))
    assert (code, err) == (1, f"{problem}\n")


def test_lint_evaluates_include_rules_if_on_the_seed_variables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `$TAGGED_RUNNERS == null` holds for an unset variable (GitLab): the template is included.
    path = write(
        tmp_path,
        {
            ".gitlab-ci.yml": """\
                include:
                  - local: untagged.yml
                    rules:
                      - if: $TAGGED_RUNNERS == null
                  - local: never.yml
                    rules:
                      - if: $CI_COMMIT_BRANCH != "main"
                job:
                  extends: .runner
                  script: [make]
                """,
            "untagged.yml": ".runner:\n  variables:\n    RUNNER: shared\n",
            "never.yml": "not-on-main:\n  script: [make]\n",
        },
    )
    dag = factory(path)
    assert isinstance(dag, DAG)
    assert dag_jobs(dag) == {"job": 1}
    code, out, err = cli(capsys, "lint", str(path))
    assert (code, out, err) == (0, f"{path}: valid (1 job in 1 stage{FACTORY_NOTE})\n", "")
    code, out, _ = cli(capsys, "graph", str(path))
    assert (code, graph_jobs(out)) == (0, {"job": 1})


def test_run_refuses_with_the_errors_lint_prints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "job:\n  image: alpine\n  script: [x]\n  rules: [{if: '$X &&'}]\nother:\n  needs: [nope]\n  script: [x]\n"
    path = write(tmp_path, {".gitlab-ci.yml": text})
    out, err = io.StringIO(), io.StringIO()
    assert run_pipeline(str(path), out=out, err=err) == 1
    code, _, lint_err = cli(capsys, "lint", str(path))
    assert code == 1
    errors = [line for line in lint_err.splitlines() if ": warning: " not in line]
    assert len(errors) == 2
    assert (out.getvalue(), err.getvalue().splitlines()) == ("", errors)


def test_the_factory_logs_the_warnings_lint_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, {".gitlab-ci.yml": "default:\n  image: alpine\na:\n  script: [x]\nb:\n  script: [x]\n"})
    with caplog.at_level("WARNING", logger="airflow_ci_vars.dag_factory"):
        assert isinstance(factory(path), DAG)
    logged = [r.getMessage() for r in caplog.records if r.name == "airflow_ci_vars.dag_factory"]
    code, _, err = cli(capsys, "lint", str(path))
    assert code == 0
    assert (
        logged
        == err.splitlines()
        == [f"{path}:2:3: warning: image is ignored: it only configures a GitLab runner (jobs a, b)"]
    )


def test_in_containers_neither_the_factory_nor_lint_warns_about_image(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW__CI_VARS__ISOLATION", "docker")
    monkeypatch.setenv("AIRFLOW__CI_VARS__PARSE_CACHE_DIR", str(tmp_path / "parse-cache"))
    ci = "default:\n  image: alpine\na:\n  services: [postgres:16]\n  cache: {paths: [x]}\n  script: [x]\n"
    path = write(tmp_path, {".gitlab-ci.yml": ci})
    with caplog.at_level("WARNING", logger="airflow_ci_vars.dag_factory"):
        assert isinstance(factory(path), DAG)
    logged = [r.getMessage() for r in caplog.records if r.name == "airflow_ci_vars.dag_factory"]
    code, _, err = cli(capsys, "lint", str(path))
    assert code == 0
    assert (
        logged
        == err.splitlines()
        == [f"{path}:5:3: warning: jobs:a:cache is ignored: it only configures a GitLab runner"]
    )
    monkeypatch.setenv("AIRFLOW__CI_VARS__ISOLATION", "none")  # the same file, another mode: not the cached entry
    caplog.clear()
    with caplog.at_level("WARNING", logger="airflow_ci_vars.dag_factory"):
        assert isinstance(factory(path), DAG)
    assert len([r for r in caplog.records if r.name == "airflow_ci_vars.dag_factory"]) == 3
