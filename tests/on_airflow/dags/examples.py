"""Puts the project's example DAGs into the test DAG bundle, so ``dag.test()`` can run them."""

from __future__ import annotations

import runpy
from pathlib import Path

from airflow.sdk import DAG

_EXAMPLE = Path(__file__).resolve().parents[3] / "example_dags" / "ci_etl_handwritten.py"
dag: DAG = runpy.run_path(str(_EXAMPLE))["dag"]
