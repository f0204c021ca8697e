"""``airflow-ci-vars run``: build a pipeline's DAG with the factory and run it with ``dag.test()``.

Like gitlab-ci-local, but on the engine that runs it in production: the real operator, the real
variable resolution and masking, an embedded SQLite metadata DB in a private ``AIRFLOW_HOME``
when none is configured. Airflow is imported only after the environment is set up.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from airflow_ci_vars.errors import CIVarsError

__all__ = ["RUN_DAG_ID", "loader_dag", "run_pipeline"]

RUN_DAG_ID = "airflow_ci_vars_run"
_MIGRATED_MARK = ".airflow-ci-vars-db-migrated"


def _prepare_airflow_home() -> Path:
    """Use the configured ``AIRFLOW_HOME``, or a private one with an SQLite database."""
    home = os.environ.get("AIRFLOW_HOME")
    if not home:
        home = str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "airflow-ci-vars" / "airflow")
        os.environ["AIRFLOW_HOME"] = home
        os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home}/airflow.db")
    Path(home).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    return Path(home)


def _migrate(home: Path) -> None:
    mark = home / _MIGRATED_MARK
    conn = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    if mark.exists() and mark.read_text() == conn:
        return
    airflow = Path(sys.executable).parent / "airflow"
    proc = subprocess.run(
        [str(airflow), "db", "migrate"], capture_output=True, text=True, check=False, env=os.environ.copy()
    )
    if proc.returncode != 0:
        raise CIVarsError(f"airflow db migrate failed:\n{proc.stderr[-2000:]}")
    mark.write_text(conn)


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send everything Airflow prints to stderr, so stdout carries only the job output."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


@contextlib.contextmanager
def _local_user() -> Iterator[None]:
    """Runs started here act for the local user, who holds the pipeline and the settings file:
    trusted, as gitlab-ci-local's user is (docs/security.md)."""
    from airflow_ci_vars.auth import LOCAL_RUN_ENV

    saved = os.environ.get(LOCAL_RUN_ENV)
    os.environ[LOCAL_RUN_ENV] = "1"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(LOCAL_RUN_ENV, None)
        else:
            os.environ[LOCAL_RUN_ENV] = saved


def _stored_seed(settings: str, project: str | None, ref: str) -> dict[str, str]:
    """Instance, group and project variables (``*`` scope) that include rules and locations see."""
    from airflow_ci_vars.settings import load_settings
    from airflow_ci_vars.variables.scopes import matches_environment_scope

    loaded = load_settings(settings)
    protected = loaded.access(project).is_protected(ref)
    layers = loaded.layers_for(project)
    out: dict[str, str] = {}
    ordered = list(layers["instance"])
    for group_vars in dict(layers["groups"]).values():
        ordered += list(group_vars)
    ordered += list(layers["project"])
    for v in ordered:
        if (protected or not v.protected) and matches_environment_scope(v.environment_scope, None):
            out[v.key] = v.value
    return out


def loader_dag(params: dict[str, Any]) -> Any:
    """Build the DAG described by ``params`` (used by the generated DAG file)."""
    from airflow_ci_vars.dag_factory import build_dag
    from airflow_ci_vars.pipeline.model import load_pipeline, select_jobs

    file = Path(params["file"])
    pipeline = load_pipeline(file, seed=params.get("seed") or {})
    pipeline = select_jobs(pipeline, params["jobs"], with_needs=params["needs"])
    return build_dag(
        pipeline,
        dag_id=RUN_DAG_ID,
        project=params["project"],
        project_dir=file.parent,
        settings=params["settings"],
    )


def run_pipeline(
    file: str,
    *,
    jobs: Sequence[str] = (),
    needs: bool = False,
    variables: Sequence[str] = (),
    settings: str | None = None,
    project: str | None = None,
    ref: str | None = None,
    manual: Sequence[str] = (),
    output: str = "text",
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run the pipeline in ``file``; return 0 if and only if it succeeded."""
    out = out or sys.stdout
    err = err or sys.stderr
    path = Path(file).resolve()
    conf_variables: dict[str, str] = {}
    for item in variables:
        key, sep, value = item.partition("=")
        if not sep:
            err.write(f"--variable {item!r}: expected KEY=VALUE\n")
            return 2
        conf_variables[key] = value

    # Validate before starting Airflow: errors as file:line:col: message.
    from airflow_ci_vars.pipeline.model import PipelineInvalidError, load_pipeline, select_jobs
    from airflow_ci_vars.pipeline.seed import seed_variables

    if settings and not project:
        from airflow_ci_vars.settings import load_settings

        project = load_settings(settings).project
    seen = seed_variables(ref=ref or "main", project=project, pipeline=conf_variables)
    if settings:
        seen = {**_stored_seed(settings, project, ref or "main"), **seen}
    try:
        pipeline = load_pipeline(path, seed=seen)
        select_jobs(pipeline, jobs, with_needs=needs)
    except PipelineInvalidError as error:
        for problem in error.problems:
            err.write(f"{problem}\n")
        return 1
    except (CIVarsError, KeyError) as error:
        err.write(f"{error}\n")
        return 1

    home = _prepare_airflow_home()
    with tempfile.TemporaryDirectory(prefix="airflow-ci-vars-run-") as tmp:
        dags = Path(tmp) / "dags"
        dags.mkdir()
        params = {
            "file": str(path),
            "seed": seen,
            "jobs": list(jobs),
            "needs": needs,
            "settings": str(Path(settings).resolve()) if settings else None,
            "project": project,
        }
        loader = dags / "pipeline.py"
        loader.write_text(
            "# airflow DAG generated by airflow-ci-vars run\n"
            "import json\n"
            "from airflow_ci_vars.local_run import loader_dag\n"
            f"dag = loader_dag(json.loads({json.dumps(params)!r}))\n"
        )
        records = Path(tmp) / "output.jsonl"
        records.touch()
        os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags)
        os.environ["AIRFLOW_CI_VARS_RUN_OUTPUT"] = str(records)
        conf: dict[str, Any] = {"variables": conf_variables, "manual": list(manual)}
        if ref:
            conf["ref"] = ref
        with _stdout_to_stderr(), _local_user():
            _migrate(home)
            spec = importlib.util.spec_from_file_location("airflow_ci_vars_run_pipeline", loader)
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            dag_run = module.dag.test(run_conf=conf)
        state = str(getattr(dag_run.state, "value", dag_run.state))
        for line in records.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if output == "jsonl":
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            elif "line" in record:
                out.write(f"{record['job']} > {record['line']}\n")
            else:
                out.write(f"{record['job']}: {record['status']}\n")
        out.flush()
    if state != "success":
        err.write(f"pipeline {state}\n")
        return 1
    return 0
