"""``stage`` and its deprecated alias ``type``.

R: ``config/entry/stage.rb``, ``entry/job.rb``, ``yaml_processor.rb``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from airflow_ci_vars.errors import JobConfigError

DEFAULT_STAGES: tuple[str, ...] = (".pre", "build", "test", "deploy", ".post")


def job_stage(job: Mapping[str, object]) -> tuple[str, str]:
    """The keyword that gives a job's stage and the stage: ``stage``, else the deprecated ``type``.

    R: ``lib/gitlab/ci/config/entry/job.rb`` ``compose!`` (``type`` only when ``stage`` is not
    specified; no warning), ``entry/stage.rb`` (default ``test``). A ``null`` is not specified.
    """
    keyword = "type" if job.get("stage") is None and job.get("type") is not None else "stage"
    value = job.get(keyword)
    return keyword, "test" if value is None else str(value)


def check(name: str, job: Mapping[str, object], stages: Collection[str]) -> None:
    """The job's stage is one of ``stages``, in order (R: ``yaml_processor.rb`` ``validate_job_stage!``)."""
    keyword, stage = job_stage(job)
    if stage not in stages:
        raise JobConfigError(
            f"{name} job: chosen stage {stage} does not exist; available stages are {', '.join(stages)}",
            job=name,
            key=keyword,
        )
