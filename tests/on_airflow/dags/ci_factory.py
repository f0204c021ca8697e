"""Test DAGs built by the DAG factory (one line each, as users write them)."""

from __future__ import annotations

from pathlib import Path

from airflow_ci_vars.dag_factory import gitlab_ci_dag

HERE = Path(__file__).parent
SETTINGS = HERE / "settings.yml"

basic = gitlab_ci_dag(
    HERE / "pipelines/basic/.gitlab-ci.yml", project="acme/data/etl", dag_id="factory_basic", settings=SETTINGS
)
failing = gitlab_ci_dag(HERE / "pipelines/failing/.gitlab-ci.yml", dag_id="factory_failing", settings=SETTINGS)
workflow = gitlab_ci_dag(HERE / "pipelines/workflow/.gitlab-ci.yml", dag_id="factory_workflow", settings=SETTINGS)
parent = gitlab_ci_dag(HERE / "pipelines/parent/.gitlab-ci.yml", dag_id="factory_parent", settings=SETTINGS)
depend_failing = gitlab_ci_dag(HERE / "pipelines/depend_failing/.gitlab-ci.yml", dag_id="factory_depend_failing")
child_ruled_out = gitlab_ci_dag(HERE / "pipelines/child_ruled_out/.gitlab-ci.yml", dag_id="factory_child_ruled_out")
seed002 = gitlab_ci_dag(HERE / "pipelines/seed002/.gitlab-ci.yml", project="acme/seed002", dag_id="factory_seed002")
never_built = gitlab_ci_dag(
    HERE / "pipelines/seed002/.gitlab-ci.yml", project="acme/never-built", dag_id="factory_never_built"
)
needs_pipeline = gitlab_ci_dag(
    HERE / "pipelines/needs_pipeline/.gitlab-ci.yml", project="acme/cross", dag_id="factory_needs_pipeline"
)
conf_params = gitlab_ci_dag(
    HERE / "pipelines/conf_params/.gitlab-ci.yml",
    project="acme/data/etl",
    dag_id="factory_conf_params",
    settings=SETTINGS,
)
downstream = gitlab_ci_dag(
    HERE / "pipelines/multi_project/downstream/.gitlab-ci.yml", project="acme/downstream", settings=SETTINGS
)
upstream = gitlab_ci_dag(
    HERE / "pipelines/multi_project/upstream/.gitlab-ci.yml",
    project="acme/upstream",
    dag_id="factory_upstream",
    settings=SETTINGS,
)
leaky = gitlab_ci_dag(
    HERE / "pipelines/multi_project/leaky/.gitlab-ci.yml",
    project="acme/data/etl",
    dag_id="factory_leaky",
    settings=SETTINGS,
)
