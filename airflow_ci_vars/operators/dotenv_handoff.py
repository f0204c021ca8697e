"""The dotenv handoff inside one pipeline: a job's ``artifacts:reports:dotenv`` to later jobs (XCom).

GitLab's ``Ci::ParseDotenvArtifactService`` (a job's report kept with the job) and
``Ci::Build#dependency_variables`` (what a later job receives): after the scripts succeed, the
job's reports are parsed with GitLab's rules (``airflow_ci_vars.dotenv``) and handed on as one
XCom (key ``dotenv``); a job receives the reports of the jobs it takes artifacts from
(``jobs.dotenv_sources``), a later source winning a key. Parsing refuses a report holding a masked
value before anything is handed on. Which jobs are sources is the core's; this module reads and
writes the Airflow side only. Nothing is kept between calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_ci_vars.dotenv import read_dotenv_file
from airflow_ci_vars.errors import ArtifactPathError, DotenvError
from airflow_ci_vars.jobs import JobSpec
from airflow_ci_vars.masking import Masker
from airflow_ci_vars.variables import Layer, Variable, VariableSource

if TYPE_CHECKING:
    from airflow.sdk.types import Logger  # the task logger (``BaseOperator.log``)

__all__ = ["DOTENV_XCOM_KEY", "dotenv_variables", "read_dotenv_reports", "received_dotenv"]

#: The XCom key of a job's parsed dotenv reports (one mapping, the reports merged in order).
DOTENV_XCOM_KEY = "dotenv"


def received_dotenv(ti: Any, sources: Sequence[tuple[str, str, JobSpec]]) -> list[Variable]:
    """dotenv variables of the source jobs ((job name, task_id, job)), in source order (a later
    source wins a key), from their XComs."""
    return dotenv_variables(sources, lambda name, task_id: ti.xcom_pull(task_ids=task_id, key=DOTENV_XCOM_KEY))


def dotenv_variables(
    sources: Sequence[tuple[str, str, JobSpec]], report_of: Callable[[str, str], object]
) -> list[Variable]:
    """The dotenv layer of a job: the reports (``report_of(job name, task_id)``, a mapping or
    None) of its source jobs that have a dotenv report, in source order."""
    received: list[Variable] = []
    for name, task_id, producer in sources:
        if not producer.artifacts.dotenv:
            continue
        report = report_of(name, task_id)
        if isinstance(report, Mapping):
            source = VariableSource(Layer.DOTENV, name)
            received += [Variable(str(k), str(v), source=source) for k, v in report.items()]
    return received


def read_dotenv_reports(
    job: JobSpec, project_dir: Path, masker: Masker, *, max_bytes: int, max_variables: int, log: Logger
) -> dict[str, str]:
    """Parse every ``artifacts:reports:dotenv`` file of ``job``; fail before anything is handed on.
    Raises ``DotenvError`` (located in the report) or ``ArtifactPathError``."""
    merged: dict[str, str] = {}
    for name in job.artifacts.dotenv:
        try:
            values = read_dotenv_file(
                name,
                root=project_dir,
                masker=masker,
                max_bytes=max_bytes,
                max_variables=max_variables,
            )
        except FileNotFoundError:
            log.warning("dotenv report %s not found: nothing handed on from it", name)
            continue
        except DotenvError as err:  # its lines are checked as they are read: a key or value
            raise err.with_file(name) from None  # holding a secret included
        except ArtifactPathError as err:
            raise ArtifactPathError(f"dotenv report: {err}", path=err.path) from None
        merged.update(values)
    return merged
