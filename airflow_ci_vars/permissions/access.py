"""A project's access settings: protected refs and environments, members, who sets variables, who reads it.

These are GitLab's project settings that decide *who* may do *what*:

- ``protected_refs`` (GitLab's protected branches and tags, R: ``protected_branch.rb``,
  ``ref_matcher.rb``): a pattern (``*`` matches any run of characters, ``/`` included) and the
  role allowed to run pipelines on matching refs (GitLab's "Allowed to merge/push"). A plain
  string means ``allowed_to_run: maintainer``, GitLab's default for a new protected branch.
  Left out, the default branch is protected, as GitLab protects it in a new project.
- ``protected_environments`` (R: ``ee/app/models/protected_environment.rb``): a name (``*``
  globs as in environment scopes) and the role allowed to deploy to matching environments.
- ``pipeline_variables_minimum_role`` (spec §10) and ``members`` (user -> GitLab role).
- ``schedule_owner``: the user whose rights scheduled runs carry (GitLab's schedule owner).
- ``ci_job_token_allowlist`` (GitLab's CI/CD job token allowlist, R: ``Ci::JobToken::Scope``):
  the other projects allowed to read this project's jobs (``needs:project``) and to trigger its
  pipelines. A project is always allowed to read itself; nothing else by default.

``parse_access`` is the one validator of these settings, for the settings file and Vault
records alike: each problem is reported with the path of the offending value, never a value of a
variable. Never imports Airflow.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from airflow_ci_vars.permissions.roles import ACCESS_LEVELS, ALLOWED_ROLES, MINIMUM_ROLES
from airflow_ci_vars.variables.scopes import matches_environment_scope, matches_ref_pattern

__all__ = [
    "ACCESS_FIELDS",
    "DEFAULT_BRANCH",
    "ProjectAccess",
    "ProtectedEnvironment",
    "ProtectedRef",
    "Report",
    "access_document",
    "parse_access",
]

DEFAULT_BRANCH = "main"
#: The settings keys this module owns (in a settings file, at the top or under ``projects.<path>``).
ACCESS_FIELDS = (
    "default_branch",
    "protected_refs",
    "protected_environments",
    "pipeline_variables_minimum_role",
    "members",
    "schedule_owner",
    "ci_job_token_allowlist",
)
#: The default of ``allowed_to_run`` / ``allowed_to_deploy`` (GitLab's default for a new protection).
DEFAULT_ALLOWED = "maintainer"
_PROJECT_PATTERN = re.compile(r"[A-Za-z0-9_.*-]+(?:/[A-Za-z0-9_.*-]+)*", re.ASCII)

#: ``report(message, path)``: a problem at ``path`` (keys and list indexes from the document's root).
Report = Callable[[str, tuple[str | int, ...]], None]


@dataclass(frozen=True, slots=True)
class ProtectedRef:
    """A protected branch or tag pattern, and the role allowed to run pipelines on it."""

    name: str
    allowed_to_run: str = DEFAULT_ALLOWED

    def matches(self, ref: str) -> bool:
        """GitLab's ``RefMatcher``: ``*`` is any run of characters, anything else literal, whole ref."""
        return matches_ref_pattern(self.name, ref)


@dataclass(frozen=True, slots=True)
class ProtectedEnvironment:
    """A protected environment name (``*`` globs allowed), and the role allowed to deploy to it."""

    name: str
    allowed_to_deploy: str = DEFAULT_ALLOWED

    def matches(self, environment: str) -> bool:
        """Matched as an environment scope is (``*`` alone protects every environment)."""
        return matches_environment_scope(self.name, environment)


