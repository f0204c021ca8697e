"""Who may set pipeline variables (spec §10, seed 001): roles, the minimum role, GitLab's message."""

from __future__ import annotations

import pytest

from airflow_ci_vars.errors import SettingsError
from airflow_ci_vars.permissions import (
    PipelineVariablesForbiddenError,
    check_pipeline_variables,
    gitlab_role,
    may_set_pipeline_variables,
)
from airflow_ci_vars.settings import parse_settings


@pytest.mark.parametrize(
    ("minimum", "role", "allowed"),
    [
        (None, None, True),  # not restricted: anyone, even without a role
        ("no_one_allowed", "owner", False),
        ("developer", "developer", True),
        ("developer", "reporter", False),
        ("maintainer", "developer", False),
        ("maintainer", "maintainer", True),
        ("maintainer", "owner", True),
        ("owner", "maintainer", False),
        ("owner", "owner", True),
        ("developer", None, False),  # a user unknown to the project
    ],
)
def test_minimum_role_compares_gitlab_access_levels(minimum: str | None, role: str | None, allowed: bool) -> None:
    assert may_set_pipeline_variables(minimum, role) is allowed


def test_project_members_win_over_airflow_roles() -> None:
    members = {"alice": "developer"}
    assert gitlab_role("alice", members=members, airflow_roles=["Admin"]) == "developer"
    assert gitlab_role("bob", members=members, airflow_roles=["Viewer", "Op"]) == "maintainer"  # highest role
    assert gitlab_role("carol", members=members, airflow_roles=["admin"]) == "owner"
    assert gitlab_role("dave", members=members, airflow_roles=["custom"]) is None


def test_a_run_with_variables_from_a_user_below_the_minimum_is_refused_with_gitlabs_message() -> None:
    with pytest.raises(PipelineVariablesForbiddenError) as err:
        check_pipeline_variables(True, minimum_role="maintainer", user="bob", role="developer")
    assert str(err.value).startswith("Insufficient permissions to set pipeline variables")
    assert "'bob'" in str(err.value) and "maintainer" in str(err.value)


def test_a_run_without_variables_is_never_refused() -> None:
    check_pipeline_variables(False, minimum_role="no_one_allowed", user="bob", role=None)


def test_settings_file_carries_the_minimum_role_and_members() -> None:
    settings = parse_settings("pipeline_variables_minimum_role: maintainer\nmembers: {alice: owner, bob: developer}\n")
    assert settings.pipeline_variables_minimum_role == "maintainer"
    assert dict(settings.members) == {"alice": "owner", "bob": "developer"}
    assert parse_settings("project: a/b\n").pipeline_variables_minimum_role is None


def test_settings_file_refuses_unknown_roles_with_their_lines() -> None:
    with pytest.raises(SettingsError) as err:
        parse_settings("pipeline_variables_minimum_role: admin\nmembers:\n  alice: boss\n", file="s.yml")
    text = str(err.value)
    assert "s.yml:1" in text and "pipeline_variables_minimum_role must be one of: no_one_allowed" in text
    assert "s.yml:3" in text and "members: role of 'alice' must be one of: guest, reporter" in text
