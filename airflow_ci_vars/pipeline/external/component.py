"""``include:component``: a component's address, its version, its file and its ``component.*`` context.

Pure rules only: the repository behind a project path (its tags, branches and commits) comes from
the caller (``git_repo``); nothing here runs ``git`` or imports Airflow. Sources (GitLab, R):
``lib/gitlab/ci/components/instance_path.rb`` (address, version), ``app/services/ci/components/
fetch_service.rb`` (messages), ``app/models/ci/catalog/components_project.rb`` (file paths),
``app/models/ci/catalog/resources/version.rb`` and ``app/models/concerns/semantic_versionable.rb``
(released versions), ``lib/gitlab/ci/config/external/file/component.rb`` (the context).

What GitLab does, and so what this module does:

- An address is ``<server fqdn>/<project path>/<name>@<version>``; it must contain ``@`` and
  start with the server's FQDN followed by ``/``, else "the component path is not supported".
  The last ``/`` of the path separates the project from the component name (GitLab's
  ``InstancePath#extract_project_path``): names are never nested (``dast/x`` is looked up as
  the project ``.../dast``), and an unknown project is "content not found". Project paths match
  case-insensitively, as GitLab's routes do; the address then carries the configured spelling.
- The version, in GitLab's order: ``~latest``; a partial version ``1`` / ``1.2`` (the latest
  released version of that major / minor); a released version written in full; a full commit
  SHA; a tag; a branch; an abbreviated SHA (git's rev-parse order). Pre-releases are never
  picked by ``~latest`` or a partial version.
- Without a CI/CD Catalog, a *released version* is a tag whose name is a semantic version
  (``1.2.3``, ``1.2.3-rc.1``, ``1.2.3+build``), optionally ``v``-prefixed as GitLab's catalog
  accepts since ``semver_prefixed``. ``component.version`` shows it as GitLab's ``semver.to_s``
  does: the tag as written (``v1.2.3``) without build metadata. Ordering is SemVer 2.0 precedence.
- A project without any released version is, for ``~latest`` and partial versions, a
  non-catalog project: GitLab's "not supported for non-catalog resources" messages.
- The file is ``templates/<name>.yml``, else ``templates/<name>/template.yml`` (``.yaml`` is not
  looked for).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from airflow_ci_vars.errors import IncludeSourceError

__all__ = [
    "LATEST",
    "MAX_ADDRESS_LENGTH",
    "ComponentAddress",
    "ComponentError",
    "ResolvedVersion",
    "component_context",
    "component_paths",
    "parse_component",
    "resolve_version",
]

LATEST = "~latest"  # InstancePath::LATEST
MAX_ADDRESS_LENGTH = 4096  # ours: an address is a path, a name and a ref; GitLab has no limit
_SHORTHAND = re.compile(r"\A\d+(\.\d+)?\Z")  # InstancePath::SHORTHAND_SEMVER_PATTERN
_NUMBER = r"(0|[1-9]\d*)"
_IDENT = r"[0-9A-Za-z-]+"
# semver.org's grammar (Packages::SemVer), with the optional `v` of a prefixed catalog version.
_SEMVER = re.compile(
    rf"\A(v?){_NUMBER}\.{_NUMBER}\.{_NUMBER}(?:-({_IDENT}(?:\.{_IDENT})*))?(?:\+{_IDENT}(?:\.{_IDENT})*)?\Z"
)
_HEX = re.compile(r"\A[0-9a-fA-F]{4,64}\Z")
_FULL_SHA_LENGTHS = (40, 64)  # SHA-1 and SHA-256 object names
_USERINFO = re.compile(r"(?<=://)[^/@\s]*@")
_SHOWN_MAX = 200
_NOT_SUPPORTED = "the component path is not supported"
_NOT_FOUND = "content not found"
_LATEST_NON_CATALOG = (
    "The ~latest version reference is not supported for non-catalog resources. "
    "Use a tag, branch, or commit SHA instead."
)
_PARTIAL_NON_CATALOG = (
    "The partial semantic version reference is not supported for non-catalog resources. "
    "Use a tag, branch, or commit SHA instead."
)


class ComponentError(IncludeSourceError):
    """An ``include:component`` cannot be used: GitLab's ``Component '<address>' - ...`` message.

    ``reason`` is GitLab's ``ServiceResponse`` reason: ``unsupported_path``,
    ``content_not_found`` or ``invalid_usage``.
    """

    def __init__(self, message: str, *, reason: str = "content_not_found", source: str | None = None) -> None:
        super().__init__(message, source=source)
        self.reason = reason

    def __reduce__(self) -> tuple[object, ...]:
        return (_component_error, (self.message, self.reason, self.source))


def _component_error(message: str, reason: str, source: str | None) -> ComponentError:
    return ComponentError(message, reason=reason, source=source)


@dataclass(frozen=True, slots=True)
class ComponentAddress:
    """A parsed component address; ``str()`` is the address as GitLab shows it in messages."""

    fqdn: str
    project_path: str
    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.fqdn}/{self.project_path}/{self.name}@{self.version}"


@dataclass(frozen=True, slots=True)
class ResolvedVersion:
    """What a component's version resolved to.

    ``version`` is the released version picked (``component.version``; None for a branch, a
    SHA or a tag that is not a semantic version), ``reference`` what was written after ``@``
    (``component.reference``); ``kind`` is ``latest``, ``partial``, ``tag``, ``sha`` or ``branch``.
    """

    sha: str
    version: str | None
    reference: str
    kind: str


def _shown(address: str) -> str:
    """An address fit for a message: no userinfo, bounded length."""
    text = _USERINFO.sub("", address)
    return text if len(text) <= _SHOWN_MAX else text[:_SHOWN_MAX] + "..."


def _error(address: str | None, text: str, reason: str) -> ComponentError:
    message = text if address is None else f"Component '{_shown(address)}' - {text}"
    return ComponentError(message, reason=reason, source=None if address is None else _shown(address))


def _plain_name(name: str) -> bool:
    """A name that stays one file name under ``templates/`` (no ``.``/``..``, no control char)."""
    return bool(name) and name not in (".", "..") and not any(c == "\\" or ord(c) < 32 or c == "\x7f" for c in name)


def parse_component(address: str, *, server_fqdn: str, known_projects: Collection[str]) -> ComponentAddress:
    """Split ``<fqdn>/<project>/<name>@<version>`` as GitLab's ``InstancePath`` does.

    ``server_fqdn`` is the instance's FQDN (with its relative URL root, if any, like GitLab's
    ``server_fqdn``); ``known_projects`` the project paths the deployment serves. Raises
    ``ComponentError``: "the component path is not supported" (no ``@``, another host, too long)
    or "content not found" (unknown project, bad component name).
    """
    prefix = f"{server_fqdn.strip('/')}/"
    if prefix == "/" or len(address) > MAX_ADDRESS_LENGTH or "@" not in address or not address.startswith(prefix):
        raise _error(address, _NOT_SUPPORTED, "unsupported_path")
    full_path, version = address.split("@", 1)
    path = full_path[len(prefix) :]
    index = path.rfind("/")
    if path.startswith("/") or index <= 0:
        raise _error(address, _NOT_FOUND, "content_not_found")
    project, name = _known_project(path[:index], known_projects), path[index + 1 :]
    if project is None or not _plain_name(name):
        raise _error(address, _NOT_FOUND, "content_not_found")
    return ComponentAddress(fqdn=prefix[:-1], project_path=project, name=name, version=version)


def _known_project(path: str, known_projects: Collection[str]) -> str | None:
    """The configured project ``path`` names: GitLab finds full paths case-insensitively
    (``Routable.find_by_full_path``); an exact spelling wins, else a single case-insensitive one."""
    if path in known_projects:
        return path
    folded = path.casefold()
    matches = [p for p in known_projects if p.casefold() == folded]
    return matches[0] if len(matches) == 1 else None


@dataclass(frozen=True, slots=True)
class _Release:
    """One released version: a tag whose name is a semantic version."""

    major: int
    minor: int
    patch: int
    prerelease: str | None
    tag: str
    name: str  # ``semver.to_s``: the tag without build metadata

    def key(self) -> tuple[object, ...]:
        """SemVer 2.0 precedence (a release ranks above its pre-releases); the tag breaks ties."""
        if self.prerelease is None:
            pre: tuple[object, ...] = (1,)
        else:
            fields = self.prerelease.split(".")
            pre = (0, *((0, int(f), "") if f.isdigit() else (1, 0, f) for f in fields))
        return (self.major, self.minor, self.patch, pre, self.tag)


def _release(tag: str) -> _Release | None:
    match = _SEMVER.match(tag)
    if match is None:
        return None
    prefix, major, minor, patch, pre = match.groups()
    name = f"{prefix}{major}.{minor}.{patch}" + (f"-{pre}" if pre is not None else "")
    return _Release(int(major), int(minor), int(patch), pre, tag, name)


def _latest(releases: list[_Release], major: int | None = None, minor: int | None = None) -> _Release | None:
    """``Version.latest(major, minor)``: the highest released version, pre-releases excluded."""
    best: _Release | None = None
    for release in releases:
        if release.prerelease is not None:
            continue
        if (major is not None and release.major != major) or (minor is not None and release.minor != minor):
            continue
        if best is None or release.key() > best.key():
            best = release
    return best


def resolve_version(
    reference: str,
    *,
    tags: Mapping[str, str],
    branches: Mapping[str, str],
    find_sha: Callable[[str], str | None],
    address: ComponentAddress | str | None = None,
) -> ResolvedVersion:
    """The commit a component's ``@reference`` names, in GitLab's order (see the module docstring).

    ``tags`` and ``branches`` map names to commit SHAs; ``find_sha(hex)`` returns the full SHA
    of the commit an (abbreviated) object name designates, or None. ``address`` (the component
    address) prefixes messages as GitLab does. O(len(tags)); raises ``ComponentError``.
    """
    shown = None if address is None else str(address)
    releases = [r for r in map(_release, tags) if r is not None]
    if reference == LATEST:
        latest = _latest(releases)
        if latest is not None:
            return ResolvedVersion(tags[latest.tag], latest.name, reference, "latest")
        if not releases:
            raise _error(shown, _LATEST_NON_CATALOG, "invalid_usage")
        raise _error(shown, _NOT_FOUND, "content_not_found")
    partial = _SHORTHAND.match(reference) is not None
    if partial and releases:
        major, _, minor = reference.partition(".")
        found = _latest(releases, int(major), int(minor) if minor else None)
        if found is not None:
            return ResolvedVersion(tags[found.tag], found.name, reference, "partial")
    resolved = _by_ref(reference, tags, branches, find_sha)
    if resolved is not None:
        return resolved
    if partial and not releases:
        raise _error(shown, _PARTIAL_NON_CATALOG, "invalid_usage")
    raise _error(shown, _NOT_FOUND, "content_not_found")


def _by_ref(
    reference: str, tags: Mapping[str, str], branches: Mapping[str, str], find_sha: Callable[[str], str | None]
) -> ResolvedVersion | None:
    """``sha_by_released_tag || sha_by_ref``: a released version, then git's rev-parse order."""
    release = _release(reference) if reference in tags else None
    if release is not None:
        return ResolvedVersion(tags[reference], release.name, reference, "tag")
    hexadecimal = _HEX.match(reference) is not None
    if hexadecimal and len(reference) in _FULL_SHA_LENGTHS:
        sha = find_sha(reference)
        if sha is not None:
            return ResolvedVersion(sha, None, reference, "sha")
    if reference in tags:
        return ResolvedVersion(tags[reference], None, reference, "tag")
    if reference in branches:
        return ResolvedVersion(branches[reference], None, reference, "branch")
    if hexadecimal and len(reference) not in _FULL_SHA_LENGTHS:
        sha = find_sha(reference)
        if sha is not None:
            return ResolvedVersion(sha, None, reference, "sha")
    return None


def component_paths(name: str) -> tuple[str, ...]:
    """The files a component may be, in GitLab's order: ``templates/<name>.yml``, then
    ``templates/<name>/template.yml`` (``ComponentsProject#fetch_component``)."""
    return (f"templates/{name}.yml", f"templates/{name}/template.yml")


def component_context(address: ComponentAddress, resolved: ResolvedVersion) -> Mapping[str, str | None]:
    """The values ``$[[ component.name|sha|version|reference ]]`` may show (``component_attrs``);
    ``version`` is None (empty in a string, null alone) when no released version was used."""
    return {
        "name": address.name,
        "sha": resolved.sha,
        "version": resolved.version,
        "reference": resolved.reference,
    }
