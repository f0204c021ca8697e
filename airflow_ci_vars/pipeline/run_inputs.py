"""A job as one run's ``spec:inputs`` make it.

The DAG is built with the inputs' build values (``RunForm.values``, the params' defaults); a run
giving other values (trigger form or ``conf["inputs"]``) loads the main file again with them and
takes the job from that pipeline -- only then, as it costs a parse. A job those inputs leave out
is not in the run's pipeline. R: ``lib/gitlab/ci/config/interpolation`` (inputs interpolated
before the jobs exist). Pure: no Airflow import; the operator maps the outcome to Airflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from airflow_ci_vars.jobs import JobSpec
from airflow_ci_vars.pipeline.external.sources import IncludeSources
from airflow_ci_vars.pipeline.loader import load_pipeline
from airflow_ci_vars.pipeline.run_form import RunForm

__all__ = ["JobWithInputs", "job_with_inputs"]


@dataclass(frozen=True)
class JobWithInputs:
    """``job``: the job as the run's inputs make it (None: they leave it out of the pipeline);
    ``changed``: the inputs whose values differ from the build values (none: the job as built)."""

    job: JobSpec | None
    changed: tuple[str, ...] = ()


def job_with_inputs(
    form: RunForm, values: Mapping[str, object], job: JobSpec, *, sources: IncludeSources | None = None
) -> JobWithInputs:
    """``job`` in the pipeline ``form``'s file gives with the input ``values`` (``RunForm.run_inputs``).

    Loads the file only when ``values`` differ from the build values; raises ``PipelineError`` /
    ``PipelineInvalidError`` (located) when it does not load with them. ``sources`` are the
    deployment's include sources (as the DAG was parsed with).
    """
    if not form.inputs_differ(values):
        return JobWithInputs(job)
    changed = tuple(sorted(k for k in values if form.inputs_differ({**form.values, k: values[k]})))
    pipeline = load_pipeline(form.file, seed=form.seed, inputs=values, sources=sources)
    for found in pipeline.jobs:
        if found.name == job.name:
            return JobWithInputs(found.spec, changed)
    return JobWithInputs(None, changed)
