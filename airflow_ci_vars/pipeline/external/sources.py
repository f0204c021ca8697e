"""The deployment's include sources: which git repository a project path is, where templates are, which hosts.

GitLab answers ``include:project`` and ``include:component`` from its own projects; a deployment
of this provider says instead, for each project path its pipelines may include, which git
repository holds it (``projects``). That map is also the allowlist of git sources: a path not in
it cannot be included, and a project may restrict who includes it (``included_by``). Remote
files may only come from the hosts or URL prefixes of ``remote_allowed``; templates from the
``templates_dir`` folder. ``parse_include_sources`` is the one validator of this configuration,
whichever file or option it came from; the Airflow shell (``airflow_ci_vars.include_settings``)
reads ``[ci_vars]`` and the settings file and resolves credentials from Airflow connections.

Nothing here imports Airflow.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from airflow_ci_vars.errors import SettingsError
from airflow_ci_vars.variables.scopes import matches_ref_pattern

__all__ = [
    "DEFAULT_GIT_REFRESH",
    "DEFAULT_REMOTE_TTL",
    "DEFAULT_SERVER_FQDN",
    "DEFAULT_TIMEOUT",
    "DEFAULT_TOTAL_TIMEOUT",
    "GitProject",
    "IncludeSources",
    "parse_git_projects",
    "parse_include_sources",
]

#: Seconds a git remote's refs are trusted before they are fetched again (``include_git_refresh``).
DEFAULT_GIT_REFRESH = 300.0
#: Seconds a remote file is trusted before it is fetched again (``include_remote_ttl``).
DEFAULT_REMOTE_TTL = 3600.0
#: Seconds any one git or HTTP call may take (``include_timeout``).
DEFAULT_TIMEOUT = 30.0
#: Seconds a whole load may spend reading includes from git and HTTP (GitLab's ``Config::TIMEOUT_SECONDS``).
DEFAULT_TOTAL_TIMEOUT = 30.0
#: ``$CI_SERVER_FQDN`` when the deployment names no server (``include_server_fqdn``).
DEFAULT_SERVER_FQDN = "gitlab.com"

_PROJECT_PATH = re.compile(r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+", re.ASCII)
_FQDN = re.compile(r"[A-Za-z0-9.-]+(?::\d+)?", re.ASCII)
_PROJECT_FIELDS = ("git", "git_conn_id", "default_branch", "included_by")

#: ``credentials(conn_id) -> (username, password)`` (None: no such connection).
Credentials = Callable[[str], "tuple[str, str] | None"]
#: ``headers(url) -> extra HTTP headers`` for ``include:remote`` (an Authorization for a host).
RemoteHeaders = Callable[[str], Mapping[str, str]]


@dataclass(frozen=True, slots=True)
class GitProject:
    """A project path and the git repository that holds it.

    ``url`` is any URL ``git`` clones (``https://``, ``ssh://``, ``git://``, ``file://``) or an
    absolute path; ``conn_id`` an Airflow connection whose login and password authenticate to
    it (never written in the URL); ``default_branch`` the ref of an include without ``ref``
    (default: the remote's ``HEAD``); ``included_by`` the project paths (``*`` globs) whose
    pipelines may include it.
    """

    path: str
    url: str
    conn_id: str | None = None
    default_branch: str | None = None
    included_by: tuple[str, ...] = ("*",)

    def may_be_included_by(self, project: str | None) -> bool:
        """Whether a pipeline of ``project`` may include this project (``included_by``)."""
        if self.included_by == ("*",):
            return True
        return project is not None and any(matches_ref_pattern(p, project.lower()) for p in self.included_by)


@dataclass(frozen=True, slots=True)
class IncludeSources:
    """Where every kind of include reads from (module docstring). The default reads ``include:local`` only.

    ``cache_dir`` holds the bare git mirrors and the remote files (private to the deployment);
    ``offline`` forbids every network and git-remote call (``lint --offline``): only what the
    cache holds is used. ``timeout`` bounds each git or HTTP call, ``total_timeout`` all of a load's
    (checked before each include read from git or HTTP, as GitLab checks its deadline).
    """

    projects: Mapping[str, GitProject] = field(default_factory=lambda: MappingProxyType({}))
    templates_dir: str | None = None
    cache_dir: str | None = None
    remote_allowed: tuple[str, ...] = ()
    remote_ttl: float = DEFAULT_REMOTE_TTL
    git_refresh: float = DEFAULT_GIT_REFRESH
    timeout: float = DEFAULT_TIMEOUT
    total_timeout: float = DEFAULT_TOTAL_TIMEOUT
    server_fqdn: str = DEFAULT_SERVER_FQDN
    offline: bool = False
    credentials: Credentials | None = field(default=None, compare=False, repr=False)
    remote_headers: RemoteHeaders | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "projects", MappingProxyType({k.lower(): v for k, v in self.projects.items()}))
        object.__setattr__(self, "remote_allowed", tuple(self.remote_allowed))

    def project(self, path: str) -> GitProject | None:
        """The configured project of ``path`` (case-insensitive, as GitLab finds projects), or None."""
        return self.projects.get(path.strip("/").lower())

    def fingerprint(self) -> str:
        """Everything that changes what a load reads, as stable text (the parse cache's key; no credentials)."""
        return json.dumps(
            {
                "projects": {
                    path: [p.url, p.conn_id, p.default_branch, list(p.included_by)]
                    for path, p in sorted(self.projects.items())
                },
                "templates": self.templates_dir,
                "cache": self.cache_dir,
                "remote_allowed": list(self.remote_allowed),
                "fqdn": self.server_fqdn,
            },
            sort_keys=True,
        )


def parse_git_projects(document: object, *, where: str) -> dict[str, GitProject]:
    """``{path: {git, git_conn_id, default_branch, included_by}}`` (or ``{path: url}``) -> projects.

    Entries without ``git`` are skipped (a settings file's project may only hold variables).
    Raises ``SettingsError`` naming ``where`` and the project, with every problem found.
    """
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        raise SettingsError(f"{where}: must be a mapping of project paths to git repositories")
    problems: list[str] = []
    out: dict[str, GitProject] = {}
    for raw_path, entry in document.items():
        path = str(raw_path).strip("/")
        if not _PROJECT_PATH.fullmatch(path):
            problems.append(f"{where}: {raw_path!s}: not a project path (group/project)")
            continue
        if isinstance(entry, str):
            entry = {"git": entry}
        if not isinstance(entry, Mapping):
            problems.append(f"{where}: {path}: must be a git URL or a mapping with `git`")
            continue
        if entry.get("git") is None:
            continue
        unknown = [str(k) for k in entry if k not in _PROJECT_FIELDS]
        if unknown:
            problems.append(f"{where}: {path}: unknown keys {', '.join(unknown)}")
            continue
        project = _git_project(path, entry, f"{where}: {path}", problems)
        if project is not None:
            out[path.lower()] = project
    if problems:
        raise SettingsError("; ".join(problems))
    return out


def _git_project(path: str, entry: Mapping[object, object], where: str, problems: list[str]) -> GitProject | None:
    url, conn_id, branch, included_by = (entry.get(k) for k in _PROJECT_FIELDS)
    if not isinstance(url, str) or not url.strip():
        problems.append(f"{where}: git must be a URL or an absolute path")
        return None
    if "@" in url.split("://", 1)[-1].split("/", 1)[0] and "://" in url and not url.startswith("ssh://"):
        problems.append(f"{where}: git must not carry credentials in its URL; use git_conn_id")
        return None
    if conn_id is not None and not isinstance(conn_id, str):
        problems.append(f"{where}: git_conn_id must be a connection id")
        return None
    if branch is not None and not isinstance(branch, str):
        problems.append(f"{where}: default_branch must be a branch name")
        return None
    patterns: tuple[str, ...] = ("*",)
    if included_by is not None:
        items = [included_by] if isinstance(included_by, str) else included_by
        if not isinstance(items, Sequence) or not all(isinstance(i, str) and i for i in items):
            problems.append(f"{where}: included_by must be a list of project paths (* globs)")
            return None
        patterns = tuple(str(i).strip("/").lower() for i in items)
    return GitProject(path, url.strip(), conn_id, branch, patterns)


def parse_include_sources(
    options: Mapping[str, str],
    *,
    projects: Mapping[str, GitProject] | None = None,
    credentials: Credentials | None = None,
    remote_headers: RemoteHeaders | None = None,
    offline: bool = False,
) -> IncludeSources:
    """``IncludeSources`` from the ``[ci_vars] include_*`` options (strings, as Airflow's config gives them).

    ``include_projects`` (JSON), ``include_templates_dir``, ``include_cache_dir``,
    ``include_remote_allowed`` (comma- or space-separated), ``include_remote_ttl``,
    ``include_git_refresh``, ``include_timeout``, ``include_total_timeout`` (seconds),
    ``include_server_fqdn``. ``projects``
    (from the settings file) are added to those of ``include_projects``, which win. Raises
    ``SettingsError`` naming the option.
    """
    found = dict(projects or {})
    text = (options.get("include_projects") or "").strip()
    if text:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as err:
            raise SettingsError(f"[ci_vars] include_projects is not JSON: {err.msg} at column {err.colno}") from None
        found.update(parse_git_projects(document, where="[ci_vars] include_projects"))
    fqdn = (options.get("include_server_fqdn") or DEFAULT_SERVER_FQDN).strip()
    if not _FQDN.fullmatch(fqdn):
        raise SettingsError("[ci_vars] include_server_fqdn must be a host name (optionally with :port)")
    return IncludeSources(
        projects=found,
        templates_dir=(options.get("include_templates_dir") or "").strip() or None,
        cache_dir=(options.get("include_cache_dir") or "").strip() or None,
        remote_allowed=tuple(re.split(r"[\s,]+", (options.get("include_remote_allowed") or "").strip()))
        if (options.get("include_remote_allowed") or "").strip()
        else (),
        remote_ttl=_seconds(options, "include_remote_ttl", DEFAULT_REMOTE_TTL),
        git_refresh=_seconds(options, "include_git_refresh", DEFAULT_GIT_REFRESH),
        timeout=_seconds(options, "include_timeout", DEFAULT_TIMEOUT),
        total_timeout=_seconds(options, "include_total_timeout", DEFAULT_TOTAL_TIMEOUT),
        server_fqdn=fqdn,
        offline=offline,
        credentials=credentials,
        remote_headers=remote_headers,
    )


def _seconds(options: Mapping[str, str], name: str, default: float) -> float:
    text = (options.get(name) or "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise SettingsError(f"[ci_vars] {name} must be a number of seconds") from None
    if not value >= 0 or value > 10**9:
        raise SettingsError(f"[ci_vars] {name} must be a number of seconds (0 or more)")
    return value
