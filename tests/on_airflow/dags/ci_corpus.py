"""A pipeline written as real projects write them (booleans, ``type:``, a need on one matrix instance)."""

from __future__ import annotations

from pathlib import Path

from airflow_ci_vars.dag_factory import gitlab_ci_dag

HERE = Path(__file__).parent

corpus = gitlab_ci_dag(HERE / "pipelines/corpus/.gitlab-ci.yml", dag_id="factory_corpus")
