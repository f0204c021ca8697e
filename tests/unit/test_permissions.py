"""GitLab's permission model, pure: roles, access settings, whose rights a run carries, each decision."""

from __future__ import annotations

import pickle

import pytest

from airflow_ci_vars.errors import AccessDeniedError, SettingsError
from airflow_ci_vars.parameters import restricted_conf
from airflow_ci_vars.permissions import (
    Actor,
    PipelineVariablesForbiddenError,
    ProjectAccess,
    ProtectedEnvironment,
    ProtectedRef,
    check_deploy,
    check_downstream,
    check_job_token,
    check_pipeline_variables,
    check_play,
    check_run,
    gitlab_role,
    may_deploy,
    may_set_pipeline_variables,
    read_stamp,
    run_trigger,
    trigger_stamp,
)
from airflow_ci_vars.settings import parse_settings

BOB = Actor("user", "bob", ("user",))
ACCESS = ProjectAccess(
    protected_refs=(
        ProtectedRef("main"),
        ProtectedRef("release/*", "developer"),
        ProtectedRef("frozen", "no_one_allowed"),
    ),
    protected_environments=(ProtectedEnvironment("production"), ProtectedEnvironment("review/*", "developer")),
)


def run_ok(role: str | None, ref: str) -> bool:
    try:
        check_run(ACCESS, BOB, role, ref, project="acme/etl")
    except AccessDeniedError:
        return False
    return True


# --- roles ---------------------------------------------------------------------------------


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


def test_a_deployment_maps_its_own_airflow_roles() -> None:
    mapping = {"DataEngineer": "maintainer", "user": "developer"}
    assert gitlab_role("erin", airflow_roles=["dataengineer"], mapping=mapping) == "maintainer"
    assert gitlab_role("erin", airflow_roles=["Admin"], mapping=mapping) is None  # not in this mapping


# --- protected refs: who may run --------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "ref", "allowed"),
    [
        ("developer", "feature/x", True),  # unprotected: any developer
        ("reporter", "feature/x", False),  # reporters never create pipelines
        (None, "feature/x", False),  # an unknown user has no rights at all
        ("developer", "main", False),  # a plain name: maintainers
        ("maintainer", "main", True),
        ("owner", "main", True),
        ("developer", "release/1.0", True),  # allowed_to_run: developer
        ("reporter", "release/1.0", False),
        ("owner", "frozen", False),  # no one, not even an owner
    ],
)
def test_who_may_run_on_which_ref(role: str | None, ref: str, allowed: bool) -> None:
    assert run_ok(role, ref) is allowed


def test_any_matching_protected_ref_that_allows_the_user_is_enough() -> None:
    # R: ProtectedBranch.protected_ref_accessible_to? -- access_levels_for_ref(ref).any?
    access = ProjectAccess(protected_refs=(ProtectedRef("release/*"), ProtectedRef("release/1.*", "developer")))
    check_run(access, BOB, "developer", "release/1.0", project="p")
    with pytest.raises(AccessDeniedError):
        check_run(access, BOB, "developer", "release/2.0", project="p")


def test_the_refusal_quotes_gitlab_and_says_who_and_which_rule() -> None:
    with pytest.raises(AccessDeniedError) as err:
        check_run(ACCESS, BOB, "developer", "main", project="acme/etl")
    text = str(err.value)
    assert text.startswith("You do not have sufficient permission to run a pipeline on 'main'.")
    assert "protected ref 'main': allowed to run: maintainer" in text
    assert "user 'bob' has role developer in project acme/etl" in text
    assert err.value.reason == "protected_ref"
    with pytest.raises(AccessDeniedError) as err:
        check_run(ACCESS, BOB, None, "feature/x", project="acme/etl")
    assert str(err.value).startswith("Insufficient permissions to create a new pipeline: user 'bob' has no role")


def test_access_denied_survives_pickling() -> None:
    err = AccessDeniedError("m", reason="protected_ref")
    back = pickle.loads(pickle.dumps(err))
    assert (type(back), str(back), back.reason) == (AccessDeniedError, "m", "protected_ref")


# --- protected environments: who may deploy ----------------------------------------------------


@pytest.mark.parametrize(
    ("role", "environment", "allowed"),
    [
        ("developer", None, True),  # no environment
        ("developer", "staging", True),  # not protected
        ("developer", "production", False),
        ("maintainer", "production", True),
        ("developer", "review/feature-x", True),
        ("reporter", "review/feature-x", False),
    ],
)
def test_who_may_deploy_where(role: str | None, environment: str | None, allowed: bool) -> None:
    assert may_deploy(ACCESS, role, environment) is allowed


