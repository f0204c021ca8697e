"""How Airflow's parses of a factory DAG file go: the parse cache across processes, the parsing context.

Each parse runs in a fresh process, as Airflow's dag-processor and task runner do: a ``BundleDagBag``
over ``dags/ci_factory.py`` (the task runner's own call), inside Airflow's parsing-context manager
when a task start is simulated (it sets ``_AIRFLOW_PARSING_CONTEXT_DAG_ID`` and never unsets it, so
it must not run in the test process).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dag_files import DAGS, load_dag_file

from airflow_ci_vars.dag_factory import gitlab_ci_dag
from airflow_ci_vars.include_settings import include_sources
from airflow_ci_vars.pipeline.cache import ParseCache
from airflow_ci_vars.pipeline.seed import seed_variables

pytestmark = pytest.mark.airflow

FAILING = DAGS / "pipelines/failing/.gitlab-ci.yml"  # dags/ci_factory.py: dag_id="factory_failing", no project
SEED = seed_variables(ref="main", project=None)

_PARSE = """
import json, sys
from airflow.dag_processing.dagbag import BundleDagBag
from airflow.sdk.definitions._internal.dag_parsing_context import _airflow_parsing_context_manager

folder, dag_id, task_id = sys.argv[1], sys.argv[2] or None, sys.argv[3] or None
with _airflow_parsing_context_manager(dag_id=dag_id, task_id=task_id):
    bag = BundleDagBag(
        dag_folder=folder + "/ci_factory.py", safe_mode=False, load_op_links=False,
        bundle_path=folder, bundle_name="dags-folder",
    )
print(json.dumps({
    "tasks": {d: sorted(dag.task_ids) for d, dag in bag.dags.items()},
    "errors": {f: str(e) for f, e in bag.import_errors.items()},
}))
"""


def parse_in_fresh_process(cache_dir: Path, *, dag_id: str = "", task_id: str = "") -> dict[str, Any]:
    """Parse ``dags/ci_factory.py`` as a task start for ``dag_id`` would (no id: as the dag-processor)."""
    env = {**os.environ, "AIRFLOW__CI_VARS__PARSE_CACHE_DIR": str(cache_dir)}
    env.pop("_AIRFLOW_PARSING_CONTEXT_DAG_ID", None)
    env.pop("_AIRFLOW_PARSING_CONTEXT_TASK_ID", None)
    proc = subprocess.run(
        [sys.executable, "-c", _PARSE, str(DAGS), dag_id, task_id],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["errors"] == {}
    return result


def deployment_cache(directory: Path) -> ParseCache:
    """The parse cache in ``directory`` as the factory opens it (keyed on the deployment's include sources)."""
    return ParseCache(directory, sources=include_sources())


def entries(cache_dir: Path) -> dict[str, tuple[int, int]]:
    """Each cache entry with its inode and mtime: a rewrite (a miss) changes both."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in cache_dir.glob("*.pickle")}


def test_a_reparse_in_a_new_process_reuses_every_cached_pipeline(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    first = parse_in_fresh_process(cache_dir)
    assert "factory_failing" in first["tasks"] and len(first["tasks"]) > 1
    written = entries(cache_dir)
    assert len(written) == len(first["tasks"])  # one pipeline file per DAG
    second = parse_in_fresh_process(cache_dir)
    assert second["tasks"] == first["tasks"]  # the same DAGs, task for task
    assert entries(cache_dir) == written  # every pipeline came from the cache: no entry was rewritten


def test_a_task_start_builds_only_the_dag_of_its_task(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    everything = parse_in_fresh_process(tmp_path / "other-cache")
    result = parse_in_fresh_process(cache_dir, dag_id="factory_failing", task_id="build")
    assert result["tasks"] == {"factory_failing": everything["tasks"]["factory_failing"]}
    # The other pipelines of the file were not even loaded: one cache entry, the failing pipeline's.
    assert [p.name for p in cache_dir.glob("*.pickle")] == [deployment_cache(cache_dir).entry(FAILING, seed=SEED).name]


def test_a_task_of_a_dag_from_another_file_builds_nothing_here(tmp_path: Path) -> None:
    result = parse_in_fresh_process(tmp_path / "cache", dag_id="some_other_dag", task_id="t")
    assert result["tasks"] == {}
    assert not (tmp_path / "cache").exists()


@pytest.fixture
def pipeline(tmp_path: Path) -> Path:
    ci = tmp_path / "etl" / ".gitlab-ci.yml"
    ci.parent.mkdir()
    shutil.copy(FAILING, ci)
    return ci


def test_the_cache_is_in_airflow_home_by_default(pipeline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.configuration import AIRFLOW_HOME

    monkeypatch.delenv("AIRFLOW__CI_VARS__PARSE_CACHE_DIR", raising=False)
    gitlab_ci_dag(pipeline, project="acme/etl")
    default = deployment_cache(Path(AIRFLOW_HOME) / "cache" / "airflow-ci-vars")
    assert default.lookup(pipeline, seed=seed_variables(ref="main", project="acme/etl")) is not None


@pytest.mark.parametrize("setting", ["", "false", "False"])
def test_an_empty_or_false_parse_cache_dir_disables_the_cache(
    pipeline: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, setting: str
) -> None:
    from airflow.configuration import AIRFLOW_HOME

    monkeypatch.setenv("AIRFLOW__CI_VARS__PARSE_CACHE_DIR", setting)
    dag = gitlab_ci_dag(pipeline, project="acme/etl")
    assert dag is not None and "build" in dag.task_ids
    default = deployment_cache(Path(AIRFLOW_HOME) / "cache" / "airflow-ci-vars")
    assert not default.entry(pipeline, seed=seed_variables(ref="main", project="acme/etl")).exists()


def factory_module() -> Any:
    """Execute ``dags/ci_factory.py`` in this process (a parse without parsing context)."""
    return load_dag_file("ci_factory.py", "ci_factory_parsed")


def test_a_dag_built_from_a_cached_pipeline_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    monkeypatch.setenv("AIRFLOW__CI_VARS__PARSE_CACHE_DIR", str(cache_dir))
    cold = factory_module().failing
    entry = deployment_cache(cache_dir).entry(FAILING, seed=SEED)
    stored = entries(cache_dir)[entry.name]
    dag = factory_module().failing
    assert entries(cache_dir)[entry.name] == stored  # built from the cached pipeline
    assert dag.task_ids == cold.task_ids
    out = tmp_path / "out"
    out.mkdir()
    dr = dag.test(run_conf={"variables": {"OUT": str(out)}})
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dr.get_task_instances()}
    assert states["build"] == "failed" and states["test"] == "skipped" and states["cleanup"] == "success"
    assert (out / "cleanup_ran").exists() and not (out / "test_ran").exists()
