"""``needs`` (jobs of this pipeline and of other pipelines). R: ``config/entry/needs.rb``, ``entry/need.rb``.

Resolving the names against the pipeline's jobs (parallel instances, stages, cycles) is the
pipeline's work (``pipeline/model.py``); this entry checks and reads the keyword itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from airflow_ci_vars.errors import JobConfigError


@dataclass(frozen=True, slots=True)
class Need:
    """One entry of ``needs:``. ``artifacts=False`` receives neither dotenv nor files."""

    job: str
    artifacts: bool = True
    optional: bool = False


@dataclass(frozen=True, slots=True)
class CrossNeed:
    """``needs:`` on a job of another pipeline: its dotenv report only (spec §6.2-§6.3).

    ``{project: P, job: J, ref: R, artifacts: true}``: J of the latest successful pipeline of
    project P on ref R; ``{pipeline: $PARENT_PIPELINE_ID, job: J}``: J of the parent pipeline (a
    child pipeline's job). ``project``, ``ref`` and ``pipeline`` are kept unexpanded.
    """

    job: str
    project: str | None = None
    ref: str | None = None
    pipeline: str | None = None
    artifacts: bool = True


def undefined_need(job: str, need: str) -> str:
    """GitLab's message for a need on a job the pipeline does not have (``validate_job_needs!``);
    job-level ``needs`` and ``rules:needs`` both use it."""
    return f"{job} job: undefined need: {need}"


def later_stage_need(job: str, need: str) -> str:
    """GitLab's message for a need on a job of a later stage."""
    return f"{job} job: need {need} is not defined in current or prior stages"


def duplicated_needs(job: str, needs: str) -> str:
    """GitLab's message for needs written twice (``needs``: the names, comma-separated)."""
    return f"{job} has the following needs duplicated: {needs}."


def parse(name: str, job: Mapping[str, object]) -> tuple[tuple[Need, ...] | None, tuple[CrossNeed, ...]]:
    """``(needs, cross_needs)``: ``needs`` is None without the keyword, ``()`` for ``needs: []``."""
    if "needs" not in job:
        return None, ()
    value = job["needs"]
    if not isinstance(value, list):
        raise JobConfigError(f"jobs:{name}:needs config should be an array", job=name, key="needs")
    if any(item is None or item == "" for item in value):
        raise JobConfigError(f"jobs:{name}:needs config can't contain empty entries", job=name, key="needs")
    needs = tuple(need(name, n) for n in value if not _cross(n))
    return needs, tuple(_cross_need(n) for n in value if _cross(n))


def raw(value: object) -> list[Mapping[str, object]]:
    """Each entry of ``needs:`` as a hash (``{job: NAME}`` for a name), for resolution across jobs."""
    items = value if isinstance(value, list) else [value]
    return [{"job": item} if isinstance(item, str) or not isinstance(item, Mapping) else item for item in items]


def is_cross(value: object) -> bool:
    """Whether a ``needs:`` entry names a job of another pipeline (``project:`` or ``pipeline:``)."""
    return _cross(value)


def _cross(value: object) -> bool:
    return isinstance(value, Mapping) and ("project" in value or "pipeline" in value)


def _cross_need(value: object) -> CrossNeed:
    assert isinstance(value, Mapping)

    def text(key: str) -> str | None:
        found = value.get(key)
        return None if found is None else str(found)

    return CrossNeed(
        str(value.get("job", "")),
        project=text("project"),
        ref=text("ref"),
        pipeline=text("pipeline"),
        artifacts=bool(value.get("artifacts", True)),
    )


def need(name: str, value: object) -> Need:
    """One job entry of ``needs:``: a name, or a hash with ``job`` (and ``artifacts``, ``optional``)."""
    if isinstance(value, str):
        return Need(value)
    if isinstance(value, Mapping) and "job" in value:
        return Need(
            str(value["job"]),
            artifacts=bool(value.get("artifacts", True)),
            optional=bool(value.get("optional", False)),
        )
    raise JobConfigError("needs config should be a job name or a hash with 'job'", job=name, key="needs")