def test_every_protected_environment_entry_matching_must_allow_the_deployer() -> None:
    access = ProjectAccess(
        protected_environments=(ProtectedEnvironment("*", "developer"), ProtectedEnvironment("prod"))
    )
    assert may_deploy(access, "developer", "staging")
    assert not may_deploy(access, "developer", "prod")
    with pytest.raises(AccessDeniedError) as err:
        check_deploy(access, BOB, "developer", "prod", project="acme/etl")
    assert str(err.value).startswith(
        "The environment this job is deploying to is protected. Only users with permission may successfully run"
    )
    assert "environment 'prod'" in str(err.value) and err.value.reason == "protected_environment_failure"


# --- manual jobs: who may play -------------------------------------------------------------------


def test_playing_needs_developer_the_refs_run_rights_and_the_environments_deploy_rights() -> None:
    def play(role: str | None, ref: str = "feature", environment: str | None = None, variables: tuple[str, ...] = ()):
        check_play(ACCESS, BOB, role, project="p", job="deploy", ref=ref, environment=environment, variables=variables)

    play("developer")
    play("developer", environment="review/x")
    for role, kwargs in [
        ("reporter", {}),
        ("developer", {"ref": "main"}),
        ("developer", {"environment": "production"}),
    ]:
        with pytest.raises(AccessDeniedError) as err:
            play(role, **kwargs)  # type: ignore[arg-type]
        assert str(err.value).startswith("Insufficient permissions to play this manual job 'deploy'")
    play("maintainer", ref="main", environment="production")
    restricted = ProjectAccess(pipeline_variables_minimum_role="maintainer")
    with pytest.raises(PipelineVariablesForbiddenError):
        check_play(restricted, BOB, "developer", project="p", job="j", ref="x", environment=None, variables=["K"])
    check_play(restricted, BOB, "developer", project="p", job="j", ref="x", environment=None)


# --- pipeline variables ------------------------------------------------------------------------


def test_a_run_setting_restricted_keys_is_refused_with_gitlabs_message() -> None:
    access = ProjectAccess(pipeline_variables_minimum_role="maintainer")
    with pytest.raises(PipelineVariablesForbiddenError) as err:
        check_pipeline_variables(["variables", "environment"], access, BOB, "developer", project="acme/etl")
    text = str(err.value)
    assert text.startswith("Insufficient permissions to set pipeline variables: user 'bob' has role developer")
    assert (
        "minimum role for pipeline variables is maintainer" in text and "(the run sets: variables, environment)" in text
    )
    check_pipeline_variables([], access, BOB, None, project="acme/etl")  # nothing set: never refused
    check_pipeline_variables(["variables"], access, BOB, "owner", project="acme/etl")


def test_what_counts_as_setting_pipeline_variables() -> None:
    prefilled = {"DEPLOY_ENV": "staging"}
    assert restricted_conf({}) == []
    assert restricted_conf({"variables": {}, "build_parameters": None, "environment": None}, prefilled) == []
    # what Airflow's trigger form submits untouched: the prefilled defaults, empty maps, ref null
    assert restricted_conf({"variables": {}, "DEPLOY_ENV": "staging", "ref": None}, prefilled) == []
    assert restricted_conf({"ref": "main", "sha": "a" * 40, "inputs": {"x": 1}}, prefilled) == []
    assert restricted_conf(
        {"variables": {"A": "1"}, "build_parameters": {"B": 2}, "environment": "production", "manual": []}
    ) == ["variables", "build_parameters", "environment", "manual"]
    assert restricted_conf({"DEPLOY_ENV": "production"}, prefilled) == ["variable DEPLOY_ENV"]


# --- job token allowlist -------------------------------------------------------------------------


