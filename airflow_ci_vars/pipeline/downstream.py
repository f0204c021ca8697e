"""What a job's keywords see once it exists, and what trigger jobs forward to the pipelines below them.

Run time, after the decision (``pipeline.decision``): a trigger job's forwarded values, its
``trigger:branch`` and a ``needs:project``/``needs:pipeline`` entry are expanded with the variables
the job sees once it is persisted (``variables.resolve.keyword_context``: what ``rules:if`` sees
plus ``CI_PIPELINE_ID``); a child pipeline's jobs receive, as pipeline variables, what each
trigger job above them forwards (``children.forwarded_variables``, the one rule of what is
forwarded), from the top pipeline down. The operators (Airflow glue) and ``run`` call these;
what comes from Airflow (another task's dotenv) is passed in as a callable.

Pure: no Airflow import. R: ``app/models/ci/bridge.rb`` (``downstream_variables``, ``variables``),
``lib/gitlab/ci/variables/downstream/generator.rb``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from airflow_ci_vars.jobs import JobSpec
from airflow_ci_vars.pipeline.children import Bridge, forwarded_variables
from airflow_ci_vars.pipeline.decision import PipelineRun, job_layers
from airflow_ci_vars.variables.model import Variable
from airflow_ci_vars.variables.resolve import keyword_context

__all__ = ["CHILD_PIPELINE_SOURCE", "child_pipeline_variables", "keyword_variables", "trigger_variables"]

#: ``CI_PIPELINE_SOURCE`` of a child pipeline's jobs (never what a caller wrote in the conf).
CHILD_PIPELINE_SOURCE = "parent_pipeline"


def keyword_variables(
    job: JobSpec,
    run: PipelineRun,
    *,
    stored: Mapping[str, Any],
    pipeline: Sequence[Variable] = (),
    pipeline_id: str,
) -> dict[str, str]:
    """The variables ``job``'s keywords see once the job exists in ``run`` (``keyword_context`` of
    its layers: ``stored`` as ``Settings.layers_for`` gives them, its YAML, the ``pipeline``
    variables), its pipeline's ``CI_PIPELINE_ID`` being ``pipeline_id``."""
    layers = job_layers(job, stored, pipeline)
    environment = job.environment.name if job.environment is not None else None
    return keyword_context(layers, run.context(job, pipeline_id=pipeline_id), environment=environment)


def trigger_variables(
    bridge: Bridge,
    run: PipelineRun,
    *,
    stored: Mapping[str, Any],
    pipeline: Sequence[Variable],
    pipeline_id: str,
    dotenv: Callable[[Bridge], Sequence[Variable]] = lambda bridge: (),
) -> tuple[list[Variable], dict[str, str]]:
    """What the trigger job ``bridge`` forwards downstream (``forwarded_variables``) and the
    variables it sees (``keyword_variables``, for ``trigger:branch``). ``dotenv(bridge)``: the
    dotenv variables it received, asked for only when it forwards pipeline variables."""
    seen = keyword_variables(bridge.job, run, stored=stored, pipeline=pipeline, pipeline_id=pipeline_id)
    received = dotenv(bridge) if bridge.forward.pipeline_variables else ()
    return forwarded_variables(bridge, pipeline, seen, received), seen


def child_pipeline_variables(
    bridges: Sequence[Bridge],
    top: PipelineRun,
    *,
    stored: Mapping[str, Any],
    pipeline: Sequence[Variable],
    pipeline_ids: Sequence[str],
    dotenv: Callable[[Bridge], Sequence[Variable]] = lambda bridge: (),
) -> list[Variable]:
    """A child pipeline's pipeline variables: what each trigger job of ``bridges`` (from the top
    pipeline down) forwards, each seeing what the one above forwarded as its pipeline variables.

    ``top``: the top pipeline's run (the first trigger job runs there; the others run in child
    pipelines, ``CI_PIPELINE_SOURCE=parent_pipeline``); ``pipeline``: the top run's pipeline
    variables; ``pipeline_ids[depth]``: ``CI_PIPELINE_ID`` of the pipeline the trigger job at
    ``depth`` runs in.
    """
    variables = list(pipeline)
    child = dataclasses.replace(top, pipeline_source=CHILD_PIPELINE_SOURCE)
    for depth, (bridge, pipeline_id) in enumerate(zip(bridges, pipeline_ids, strict=True)):
        run = top if depth == 0 else child
        variables, _ = trigger_variables(
            bridge, run, stored=stored, pipeline=variables, pipeline_id=pipeline_id, dotenv=dotenv
        )
    return variables
