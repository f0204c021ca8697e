"""A job's keywords composed into the one job record (``JobSpec``). R: ``config/entry/job.rb``, ``entry/bridge.rb``.

``parse_job`` calls every keyword entry once and collects what they refuse, so the loader reports
every problem of a job at once; ``JobSpec.from_yaml`` (hand-written DAGs) raises the first problem
that leaves no record to build.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TypeVar, cast

from airflow_ci_vars.errors import CIVarsError, JobConfigError
from airflow_ci_vars.jobs import JobSpec
from airflow_ci_vars.pipeline.entries import (
    allow_failure,
    artifacts,
    dependencies,
    environment,
    image,
    needs,
    retry,
    rules,
    script,
    secrets,
    stage,
    tags,
    timeout,
    trigger,
    variables,
    when,
)

__all__ = ["CONTAINER_KEYWORDS", "KNOWN_KEYWORDS", "RUNNER_ONLY_KEYWORDS", "JobEntries", "parse_job"]

CONTAINER_KEYWORDS = ("image", "services")
"""Keywords of container jobs: used when the deployment runs jobs in containers, else ignored."""
RUNNER_ONLY_KEYWORDS = (*CONTAINER_KEYWORDS, "cache", "hooks", "coverage", "dast_configuration", "pages")
KNOWN_KEYWORDS = frozenset(
    {
        "script", "before_script", "after_script", "stage", "variables", "inherit", "needs", "dependencies",
        "rules", "when", "start_in", "allow_failure", "retry", "timeout", "parallel", "environment",
        "artifacts", "trigger", "secrets", "id_tokens", "interruptible", "extends", "resource_group",
        "release", "run", "only", "except", "manual_confirmation", "identity", "tags", "type",
        *RUNNER_ONLY_KEYWORDS,
    }
)  # fmt: skip

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class JobEntries:
    """What ``parse_job`` found: the record (None when a keyword it needs is refused), errors, warnings.

    ``warnings`` are ``(message, keyword)`` pairs; ``fatal`` the errors that left no record.
    """

    spec: JobSpec | None
    errors: tuple[CIVarsError, ...]
    warnings: tuple[tuple[str, str], ...] = ()
    fatal: tuple[CIVarsError, ...] = ()


def parse_job(
    name: str,
    job: Mapping[str, object],
    *,
    default_variables: Mapping[str, object] | None = None,
    stages: Collection[str] | None = None,
    containers: bool = False,
) -> JobEntries:
    """Parse every keyword of job ``name`` once; check its stage against ``stages`` (in order) when given.

    ``containers``: the deployment runs jobs in containers, so ``image``/``services`` are used
    (without it they earn the "only configures a GitLab runner" warning)."""
    errors: list[CIVarsError] = []
    fatal: list[CIVarsError] = []
    found_warnings: list[tuple[str, str]] = []

    def soft(parse: Callable[..., T], default: object, *args: object) -> T:
        """A keyword whose refusal still leaves a record (the pipeline reports it)."""
        try:
            return parse(*args)
        except CIVarsError as err:
            errors.append(err)
            return cast(T, default)

    def hard(parse: Callable[..., T], default: object, *args: object) -> T:
        """A keyword the job cannot be built without."""
        try:
            return parse(*args)
        except CIVarsError as err:
            errors.append(err)
            fatal.append(err)
            return cast(T, default)

    is_bridge = "trigger" in job
    # `type:` (deprecated alias of `stage:`) is a key of jobs only (entry/job.rb, not bridge.rb).
    unknown = sorted(k for k in job if k not in KNOWN_KEYWORDS or (k == "type" and is_bridge))
    if unknown:
        errors.append(JobConfigError(f"jobs:{name} config contains unknown keys: {', '.join(unknown)}", job=name))
    for keyword in RUNNER_ONLY_KEYWORDS:
        if keyword in job and not (containers and keyword in CONTAINER_KEYWORDS):
            found_warnings.append((f"jobs:{name}:{keyword} is ignored: it only configures a GitLab runner", keyword))
    job_tags = soft(tags.parse, (), name, job.get("tags"))
    found_warnings += [(message, "tags") for message in tags.warnings(name, job_tags)]
    soft(script.check_present, None, name, job)
    if stages is not None:
        soft(stage.check, None, name, job, stages)
    job_when = soft(when.when, "on_success", name, job)
    start_in = soft(when.start_in, None, name, job, job_when)
    job_timeout = soft(timeout.parse, None, name, job)
    retry_max, retry_when = soft(retry.parse, (0, ()), name, job.get("retry"))
    job_rules = soft(rules.parse, None, name, job.get("rules"))
    job_needs, cross_needs = hard(needs.parse, (None, ()), name, job)
    env = hard(environment.parse, None, name, job.get("environment"))
    job_artifacts = hard(artifacts.parse, artifacts.NO_ARTIFACTS, name, job.get("artifacts"))
    allowed = hard(allow_failure.parse, False, name, job, job_when)
    job_secrets = hard(secrets.parse, (), name, job.get("secrets"))
    job_image = hard(image.parse_image, None, name, job.get("image"))
    job_services = hard(image.parse_services, (), name, job.get("services"))
    lines = hard(script.lines, (), name, job.get("script"), "script")
    before = hard(script.lines, (), name, job.get("before_script"), "before_script")
    after = hard(script.lines, (), name, job.get("after_script"), "after_script")
    job_variables = hard(variables.job_variables, None, name, job.get("variables"))
    defaults = hard(variables.default_variables, (), default_variables)
    if fatal:
        return JobEntries(None, tuple(errors), tuple(found_warnings), tuple(fatal))
    spec = JobSpec(
        name=name,
        script=lines,
        stage=stage.job_stage(job)[1],
        before_script=before,
        after_script=after,
        variables=job_variables,
        default_variables=defaults,
        inherit_variables=variables.inherit(job),
        needs=job_needs,
        cross_needs=cross_needs,
        dependencies=dependencies.parse(job),
        environment=env,
        artifacts=job_artifacts,
        allow_failure=allowed,
        secrets=job_secrets,
        when=job_when,
        start_in=start_in,
        rules=job_rules,
        retry=retry_max,
        retry_when=retry_when,
        timeout=job_timeout,
        trigger=trigger.parse(job),
        interruptible=trigger.interruptible(job),
        tags=job_tags,
        image=job_image,
        services=job_services,
    )
    return JobEntries(spec, tuple(errors), tuple(found_warnings))
