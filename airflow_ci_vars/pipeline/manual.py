"""Manual jobs (``when: manual``): blocking or optional, whether a run played them, typed variables.

GitLab (spec §8.4, §9; docs "Types of manual jobs"): a job-level ``when: manual`` defaults to
``allow_failure: true`` and is *optional*: later stages do not wait for it and the pipeline status
ignores it. A ``when: manual`` coming from ``rules`` defaults to ``allow_failure: false`` and is
*blocking*: the pipeline stops at its stage ("blocked") until someone plays it. ``allow_failure:
{exit_codes: [...]}`` is a static ``false``, so such a manual job blocks too.

The DAG factory needs to know before any run which jobs can never hold later stages back
(:func:`always_optional_manual`), and the pipeline status which ones may block (:func:`may_block`).
Pure: no Airflow import.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from airflow_ci_vars.clear_text import check_clear, stored_masker
from airflow_ci_vars.errors import ParameterError
from airflow_ci_vars.jobs import AllowFailure, JobSpec
from airflow_ci_vars.parameters import pipeline_variables
from airflow_ci_vars.pipeline.expressions import rule_attributes
from airflow_ci_vars.variables.model import Layer, Variable, VariableSource

if TYPE_CHECKING:
    from airflow_ci_vars.settings import LayerArguments

__all__ = [
    "MANUAL_VARIABLES_SOURCE",
    "always_optional_manual",
    "is_blocking_manual",
    "manual_job_variables",
    "manual_request",
    "may_block",
    "played_in_conf",
]

MANUAL_VARIABLES_SOURCE = VariableSource(Layer.MANUAL, "played with")


def is_blocking_manual(when: str, allow_failure: AllowFailure) -> bool:
    """Whether a job whose decided ``when``/``allow_failure`` are these blocks later stages."""
    return when == "manual" and allow_failure is not True


def _outcomes(job: JobSpec) -> Iterable[tuple[str, AllowFailure]]:
    """Every (``when``, ``allow_failure``) the job can end up with in some run.

    A matching rule's attributes come from ``expressions.rule_attributes``, as in the run-time
    decision.
    """
    if job.rules is None:
        yield job.when, job.allow_failure
        return
    for rule in job.rules:
        yield rule_attributes(rule, job_when=job.when)


def may_block(job: JobSpec) -> bool:
    """True when some run can make ``job`` a blocking manual job."""
    return any(is_blocking_manual(when, allow) for when, allow in _outcomes(job))


def always_optional_manual(job: JobSpec) -> bool:
    """True when ``job``, whenever it is in a pipeline, is an optional (non-blocking) manual job.

    Only such jobs may be left out of the stage ordering: nothing after their stage ever waits
    for them, except the jobs that ``needs`` them.
    """
    outcomes = [(when, allow) for when, allow in _outcomes(job) if when != "never"]
    return bool(outcomes) and all(when == "manual" and allow is True for when, allow in outcomes)


def played_in_conf(job_names: Iterable[str], conf: Mapping[str, object]) -> bool | None:
    """Whether the run's ``conf["manual"]`` plays a job known under any of ``job_names``.

    ``None`` when ``conf`` has no ``manual`` key: nobody decided up front, so someone is asked.
    A ``manual`` key (even ``[]``) decides for every manual job: unlisted ones are not played.
    """
    if "manual" not in conf:
        return None
    played = conf.get("manual")
    if isinstance(played, str):
        played = [played]
    if not isinstance(played, Sequence):
        return False
    return bool(set(job_names) & {str(p) for p in played})


def manual_job_variables(given: object) -> list[Variable]:
    """Variables typed in when a manual job is played (they outrank pipeline variables, spec §1.2).

    ``given`` is the approver's text, one ``KEY=VALUE`` per line (blank lines are ignored), or a
    mapping / GitLab ``[{"key", "value"}]`` list as the REST API takes pipeline variables. Keys and
    values follow the pipeline-variable rules; a problem raises ``ParameterError`` naming the line
    or key, never a value.
    """
    if given is None or given == "":
        return []
    items: object = given
    if isinstance(given, str):
        listed: list[dict[str, str]] = []
        for number, line in enumerate(given.splitlines(), start=1):
            if not line.strip():
                continue
            key, sep, value = line.partition("=")
            if not sep:
                raise ParameterError(
                    f"manual job variables, line {number}: expected KEY=VALUE", names=[f"line {number}"]
                )
            listed.append({"key": key, "value": value})
        items = listed
    return [v.with_source(MANUAL_VARIABLES_SOURCE) for v in pipeline_variables({"variables": items})]


def manual_request(job: JobSpec, environment: str | None, ref: str, stored: LayerArguments) -> dict[str, str | None]:
    """What a manual job waiting to be played records for the check of who may play it (its
    environment and ref). Raises ``SecretInClearTextError`` naming ``jobs:NAME:environment`` when
    it would hold a stored masked value: it is kept in clear (XCom), so such a job fails, whoever
    plays it and whichever engine runs it."""
    request = {"environment": environment, "ref": ref}
    check_clear(request, stored_masker(stored), where=f"jobs:{job.name}:environment", written_to="XCom")
    return request
