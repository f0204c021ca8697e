"""What ``airflow-ci-vars run`` collects from the tasks it runs: masked job output lines and statuses.

``local_run`` names a file in ``AIRFLOW_CI_VARS_RUN_OUTPUT``; each job appends one JSON record per
line of masked output (``{"job", "line"}``) and one with its status (``{"job", "status"}``).
Without the variable (a deployed Airflow) nothing is written. Nothing is kept between calls.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

__all__ = ["RUN_DAG_ID", "RUN_OUTPUT_ENV", "report", "shown_name"]

RUN_OUTPUT_ENV = "AIRFLOW_CI_VARS_RUN_OUTPUT"
#: The DAG id of the pipeline ``run`` runs (either engine): the project's default and the ids' seed.
RUN_DAG_ID = "airflow_ci_vars_run"


def shown_name(pipeline_path: Sequence[str], job: str) -> str:
    """A job's name in ``run`` output: a child pipeline's job as ``trigger job -> job``."""
    return " -> ".join((*pipeline_path, job))


def report(record: Mapping[str, str]) -> None:
    """Append ``record`` (already masked) to the ``run`` output file, when ``run`` asked for one."""
    path = os.environ.get(RUN_OUTPUT_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