def test_the_job_token_allowlist_lets_listed_projects_read_and_trigger() -> None:
    source = ProjectAccess(job_token_allowlist=("acme/app-deploy", "acme/data/*"))
    check_job_token("acme/app", source, "acme/app", what="needs:project")  # itself, always
    check_job_token("acme/app", source, "acme/app-deploy", what="needs:project")
    check_job_token("acme/app", source, "acme/data/etl/sub", what="needs:project")  # '*' crosses '/'
    with pytest.raises(AccessDeniedError) as err:
        check_job_token("acme/app", source, "evil/app", what="needs:project")
    assert str(err.value).startswith("Authentication by CI/CD job token not allowed from evil/app to acme/app.")
    assert "acme/app's ci_job_token_allowlist does not list evil/app" in str(err.value)
    with pytest.raises(AccessDeniedError) as err:
        check_job_token("acme/app", ProjectAccess(), "acme/app-deploy", what="needs:project")  # default: itself only
    with pytest.raises(AccessDeniedError) as err:
        check_downstream("acme/app", ProjectAccess(), "acme/etl")
    assert str(err.value).startswith("This job could not be executed because of insufficient permissions to create")
    assert err.value.reason == "insufficient_bridge_permissions"


# --- whose rights a run carries --------------------------------------------------------------------


def simple_roles(user: str | None) -> list[str] | None:
    return {"bob": ["user"], "alice": ["op"]}.get(user or "", [])


def fab_roles(user: str | None) -> list[str] | None:
    return None  # a worker cannot read them


def test_a_rest_run_acts_for_its_triggering_user_with_the_roles_the_worker_can_read() -> None:
    trigger = run_trigger(run_type="manual", triggering_user="bob", conf={}, schedule_owner=None, roles_of=simple_roles)
    assert (trigger.source, trigger.actor) == ("api", Actor("user", "bob", ("user",)))
    assert trigger.actor.role_in(ProjectAccess()) == "developer"


def test_a_stamp_forged_for_another_user_or_with_other_roles_counts_for_nothing() -> None:
    forged = {"ci_trigger": trigger_stamp("web", Actor("user", "bob", ("admin",)))}
    trigger = run_trigger(
        run_type="manual", triggering_user="bob", conf=forged, schedule_owner=None, roles_of=simple_roles
    )
    assert trigger.actor.airflow_roles == ("user",)  # the worker reads Simple roles itself
    assert trigger.source == "web"
    other = {"ci_trigger": trigger_stamp("api", Actor("user", "alice", ("op",)))}
    trigger = run_trigger(
        run_type="manual", triggering_user="bob", conf=other, schedule_owner=None, roles_of=simple_roles
    )
    assert trigger.actor == Actor("user", "bob", ("user",))
    assert read_stamp({"ci_trigger": {"source": "api", "roles": "admin"}}) is None


def test_a_stamp_carries_the_roles_of_an_auth_manager_workers_cannot_read() -> None:
    conf = {"ci_trigger": trigger_stamp("api", Actor("user", "carol", ("Op",)))}
    trigger = run_trigger(
        run_type="manual", triggering_user="carol", conf=conf, schedule_owner=None, roles_of=fab_roles
    )
    assert trigger.actor.role_in(ProjectAccess()) == "maintainer"
    unstamped = run_trigger(
        run_type="manual", triggering_user="carol", conf={}, schedule_owner=None, roles_of=fab_roles
    )
    assert unstamped.actor.role_in(ProjectAccess()) is None  # an unknown user has no rights
    assert unstamped.actor.role_in(ProjectAccess(members={"carol": "developer"})) == "developer"


def test_a_schedule_carries_its_owners_rights_or_the_deployments_maintainer_rights() -> None:
    owned = run_trigger(
        run_type="scheduled", triggering_user=None, conf={}, schedule_owner="bob", roles_of=simple_roles
    )
    assert (owned.source, owned.actor.role_in(ProjectAccess())) == ("schedule", "developer")
    plain = run_trigger(run_type="scheduled", triggering_user=None, conf={}, schedule_owner=None, roles_of=simple_roles)
    assert plain.actor.role_in(ProjectAccess()) == "maintainer"
    asset = run_trigger(
        run_type="asset_triggered", triggering_user=None, conf={}, schedule_owner=None, roles_of=simple_roles
    )
    assert asset.source == "pipeline"


def test_a_downstream_run_acts_for_the_upstream_user_and_names_the_upstream_project() -> None:
    conf = {"ci_trigger": trigger_stamp("pipeline", Actor("user", "bob", ("user",)), upstream_project="acme/a")}
    trigger = run_trigger(
        run_type="manual", triggering_user="bob", conf=conf, schedule_owner=None, roles_of=simple_roles
    )
    assert (trigger.source, trigger.actor.user, trigger.upstream_project) == ("pipeline", "bob", "acme/a")
    # A caller cannot claim to be a downstream run of someone else's, nor of a schedule.
    as_alice = {"ci_trigger": trigger_stamp("pipeline", Actor("user", "alice", ("op",)), upstream_project="acme/a")}
    trigger = run_trigger(
        run_type="manual", triggering_user="bob", conf=as_alice, schedule_owner=None, roles_of=simple_roles
    )
    assert (trigger.source, trigger.actor.user) == ("api", "bob")
    as_schedule = {"ci_trigger": trigger_stamp("pipeline", Actor("schedule"), upstream_project="acme/a")}
    trigger = run_trigger(
        run_type="manual", triggering_user="bob", conf=as_schedule, schedule_owner=None, roles_of=simple_roles
    )
    assert trigger.actor.kind == "user"


