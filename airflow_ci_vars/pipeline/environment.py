"""A job's ``environment:`` at run time: the predefined variables it gives, and the URL shown after the job.

R: ``lib/gitlab/ci/variables/builder.rb`` (``CI_ENVIRONMENT_ACTION``, ``CI_ENVIRONMENT_TIER``,
``CI_ENVIRONMENT_URL`` of a job with an environment); ``app/services/deployments/update_environment_service.rb``
(``expanded_environment_url``: ``environment:url`` expanded with the job's variables and the
variables of its own dotenv report, which may set it). Pure: no Airflow import. The operator and
``explain`` call :func:`environment_variables`; the operator shows :func:`environment_url`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_ci_vars.jobs import JobSpec
from airflow_ci_vars.variables.expansion import expand_value

__all__ = ["environment_name", "environment_url", "environment_variables"]


def environment_name(job: JobSpec, conf: Mapping[str, Any]) -> str | None:
    """``job``'s ``environment:name``; a job without one takes the run's ``conf["environment"]``."""
    if job.environment is not None:
        return job.environment.name
    given = conf.get("environment")
    return str(given) if given else None


def environment_variables(job: JobSpec) -> dict[str, str | None]:
    """The ``RunContext`` fields ``job``'s ``environment:`` sets (action, tier, URL as written;
    all None without an environment)."""
    env = job.environment
    return {
        "environment_action": env.action if env is not None else None,
        "environment_tier": env.deployment_tier if env is not None else None,
        "environment_url": env.url if env is not None else None,
    }


def environment_url(job: JobSpec, environment: Mapping[str, str], report: Mapping[str, str]) -> str:
    """``job``'s ``environment:url`` once it ran, expanded with its variables (``environment``)
    and its dotenv ``report`` (which wins); ``""`` when it has none."""
    env = job.environment
    if env is None or not env.url:
        return ""
    return expand_value(env.url, {**environment, **report})
