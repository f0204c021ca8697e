"""Who may do what: GitLab's permission model for runs, jobs, environments and other projects.

``roles`` (GitLab roles and the role of an Airflow user), ``access`` (a project's access
settings), ``actor`` (whose rights a run carries, and how it started) and ``decisions`` (each
GitLab rule, once). The api-server plugin, the operator and the CLI all call these; see
docs/security.md. Never imports Airflow.
"""

from airflow_ci_vars.permissions.access import (
    ACCESS_FIELDS,
    DEFAULT_BRANCH,
    ProjectAccess,
    ProtectedEnvironment,
    ProtectedRef,
    access_document,
    parse_access,
)
from airflow_ci_vars.permissions.actor import (
    STAMP_KEY,
    Actor,
    RunTrigger,
    answer_stamp,
    read_answer_stamp,
    read_stamp,
    run_trigger,
    trigger_stamp,
)
from airflow_ci_vars.permissions.decisions import (
    PipelineVariablesForbiddenError,
    check_deploy,
    check_downstream,
    check_job_token,
    check_pipeline_variables,
    check_play,
    check_run,
    may_deploy,
    may_run_anywhere,
    may_run_on,
    may_set_pipeline_variables,
)
from airflow_ci_vars.permissions.roles import (
    ACCESS_LEVELS,
    AIRFLOW_ROLES,
    ALLOWED_ROLES,
    MINIMUM_ROLES,
    gitlab_role,
    has_role,
)

__all__ = [
    "ACCESS_FIELDS",
    "ACCESS_LEVELS",
    "AIRFLOW_ROLES",
    "ALLOWED_ROLES",
    "DEFAULT_BRANCH",
    "MINIMUM_ROLES",
    "STAMP_KEY",
    "Actor",
    "PipelineVariablesForbiddenError",
    "ProjectAccess",
    "ProtectedEnvironment",
    "ProtectedRef",
    "RunTrigger",
    "access_document",
    "answer_stamp",
    "check_deploy",
    "check_downstream",
    "check_job_token",
    "check_pipeline_variables",
    "check_play",
    "check_run",
    "gitlab_role",
    "has_role",
    "may_deploy",
    "may_run_anywhere",
    "may_run_on",
    "may_set_pipeline_variables",
    "parse_access",
    "read_answer_stamp",
    "read_stamp",
    "run_trigger",
    "trigger_stamp",
]
