"""Where a job's ``artifacts:paths`` files are kept between jobs: Airflow's ``ObjectStoragePath``.

The storage half of GitLab's artifacts (gitlab-runner's ``artifacts-uploader`` and
``artifacts-downloader``), apart from the operator as an Airflow provider keeps a hook apart from
its operator. Which files are kept, how their paths are expanded and the manifest's format are the
core's (``airflow_ci_vars.artifacts``); this module copies them to and from
``<artifacts_root>/<dag_id>/<run_id>/<task_id>`` and reads where a source job put them (XCom key
``artifacts``: the location only, never a file name, which may hold a masked value). Every message
goes to the ``log`` it is given; nothing is kept between calls.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_ci_vars.artifacts import MANIFEST, expanded_paths, manifest, manifest_entries, select_artifacts
from airflow_ci_vars.errors import ArtifactPathError
from airflow_ci_vars.job_paths import inside_real, open_regular
from airflow_ci_vars.jobs import JobSpec

if TYPE_CHECKING:
    from airflow.sdk.types import Logger  # the task logger (``BaseOperator.log``)

__all__ = [
    "ARTIFACTS_XCOM_KEY",
    "artifacts_location",
    "restore_artifacts",
    "restore_files",
    "store_files",
    "upload_artifacts",
]

#: The XCom key of a job's stored artifacts: ``{"location": URL, "count": N}``.
ARTIFACTS_XCOM_KEY = "artifacts"


def artifacts_location(ti: Any, root: str | None) -> Any:
    """The task's artifact folder (an ``ObjectStoragePath``) under ``root``, else under
    ``[ci_vars] artifacts_root``, else under ``$AIRFLOW_HOME/ci-artifacts``."""
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk import conf as airflow_conf

    root = root or airflow_conf.get("ci_vars", "artifacts_root", fallback="") or ""
    if not root:
        home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
        root = f"file://{home}/ci-artifacts"
    return ObjectStoragePath(root) / ti.dag_id / ti.run_id / ti.task_id


def upload_artifacts(
    ti: Any,
    job: JobSpec,
    project_dir: Path,
    tracked: frozenset[str],
    environment: Mapping[str, str],
    *,
    root: str | None,
    log: Logger,
) -> dict[str, Any]:
    """Store ``job``'s selected files and their manifest under the run-scoped location; return
    the pointer to hand on in XCom (``ARTIFACTS_XCOM_KEY``) once it is checked for clear text.

    Only the location goes to XCom: file names may hold a masked value (a job may name a file
    after a token), and XCom is stored and served in clear.
    """
    return store_files(artifacts_location(ti, root), job, project_dir, tracked, environment, log=log)


def store_files(
    location: Any,
    job: JobSpec,
    project_dir: Path,
    tracked: frozenset[str],
    environment: Mapping[str, str],
    *,
    log: Logger,
) -> dict[str, Any]:
    """Store ``job``'s selected files and their manifest at ``location`` (an ``ObjectStoragePath``
    or a local ``pathlib.Path``), replacing what was there; return ``{"location", "count"}``.

    Paths are expanded with the job's variables first, as gitlab-runner does (``${NAME}``).
    """
    selection = select_artifacts(project_dir, expanded_paths(job.artifacts, environment), tracked=tracked)
    for warning in selection.warnings:
        log.warning("%s", warning)
    if isinstance(location, Path):
        shutil.rmtree(location, ignore_errors=True)
    elif location.exists():
        location.rmdir(recursive=True)  # a retry replaces the previous attempt's files
    files = location / "files"
    stored: list[str] = []
    for rel in selection.files:
        try:  # never through a symlink, never a FIFO: the file may have changed since it was selected
            source = open_regular(project_dir, rel)
        except (ArtifactPathError, FileNotFoundError) as err:
            log.warning("WARNING: File ignored: %s (%s)", rel, err)
            continue
        target = files / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with source as src, target.open("wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        stored.append(rel)
    location.mkdir(parents=True, exist_ok=True)
    links = dict(selection.links)
    with (location / MANIFEST).open("w") as out:
        json.dump(manifest(stored, links), out)
    log.info("Uploaded %d artifact file(s) and %d symlink(s) to %s", len(stored), len(links), location)
    return {"location": str(location), "count": len(stored) + len(links)}


def restore_artifacts(ti: Any, sources: Sequence[tuple[str, str, JobSpec]], project_dir: Path, *, log: Logger) -> None:
    """Copy the artifact files of ``sources`` ((job name, task_id, job), see
    ``jobs.dotenv_sources``) into the working directory (a later source wins)."""
    from airflow.sdk import ObjectStoragePath

    for name, task_id, producer in sources:
        if not (producer.artifacts.paths or producer.artifacts.untracked):
            continue
        pointer = ti.xcom_pull(task_ids=task_id, key=ARTIFACTS_XCOM_KEY)
        if isinstance(pointer, Mapping):
            restore_files(ObjectStoragePath(str(pointer["location"])), project_dir, name=name, log=log)


def restore_files(location: Any, project_dir: Path, *, name: str, log: Logger) -> None:
    """Copy the files job ``name`` stored at ``location`` (``store_files``) into ``project_dir``;
    never through a symlink, never over a path a restored link takes."""
    with (location / MANIFEST).open("r") as stored:
        files, links = manifest_entries(json.load(stored))
    for rel in files:
        target = project_dir / rel
        if not inside_real(project_dir, rel) or target.is_symlink():
            log.warning("WARNING: File ignored: %s (it would be written through a symlink)", rel)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with (location / "files" / rel).open("rb") as src, target.open("wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    for rel, link in links.items():  # after the files: no file is ever written through a restored link
        target = project_dir / rel
        if not inside_real(project_dir, rel) or os.path.lexists(target):
            log.warning("WARNING: File ignored: %s (the path is taken)", rel)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(str(link))
    log.info("Downloaded %d artifact file(s) and %d symlink(s) of job %r", len(files), len(links), name)