@dataclass(frozen=True, slots=True)
class ProjectAccess:
    """The access settings of one project (immutable). See the module docstring.

    ``protected_refs`` None means "not configured": the default branch is protected.
    """

    default_branch: str = DEFAULT_BRANCH
    protected_refs: tuple[ProtectedRef, ...] | None = None
    protected_environments: tuple[ProtectedEnvironment, ...] = ()
    pipeline_variables_minimum_role: str | None = None
    members: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    schedule_owner: str | None = None
    job_token_allowlist: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "members", MappingProxyType(dict(self.members)))
        if self.protected_refs is not None:
            object.__setattr__(self, "protected_refs", tuple(self.protected_refs))
        object.__setattr__(self, "protected_environments", tuple(self.protected_environments))
        object.__setattr__(self, "job_token_allowlist", tuple(self.job_token_allowlist))

    @property
    def ref_rules(self) -> tuple[ProtectedRef, ...]:
        """The protected ref patterns in force (the default branch when none are configured)."""
        if self.protected_refs is None:
            return (ProtectedRef(self.default_branch),)
        return self.protected_refs

    def rules_for_ref(self, ref: str | None) -> tuple[ProtectedRef, ...]:
        """The protected ref patterns matching ``ref`` (empty: the ref is not protected)."""
        if not ref:
            return ()
        return tuple(rule for rule in self.ref_rules if rule.matches(ref))

    def is_protected(self, ref: str | None) -> bool:
        """Whether ``ref`` is a protected branch or tag (protected variables apply to its pipelines)."""
        return bool(self.rules_for_ref(ref))

    def rules_for_environment(self, environment: str | None) -> tuple[ProtectedEnvironment, ...]:
        """The protected environment entries matching ``environment`` (empty: not protected)."""
        if not environment:
            return ()
        return tuple(rule for rule in self.protected_environments if rule.matches(environment))

    def allows_job_token_from(self, project: str, *, own: str) -> bool:
        """Whether a job of ``project`` may read this project (``own``): itself, or an allowlist match."""
        if project.strip("/") == own.strip("/"):
            return True
        return any(matches_ref_pattern(pattern, project.strip("/")) for pattern in self.job_token_allowlist)


def parse_access(doc: Mapping[str, Any], report: Report, *, base: ProjectAccess | None = None) -> ProjectAccess:
    """The access settings in ``doc`` (plain data: a YAML mapping or a Vault record).

    Keys ``doc`` leaves out keep ``base``'s values (the defaults of a settings file apply to each
    of its projects). Unknown keys are the caller's business. Each problem is reported once, with
    the path of the offending value; the returned settings keep the base's value for that key.
    """
    found = base or ProjectAccess()
    changes: dict[str, Any] = {}
    if "default_branch" in doc:
        branch = _name(doc["default_branch"], ("default_branch",), report, "default_branch")
        if branch is not None:
            changes["default_branch"] = branch
    if "protected_refs" in doc:
        refs = _rules(doc["protected_refs"], "protected_refs", "allowed_to_run", report)
        if refs is not None:
            changes["protected_refs"] = tuple(ProtectedRef(n, r) for n, r in refs)
    if "protected_environments" in doc:
        envs = _rules(doc["protected_environments"], "protected_environments", "allowed_to_deploy", report)
        if envs is not None:
            changes["protected_environments"] = tuple(ProtectedEnvironment(n, r) for n, r in envs)
    if "pipeline_variables_minimum_role" in doc:
        key = "pipeline_variables_minimum_role"
        value = doc[key]
        if value is None or value in MINIMUM_ROLES:
            changes[key] = value
        else:
            report(f"{key} must be one of: {', '.join(MINIMUM_ROLES)}", (key,))
    if "members" in doc:
        members = _members(doc["members"], report)
        if members is not None:
            changes["members"] = members
    if "schedule_owner" in doc:
        owner = doc["schedule_owner"]
        if owner is None:
            changes["schedule_owner"] = None
        else:
            name = _name(owner, ("schedule_owner",), report, "schedule_owner")
            if name is not None:
                changes["schedule_owner"] = name
    if "ci_job_token_allowlist" in doc:
        allowlist = _allowlist(doc["ci_job_token_allowlist"], report)
        if allowlist is not None:
            changes["job_token_allowlist"] = allowlist
    return replace(found, **changes)


