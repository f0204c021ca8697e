"""GitLab's permission decisions: each rule once, for the api-server plugin, the operator and the CLI.

=====================================  ===============================================================
decision                               GitLab's rule (source)
=====================================  ===============================================================
``check_run``                          create a pipeline: developer or more (R: ``ProjectPolicy``
                                       ``:create_pipeline``, ``Chain::Validate::Abilities``); on a
                                       protected ref, a role its rules allow to run (R:
                                       ``Gitlab::UserAccess#can_update_branch?``: any matching
                                       protected branch that allows the user is enough)
``check_pipeline_variables``           spec §10 (``ci_pipeline_variables_minimum_override_role``)
``check_deploy``                       a job deploying to a protected environment fails with
                                       ``protected_environment_failure`` unless its user may
                                       deploy (R: ``ee/app/models/protected_environment.rb``)
``check_play``                         playing a manual job (R: ``Ci::PlayBuildService``,
                                       ``Ci::BuildPolicy``): developer, the ref's run rights, the
                                       environment's deploy rights, and the variable restriction
                                       for variables typed in
``check_job_token``                    the CI/CD job token allowlist (R: ``Ci::JobToken::Scope``)
=====================================  ===============================================================

Every refusal raises ``AccessDeniedError``, whose message starts with GitLab's text and then says
who, what and which setting decided (never a variable's value). Never imports Airflow.
"""

from __future__ import annotations

from collections.abc import Sequence

from airflow_ci_vars.errors import AccessDeniedError
from airflow_ci_vars.permissions.access import ProjectAccess
from airflow_ci_vars.permissions.actor import Actor
from airflow_ci_vars.permissions.roles import NO_ONE, has_role

__all__ = [
    "CREATE_FORBIDDEN",
    "DEPLOY_FORBIDDEN",
    "PLAY_FORBIDDEN",
    "VARIABLES_FORBIDDEN",
    "PipelineVariablesForbiddenError",
    "check_deploy",
    "check_downstream",
    "check_job_token",
    "check_pipeline_variables",
    "check_play",
    "check_run",
    "may_deploy",
    "may_run_anywhere",
    "may_run_on",
    "may_set_pipeline_variables",
    "ref_forbidden_message",
]

CREATE_FORBIDDEN = "Insufficient permissions to create a new pipeline"
VARIABLES_FORBIDDEN = "Insufficient permissions to set pipeline variables"
DEPLOY_FORBIDDEN = (
    "The environment this job is deploying to is protected. Only users with permission may successfully run this job."
)
PLAY_FORBIDDEN = "Insufficient permissions to play this manual job"
BRIDGE_FORBIDDEN = "This job could not be executed because of insufficient permissions to create a downstream pipeline"
#: The role GitLab requires to create a pipeline, or to play a job.
DEVELOPER = "developer"


class PipelineVariablesForbiddenError(AccessDeniedError):
    """A run carries pipeline variables its user may not set (spec §10)."""

    def __init__(self, message: str, *, reason: str = "pipeline_variables") -> None:
        super().__init__(message, reason=reason)


def ref_forbidden_message(ref: str) -> str:
    """GitLab's message for a run on a protected ref the user may not run on (R: ``Chain::Validate::Abilities``)."""
    return (
        f"You do not have sufficient permission to run a pipeline on '{ref}'. "
        "Please select a different branch or contact your administrator for assistance."
    )


def _role_text(actor: Actor, role: str | None, project: str) -> str:
    return f"{actor} has {f'role {role}' if role else 'no role'} in project {project}"


def may_run_on(access: ProjectAccess, role: str | None, ref: str) -> bool:
    """Whether ``role`` may run pipelines on ``ref``: any matching protected ref rule allowing it suffices."""
    rules = access.rules_for_ref(ref)
    return not rules or any(has_role(role, rule.allowed_to_run) for rule in rules)


def may_run_anywhere(access: ProjectAccess, role: str | None) -> bool:
    """Whether ``role`` may run pipelines on every ref of the project, protected ones included."""
    return has_role(role, DEVELOPER) and all(has_role(role, rule.allowed_to_run) for rule in access.ref_rules)


