"""The operator's side of container jobs (``[ci_vars] isolation = docker``; docs/containers.md).

Where the job sees its workspace (``/builds/<project path>``), which runner runs its scripts,
and the container plan built by ``airflow_ci_vars.containers.plan`` from the job's ``image``,
``services`` and resolved variables. A worker that cannot reach its Docker daemon fails the job
saying so; it never runs a container job on the worker itself.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from airflow_ci_vars.containers.docker_runner import ContainerRunner, docker_client, sweep_containers
from airflow_ci_vars.containers.plan import BuildPaths, ContainerSpec, build_paths, plan_containers
from airflow_ci_vars.jobs import JobSpec
from airflow_ci_vars.masking import Masker
from airflow_ci_vars.operators.sandboxing import JobBoundary
from airflow_ci_vars.pipeline.entries.image import ServiceSpec
from airflow_ci_vars.runner import JobRunner, ScriptRunner, Workspace, clean_base_environment
from airflow_ci_vars.variables.resolve import JobEnvironment, VariableFile

if TYPE_CHECKING:
    from airflow.sdk.types import Logger

__all__ = ["job_environment", "job_runner", "seen_paths", "shown_services", "worker_files"]


def shown_services(services: Sequence[ServiceSpec | ContainerSpec]) -> str:
    """Services for the task's rendered fields: ``name (alias, ...)`` each, names as written."""
    shown: list[str] = []
    for service in services:
        if isinstance(service, ContainerSpec):
            name, aliases = service.shown, service.aliases
        else:
            name, aliases = service.name, service.aliases
        shown.append(f"{name} ({', '.join(aliases)})" if aliases else name)
    return ", ".join(shown)


def seen_paths(boundary: JobBoundary, workspace: Workspace, project: str) -> BuildPaths:
    """``CI_BUILDS_DIR``, ``CI_PROJECT_DIR`` and the temp folder as the job sees them: the
    workspace's own paths, or ``/builds/<project>`` in a container."""
    if boundary.containers is not None:
        return build_paths(project)
    return BuildPaths(str(workspace.project_dir.parent), str(workspace.project_dir), str(workspace.temp_dir))


def job_environment(boundary: JobBoundary, env: JobEnvironment) -> dict[str, str]:
    """The environment the job's scripts get: exactly its variables in a container (the image
    has its own ``PATH`` and ``HOME``), plus the worker's base environment otherwise."""
    if boundary.containers is not None:
        return dict(env.environment)
    return {**clean_base_environment(), **env.environment}


def worker_files(env: JobEnvironment, workspace: Workspace) -> list[VariableFile]:
    """The file variables at the worker's paths (in the workspace's temp folder), wherever the job sees them."""
    return [dataclasses.replace(f, path=os.path.join(workspace.temp_dir, os.path.basename(f.path))) for f in env.files]


def job_runner(
    boundary: JobBoundary,
    job: JobSpec,
    env: JobEnvironment,
    job_env: dict[str, str],
    paths: BuildPaths,
    masker: Masker,
    emit: Callable[[str], None],
    log: Logger,
) -> JobRunner:
    """The runner of this job's scripts: in its containers, or on the worker in its isolation."""
    containers = boundary.containers
    if containers is None:
        if job.image is not None or job.services:
            log.warning(
                "jobs:%s: image and services are ignored: this worker runs jobs without containers "
                "([ci_vars] isolation = %s; set it to docker to use them)",
                job.name,
                boundary.isolation.mode,
            )
        return ScriptRunner(masker, emit, isolation=boundary.isolation, output_limit=boundary.output_limit)
    plan = plan_containers(
        job=job.name,
        image=job.image,
        services=job.services,
        environment=job_env,
        variables=env.variables,
        masked=env.masked_values,
        policy=containers.policy,
        paths=paths,
    )
    client = docker_client(containers.docker)
    swept = sweep_containers(client)
    if swept:
        log.info("Removed %d container(s) and network(s) left by killed tasks on this worker", swept)
    return ContainerRunner(
        plan,
        masker,
        emit,
        client=client,
        job_name=job.name,
        output_limit=boundary.output_limit,
        file_keys=[f.key for f in env.files],
    )