def access_document(access: ProjectAccess, *, base: ProjectAccess | None = None) -> dict[str, Any]:
    """The settings document of ``access`` (keys equal to ``base``'s, or the defaults, left out)."""
    base = base or ProjectAccess()
    out: dict[str, Any] = {}
    if access.default_branch != base.default_branch:
        out["default_branch"] = access.default_branch
    if access.protected_refs is not None and access.protected_refs != base.protected_refs:
        out["protected_refs"] = [
            _rule_document(r.name, "allowed_to_run", r.allowed_to_run) for r in access.protected_refs
        ]
    if access.protected_environments != base.protected_environments:
        out["protected_environments"] = [
            _rule_document(e.name, "allowed_to_deploy", e.allowed_to_deploy) for e in access.protected_environments
        ]
    if access.pipeline_variables_minimum_role != base.pipeline_variables_minimum_role:
        out["pipeline_variables_minimum_role"] = access.pipeline_variables_minimum_role
    if dict(access.members) != dict(base.members):
        out["members"] = dict(access.members)
    if access.schedule_owner != base.schedule_owner:
        out["schedule_owner"] = access.schedule_owner
    if access.job_token_allowlist != base.job_token_allowlist:
        out["ci_job_token_allowlist"] = list(access.job_token_allowlist)
    return out


def _rule_document(name: str, role_key: str, role: str) -> str | dict[str, str]:
    return name if role == DEFAULT_ALLOWED else {"name": name, role_key: role}


def _name(value: object, path: tuple[str | int, ...], report: Report, what: str) -> str | None:
    """A non-empty name as written (integers, as YAML reads ``2024``, are names too)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        report(f"{what} must be a non-empty string", path)
        return None
    return str(value).strip()


def _rules(value: object, setting: str, role_key: str, report: Report) -> list[tuple[str, str]] | None:
    """``[name, {name: ..., <role_key>: role}, ...]``; None after a problem with the list itself."""
    if value is None:
        return []
    if not isinstance(value, list):
        report(f"{setting} must be a list of names or {{name: ..., {role_key}: ...}} entries", (setting,))
        return None
    out: list[tuple[str, str]] = []
    for index, item in enumerate(value):
        where = f"{setting} entry {index + 1}"
        if isinstance(item, Mapping):
            unknown = [str(k) for k in item if k not in ("name", role_key)]
            for key in unknown:
                report(f"{where}: unknown key '{key}' (allowed: name, {role_key})", (setting, index, key))
            if "name" not in item:
                report(f"{where}: missing 'name'", (setting, index))
                continue
            name = _name(item["name"], (setting, index, "name"), report, f"{where}: name")
            role = item.get(role_key, DEFAULT_ALLOWED)
            if role not in ALLOWED_ROLES:
                report(f"{where}: {role_key} must be one of: {', '.join(ALLOWED_ROLES)}", (setting, index, role_key))
                continue
            if name is not None and not unknown:
                out.append((name, str(role)))
        else:
            name = _name(item, (setting, index), report, where)
            if name is not None:
                out.append((name, DEFAULT_ALLOWED))
    return out


def _members(value: object, report: Report) -> dict[str, str] | None:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        report("members must be a mapping of user names to roles", ("members",))
        return None
    out: dict[str, str] = {}
    for user, role in value.items():
        if role not in ACCESS_LEVELS:
            report(f"members: role of '{user}' must be one of: {', '.join(ACCESS_LEVELS)}", ("members", str(user)))
            continue
        out[str(user)] = str(role)
    return out


def _allowlist(value: object, report: Report) -> tuple[str, ...] | None:
    if value is None:
        return ()
    if not isinstance(value, list):
        report(
            "ci_job_token_allowlist must be a list of project paths (a '*' matches any characters)",
            ("ci_job_token_allowlist",),
        )
        return None
    out: list[str] = []
    for index, item in enumerate(value):
        path = ("ci_job_token_allowlist", index)
        text = item.strip().strip("/") if isinstance(item, str) else ""
        if not _PROJECT_PATTERN.fullmatch(text) or {".", ".."} & set(text.split("/")):
            report(
                f"ci_job_token_allowlist entry {index + 1} must be a project path such as acme/app or acme/*",
                path,
            )
            continue
        out.append(text)
    return tuple(out)
