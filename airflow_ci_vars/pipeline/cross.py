"""Cross-pipeline dotenv handoff: ``needs:project`` and ``needs:pipeline`` (spec §6.2-§6.3, seed 002).

A job with a dotenv report publishes it, when it succeeds, as an event of the Airflow Asset named
after its project and job (``dotenv_asset_name``); the event's ``extra`` carries the ref and the
report (never a masked value: such a report is refused before anything is handed on). A job of
another pipeline that ``needs: [{project: P, job: J, ref: R}]`` reads J's newest event on ref R.
Asset events live in Airflow's metadata database and reach any worker through the execution API,
so nothing depends on one machine's disk. Nothing here imports Airflow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import quote, unquote

__all__ = [
    "DotenvEvent",
    "dotenv_asset_name",
    "dotenv_asset_source",
    "dotenv_asset_uri",
    "dotenv_event_extra",
    "latest_dotenv",
]

DotenvEvent = Mapping[str, object]


def _escape(text: str, *reserved: str) -> str:
    """``%`` and each of ``reserved`` as ``%XX`` (``%`` first, so the escaping is reversible)."""
    for char in ("%", *reserved):
        text = text.replace(char, f"%{ord(char):02X}")
    return text


def dotenv_asset_name(project: str, job: str) -> str:
    """The Asset whose events carry job ``job``'s dotenv reports in project ``project``.

    ``gitlab-ci/<project>/<job>`` with ``%`` written ``%25`` in both parts and ``/`` written
    ``%2F`` in the job's name: the last ``/`` always separates project and job, so no two
    (project, job) pairs share a name (``a`` + ``b/build`` is ``gitlab-ci/a/b%2Fbuild``, ``a/b`` +
    ``build`` is ``gitlab-ci/a/b/build``). Names without ``/`` or ``%`` in the job are unchanged.
    """
    return f"gitlab-ci/{_escape(project.strip('/'))}/{_escape(job, '/')}"


def dotenv_asset_uri(project: str, job: str) -> str:
    """The URI of ``dotenv_asset_name(project, job)`` (job names may hold spaces, ``:`` or ``[]``)."""
    return f"gitlab-ci-dotenv://{quote(project.strip('/'), safe='/')}/{quote(job, safe='')}"


def dotenv_asset_source(uri: str) -> tuple[str, str] | None:
    """The (project, job) of a dotenv Asset's URI (``dotenv_asset_uri``); None for any other URI."""
    prefix = "gitlab-ci-dotenv://"
    if not uri.startswith(prefix) or "/" not in uri[len(prefix) :]:
        return None
    project, _, job = uri[len(prefix) :].rpartition("/")
    return (unquote(project), unquote(job)) if project and job else None


def dotenv_event_extra(*, ref: str, pipeline_id: str, job: str, report: Mapping[str, str]) -> dict[str, object]:
    """The ``extra`` of the event a successful job publishes."""
    return {"ref": ref, "pipeline_id": pipeline_id, "job": job, "dotenv": dict(report)}


def latest_dotenv(extras: Iterable[DotenvEvent], ref: str) -> Mapping[str, str] | None:
    """The dotenv report of the first event (newest first) published on ``ref``; None if there is none."""
    for extra in extras:
        report = extra.get("dotenv")
        if extra.get("ref") == ref and isinstance(report, Mapping):
            return {str(k): str(v) for k, v in report.items()}
    return None