def check_run(access: ProjectAccess, actor: Actor, role: str | None, ref: str, *, project: str) -> None:
    """May ``actor`` (GitLab role ``role``) create a pipeline of ``project`` on ``ref``?"""
    if not has_role(role, DEVELOPER):
        raise AccessDeniedError(
            f"{CREATE_FORBIDDEN}: {_role_text(actor, role, project)}; running pipelines needs developer or more",
            reason="insufficient_permissions",
        )
    if not may_run_on(access, role, ref):
        allowed = " or ".join(sorted({r.allowed_to_run for r in access.rules_for_ref(ref)}))
        who = "nobody may run on it" if allowed == NO_ONE else f"allowed to run: {allowed}"
        raise AccessDeniedError(
            f"{ref_forbidden_message(ref)} (protected ref '{ref}': {who}; {_role_text(actor, role, project)})",
            reason="protected_ref",
        )


def may_set_pipeline_variables(minimum_role: str | None, role: str | None) -> bool:
    """Spec §10: unrestricted without a minimum; ``no_one_allowed`` refuses everyone."""
    return minimum_role is None or has_role(role, minimum_role)


def check_pipeline_variables(
    given: Sequence[str], access: ProjectAccess, actor: Actor, role: str | None, *, project: str
) -> None:
    """Refuse what the run sets (``given``: the conf keys and prefilled variables it changes) when
    the project restricts pipeline variables and ``role`` is below its minimum."""
    minimum = access.pipeline_variables_minimum_role
    if not given or may_set_pipeline_variables(minimum, role):
        return
    raise PipelineVariablesForbiddenError(
        f"{VARIABLES_FORBIDDEN}: {_role_text(actor, role, project)}; the project's minimum role for pipeline "
        f"variables is {minimum} (the run sets: {', '.join(given)})"
    )


def may_deploy(access: ProjectAccess, role: str | None, environment: str | None) -> bool:
    """Whether ``role`` may deploy to ``environment``: every protected entry matching it must allow the role."""
    return all(has_role(role, rule.allowed_to_deploy) for rule in access.rules_for_environment(environment))


def check_deploy(
    access: ProjectAccess, actor: Actor, role: str | None, environment: str | None, *, project: str
) -> None:
    """A job deploying to a protected ``environment`` runs only for a user allowed to deploy to it."""
    if may_deploy(access, role, environment):
        return
    allowed = " and ".join(sorted({r.allowed_to_deploy for r in access.rules_for_environment(environment)}))
    raise AccessDeniedError(
        f"{DEPLOY_FORBIDDEN} (environment '{environment}': allowed to deploy: {allowed}; "
        f"{_role_text(actor, role, project)})",
        reason="protected_environment_failure",
    )


def check_play(
    access: ProjectAccess,
    actor: Actor,
    role: str | None,
    *,
    project: str,
    job: str,
    ref: str,
    environment: str | None,
    variables: Sequence[str] = (),
) -> None:
    """May ``actor`` play the manual ``job`` (typing in ``variables``, the keys) on ``ref``?"""

    def refuse(why: str, reason: str) -> AccessDeniedError:
        return AccessDeniedError(f"{PLAY_FORBIDDEN} '{job}': {why}; {_role_text(actor, role, project)}", reason=reason)

    if not has_role(role, DEVELOPER):
        raise refuse("playing a job needs developer or more", "insufficient_permissions")
    if not may_run_on(access, role, ref):
        raise refuse(f"ref '{ref}' is protected", "protected_ref")
    if not may_deploy(access, role, environment):
        raise refuse(f"environment '{environment}' is protected", "protected_environment_failure")
    if variables:
        check_pipeline_variables(variables, access, actor, role, project=project)


def check_job_token(source_project: str, source_access: ProjectAccess, reader_project: str, *, what: str) -> None:
    """May a job of ``reader_project`` read (or trigger) ``source_project``? ``what`` says which keyword asked."""
    if source_access.allows_job_token_from(reader_project, own=source_project):
        return
    raise AccessDeniedError(
        f"Authentication by CI/CD job token not allowed from {reader_project} to {source_project}. "
        f"({what}: {source_project}'s ci_job_token_allowlist does not list {reader_project})",
        reason="job_token_scope",
    )


def check_downstream(target_project: str, target_access: ProjectAccess, upstream_project: str) -> None:
    """``trigger:project``: the target project must allow the upstream project's job token."""
    if target_access.allows_job_token_from(upstream_project, own=target_project):
        return
    raise AccessDeniedError(
        f"{BRIDGE_FORBIDDEN}: {target_project}'s ci_job_token_allowlist does not list {upstream_project}",
        reason="insufficient_bridge_permissions",
    )