def test_a_local_run_is_trusted_and_may_name_its_source() -> None:
    trigger = run_trigger(
        run_type="manual", triggering_user="dag_test", conf={}, schedule_owner=None, roles_of=simple_roles,
        local=True, local_source="push",
    )  # fmt: skip
    assert (trigger.source, trigger.actor.role_in(ACCESS)) == ("push", "owner")


# --- the settings ------------------------------------------------------------------------------------


def test_settings_file_carries_the_access_settings() -> None:
    settings = parse_settings(
        "pipeline_variables_minimum_role: maintainer\n"
        "members: {alice: owner, bob: developer}\n"
        "protected_refs: [main, {name: 'release/*', allowed_to_run: developer}]\n"
        "protected_environments: [{name: production, allowed_to_deploy: owner}, staging]\n"
        "schedule_owner: alice\n"
        "ci_job_token_allowlist: [acme/deploy]\n"
        "projects:\n"
        "  acme/app:\n"
        "    members: {bob: maintainer}\n"
        "    ci_job_token_allowlist: ['acme/*']\n"
    )
    assert settings.access().pipeline_variables_minimum_role == "maintainer"
    assert dict(settings.access().members) == {"alice": "owner", "bob": "developer"}
    etl = settings.access("acme/etl")
    assert etl.protected_refs == (ProtectedRef("main"), ProtectedRef("release/*", "developer"))
    assert etl.protected_environments == (ProtectedEnvironment("production", "owner"), ProtectedEnvironment("staging"))
    assert (etl.schedule_owner, etl.job_token_allowlist) == ("alice", ("acme/deploy",))
    app = settings.access("acme/app")  # its own keys replace the file's, the others are the file's
    assert (dict(app.members), app.job_token_allowlist) == ({"bob": "maintainer"}, ("acme/*",))
    assert app.protected_environments == etl.protected_environments
    assert parse_settings("project: a/b\n").access().pipeline_variables_minimum_role is None


def test_settings_file_refuses_bad_access_settings_with_their_lines() -> None:
    with pytest.raises(SettingsError) as err:
        parse_settings(
            "pipeline_variables_minimum_role: admin\n"
            "members:\n"
            "  alice: boss\n"
            "protected_refs:\n"
            "  - main\n"
            "  - {name: prod, allowed_to_run: admin}\n"
            "protected_environments: production\n"
            "ci_job_token_allowlist: ['../etc']\n"
            "projects:\n"
            "  acme/app:\n"
            "    protected_refs: [{allowed_to_run: owner}]\n",
            file="s.yml",
        )
    text = str(err.value)
    assert "s.yml:1: pipeline_variables_minimum_role must be one of: no_one_allowed" in text
    assert "s.yml:3: members: role of 'alice' must be one of: guest, reporter" in text
    assert "s.yml:6: protected_refs entry 2: allowed_to_run must be one of: developer, maintainer, owner" in text
    assert "s.yml:7: protected_environments must be a list" in text
    assert "s.yml:8: ci_job_token_allowlist entry 1 must be a project path" in text
    assert "s.yml:11: projects: acme/app: protected_refs entry 1: missing 'name'" in text


def test_an_answers_stamp_counts_only_for_the_user_airflow_recorded_as_answering() -> None:
    from airflow_ci_vars.permissions import answer_stamp, read_answer_stamp

    olga = Actor("user", "olga", ("Op",))
    assert read_answer_stamp({"ci_trigger": answer_stamp(olga)}, "olga") == ("Op",)
    assert read_answer_stamp({"ci_trigger": answer_stamp(olga)}, "bob") is None  # bob typed olga's stamp
    assert read_answer_stamp({"ci_trigger": {"user": "bob", "roles": "Admin"}}, "bob") is None
    assert read_answer_stamp({"ci_trigger": {"user": "bob", "roles": ["Admin"] * 65}}, "bob") is None
    assert read_answer_stamp({}, "bob") is None
