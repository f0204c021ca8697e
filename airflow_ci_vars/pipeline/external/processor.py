"""``include:``: every kind, nested in any combination, merged as GitLab merges them.

GitLab's pipeline (R: ``lib/gitlab/ci/config/external/processor.rb``, ``mapper.rb`` and
``mapper/*``, ``file/*.rb``, ``context.rb``): normalize each entry (a string is ``local`` or,
when it is a URL, ``remote``), filter by ``include:rules``, expand locations (wildcard
``local``, a ``project``'s list of ``file``), expand variables, match one kind, verify (count
against ``max_includes``, check the location, read and parse the file, interpolate its
``spec:inputs``, process its own includes), then deep-merge every file under the including one.

Each file is read in a context (``_Context``): the project and commit ``include:local`` resolves
in. ``local`` keeps the context, ``project`` and ``component`` move it to the included project at
the resolved commit, ``remote`` and ``template`` drop it (a ``local`` include inside them "does
not have project!"). Sources: the working tree next to the main file, the deployment's git
repositories (``external.git_repo``), HTTP (``external.remote``) and the templates folder, as
configured in ``external.sources.IncludeSources``. Every source read that could change between
two loads (a ref's commit, a remote file's content) is recorded in the ``SourceLog``.

Nothing here imports Airflow.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_ci_vars.errors import CIVarsError, IncludeSourceError, PipelineError
from airflow_ci_vars.pipeline.external.tree import GitTree, Tree, WorktreeTree
from airflow_ci_vars.pipeline.limits import ConfigLimits, SizeBudget
from airflow_ci_vars.pipeline.merging import (
    flatten_plain,
    item_pos,
    key_pos,
    located_error,
    merge_into,
    pos_of,
)
from airflow_ci_vars.pipeline.yaml_loader import (
    Pos,
    PosDict,
    YamlDocument,
    is_blank,
    load_yaml,
    new_dict,
    ruby_to_s,
    utf8_size,
)
from airflow_ci_vars.variables.expansion import expand_value

if TYPE_CHECKING:
    from airflow_ci_vars.pipeline.external.component import ResolvedVersion
    from airflow_ci_vars.pipeline.external.git_repo import GitCache, GitRemote, RefTable
    from airflow_ci_vars.pipeline.external.remote import RemoteCache
    from airflow_ci_vars.pipeline.external.sources import GitProject, IncludeSources
    from airflow_ci_vars.pipeline.sources import SourceLog

__all__ = [
    "INCLUDE_TYPES",
    "IncludeOutcome",
    "IncludeProcessor",
    "RuleMatcher",
    "Unchecked",
    "source_checker",
]

INCLUDE_TYPES = ("local", "project", "remote", "template", "artifact", "component")
_URL = re.compile(r"(?:https?|ssh|git)://\S", re.IGNORECASE)  # Gitlab::UrlSanitizer.valid?
_YAML_EXTENSION = re.compile(r".+\.(yml|yaml)$", re.IGNORECASE)
_TEMPLATE_SUFFIX = ".gitlab-ci.yml"  # File::Template::SUFFIX
_TEMPLATES_SETTING = "[ci_vars] include_templates_dir"
_PROJECTS_SETTING = "[ci_vars] include_projects or the settings file's projects: <path>: git:"
_REMOTE_SETTING = "[ci_vars] include_remote_allowed"
#: The kinds read from git or HTTP, which count against ``total_timeout``.
_FETCHED = frozenset({"project", "component", "remote"})
_TIMEOUT_MESSAGE = "Request timed out when fetching configuration files."  # Gitlab::Ci::Config

#: ``rule_matches(rule) -> bool`` for ``include:rules`` (``if``/``exists``/``changes`` clauses).
RuleMatcher = Callable[[Mapping[str, object]], bool]


@dataclass(frozen=True, slots=True)
class Unchecked:
    """An include an offline load did not read (its source is not in the cache)."""

    include: str
    where: str
    reason: str


@dataclass(slots=True)
class IncludeOutcome:
    """What processing the includes of one main file found besides the configuration."""

    files: list[str] = field(default_factory=list)
    globs: list[str] = field(default_factory=list)
    #: shown file -> the include that brought it (``including file:line:col``, then the include)
    origins: dict[str, str] = field(default_factory=dict)
    #: (message, ``file:line:col``): a source used from the cache because it was unreachable
    warnings: list[tuple[str, str]] = field(default_factory=list)
    unchecked: list[Unchecked] = field(default_factory=list)
    has_references: bool = False


@dataclass(frozen=True, slots=True)
class _Context:
    """``External::Context``: the tree ``include:local`` reads, and the component being read (if any)."""

    tree: Tree | None
    project: str | None = None
    component: Mapping[str, str | None] | None = None


@dataclass(slots=True)
class _Location:
    params: dict[str, object]
    pos: Pos


@dataclass(slots=True)
class _IncludedFile:
    kind: str
    location: object
    params: dict[str, object]
    pos: Pos
    inputs: Mapping[str, object] | None
    error: PipelineError | None = None
    content: PosDict | None = None


class IncludeProcessor:
    """Merges the includes of a main file and of every file it includes (``External::Processor``).

    One per load of a main file; ``process`` is called with the main file's body.
    """

    def __init__(
        self,
        *,
        root_dir: Path,
        shown_dir: str,
        variables: Mapping[str, str],
        limits: ConfigLimits,
        budget: SizeBudget,
        rule_matches: RuleMatcher,
        interpolate: Any,
        sources: IncludeSources | Callable[[], IncludeSources] | None,
        project: str | None,
        log: SourceLog | None = None,
    ) -> None:
        self.variables = dict(variables)
        self.limits = limits
        self.budget = budget
        self.rule_matches = rule_matches
        self.interpolate = interpolate
        self._sources = sources
        self.project = project
        self.log = log
        self.outcome = IncludeOutcome()
        self.count = 0
        self.root = _Context(WorktreeTree(root_dir, shown_dir, limits.max_yaml_size_bytes, log), project)
        self._documents: dict[tuple[str, str], YamlDocument] = {}
        self._stack: list[str] = []
        self._git: GitCache | None = None
        self._deadline: float | None = None
        self._remote: RemoteCache | None = None

    @property
    def sources(self) -> IncludeSources | None:
        """The include sources; given as a function, asked once, when an include first needs them."""
        if callable(self._sources):
            self._sources = self._sources()
        return self._sources

    def _expand(self, text: str) -> str:
        if "CI_SERVER_" in text and "CI_SERVER_FQDN" not in self.variables and self.sources is not None:
            self.variables["CI_SERVER_FQDN"] = self.sources.server_fqdn
            self.variables.setdefault("CI_SERVER_HOST", self.sources.server_fqdn.split(":", 1)[0])
        return expand_value(text, self.variables)

    # Processor#perform
    def process(self, values: PosDict, file: str, context: _Context | None = None) -> PosDict:
        """``values`` with every file of its ``include:`` merged under it (``include`` removed)."""
        if "include" not in values:
            return values
        context = context or self.root
        included = self._map(values, context)
        for item in included:  # validate_external_files!
            if item.error is not None:
                raise item.error
        content = new_dict(values.pos)
        for item in included:
            if item.content is not None:
                merge_into(content, item.content, self.budget, item.pos)
        merge_into(content, values, self.budget, key_pos(values, "include"))
        del content["include"]
        content.key_pos.pop("include", None)
        return content

    # Mapper#process: Normalizer, Filter, LocationExpander, VariablesExpander, Matcher, Verifier
    def _map(self, values: PosDict, context: _Context) -> list[_IncludedFile]:
        raw = values["include"]
        where = key_pos(values, "include")
        entries: list[tuple[object, Pos]]
        if raw is None:
            entries = []
        elif isinstance(raw, list):
            entries = [(v, item_pos(raw, i, where)) for i, v in enumerate(raw) if v is not None]
        else:
            entries = [(raw, where)]
        locations = [self._normalize(value, pos) for value, pos in entries]
        locations = [loc for loc in locations if self._passes_rules(loc)]
        locations = [expanded for loc in locations for expanded in self._expand_locations(loc, context)]
        for loc in locations:
            loc.params = {k: self._expand_location_value(v) for k, v in loc.params.items()}
        included = [self._match(loc) for loc in locations]
        return self._verify(included, context)

    def _expand_location_value(self, value: object) -> object:
        if isinstance(value, str):
            return self._expand(value)
        if isinstance(value, list):
            return [self._expand(ruby_to_s(v)) for v in value]
        return value

    def _normalize(self, value: object, pos: Pos) -> _Location:
        if isinstance(value, str):
            # Expanded before normalizing: a variable may hide whether the location is remote.
            text = self._expand(value)
            return _Location({"remote" if _URL.match(text.strip()) else "local": text}, pos)
        if isinstance(value, dict):
            return _Location(dict(value), key_pos(value, "local") if "local" in value else pos_of(value, pos))
        raise located_error("Each include must be a hash or a string", pos, key="include")

    def _passes_rules(self, loc: _Location) -> bool:
        """External::Rules: the first matching rule decides (``when: never`` excludes); none -> out."""
        rules = loc.params.get("rules")
        if rules is None:
            return True
        if is_blank(rules):
            raise located_error("include:rules config can't be blank", loc.pos, key="include")
        if not isinstance(rules, list):
            raise located_error("include:rules config should be a array", loc.pos, key="include")
        for rule in flatten_plain(rules):
            _check_include_rule(rule, loc.pos)
        for rule in flatten_plain(rules):
            try:
                matched = self.rule_matches(rule)
            except PipelineError:
                raise
            except CIVarsError as err:
                raise located_error(f"include:{getattr(err, 'message', err)}", loc.pos, key="include") from None
            if matched:
                return bool(rule.get("when", "always") != "never")
        return False

    def _expand_locations(self, loc: _Location, context: _Context) -> list[_Location]:
        """LocationExpander: a wildcard ``local`` becomes the files it finds; ``project`` one per ``file``."""
        local = loc.params.get("local")
        if isinstance(local, str) and "*" in local:
            pattern = local.lstrip("/")
            if context.tree is None:  # searched nowhere: GitLab finds no file
                return []
            if isinstance(context.tree, WorktreeTree):
                self.outcome.globs.append(pattern)
            return [_Location({"local": path}, loc.pos) for path in context.tree.search(pattern)]
        files = loc.params.get("file")
        if "project" in loc.params and isinstance(files, list):
            return [_Location({**loc.params, "file": file}, loc.pos) for file in files]
        return [loc]

    def _match(self, loc: _Location) -> _IncludedFile:
        params = loc.params

        def present(key: str) -> bool:
            return not is_blank(params.get(key))

        pairs = {"artifact": "job", "project": "file"}  # File::Artifact, File::Project#matching?
        kinds = [kind for kind in INCLUDE_TYPES if present(kind) and (kind not in pairs or present(pairs[kind]))]
        if not kinds:
            shown = json.dumps(params, separators=(",", ":"), ensure_ascii=False, default=ruby_to_s)
            subkeys = "`, `".join(INCLUDE_TYPES)
            raise located_error(
                f"`{shown}` does not have a valid subkey for include. Valid subkeys are: `{subkeys}`",
                loc.pos,
                key="include",
            )
        if len(kinds) > 1:
            raise located_error(
                f"Each include must use only one of: `{'`, `'.join(INCLUDE_TYPES)}`", loc.pos, key="include"
            )
        kind = kinds[0]
        if kind == "artifact":
            raise located_error(
                "include:artifact is only for child pipelines (trigger:include), which read it from the job "
                "that made it",
                loc.pos,
                key="include",
            )
        location: object = params["file" if kind == "project" else kind]
        if kind in ("local", "project") and isinstance(location, str):
            location = re.sub(r"\A/+", "", location)  # Gitlab::Utils.remove_leading_slashes
        inputs = params.get("inputs", params.get("with"))
        return _IncludedFile(kind, location, params, loc.pos, inputs if isinstance(inputs, Mapping) else None)

    # Verifier: count and check every location, then read each valid file (nested includes first).
    def _verify(self, included: list[_IncludedFile], context: _Context) -> list[_IncludedFile]:
        for item in included:
            self.count += 1
            if self.count > self.limits.max_includes:
                message = f"Maximum of {self.limits.max_includes} nested includes are allowed!"
                raise located_error(message, item.pos, key="include")
            item.error = _location_problem(item)
        for item in included:
            if item.error is None:
                if item.kind in _FETCHED and self._deadline_passed():  # Verifier#verify_execution_time!
                    raise located_error(_TIMEOUT_MESSAGE, item.pos, key="include")
                self._load(item, context)
        return included

    def _load(self, item: _IncludedFile, context: _Context) -> None:
        location = _shown_location(item)
        try:
            found = self._read(item, context)
        except IncludeSourceError as err:
            if err.offline:
                self.outcome.unchecked.append(Unchecked(_describe(item), _at(item.pos), err.message))
                return
            # A remote file's message names its URL (GitLab's); a git source's is prefixed with the include.
            message = err.message if item.kind == "remote" else f"{_describe(item)}: {err.message}"
            item.error = located_error(message, item.pos, key="include")
            return
        except PipelineError as err:
            item.error = PipelineError(
                f"`{location}`: {err.message}", file=err.file, line=err.line, column=err.column, key="include"
            )
            return
        if isinstance(found, PipelineError):
            item.error = found
            return
        text, shown, nested = found
        self.budget.add_text(utf8_size(text), item.pos)  # Verifier: counted per include, as GitLab does
        self.outcome.files.append(shown)
        self.outcome.origins.setdefault(shown, f"{_at(item.pos)} ({_describe(item)})")
        identity = f"{shown}\0{nested.tree.label if nested.tree else ''}\0{_inputs_key(item.inputs)}"
        if identity in self._stack:
            chain = " -> ".join(s.split("\0", 1)[0] for s in [*self._stack[self._stack.index(identity) :], identity])
            message = f"Maximum of {self.limits.max_includes} nested includes are allowed! (an include cycle: {chain})"
            item.error = located_error(message, item.pos, key="include")
            return
        key = (context.tree.label if context.tree else item.kind, shown)
        document = self._documents.get(key)
        if document is None or self._interpolates(document, item, nested):
            # Parsed once per file; an interpolator may change the body, so it gets a fresh one.
            try:
                document = load_yaml(text, shown, limits=self.limits)
            except PipelineError as err:
                item.error = PipelineError(
                    f"`{location}`: {err.message}", file=err.file, line=err.line, column=err.column, key="include"
                )
                return
            if not self._interpolates(document, item, nested):
                self._documents[key] = document
        self.outcome.has_references = self.outcome.has_references or document.has_references
        body = document.body
        if self._interpolates(document, item, nested):
            try:
                if nested.component is not None:
                    body = self.interpolate(document.header, item.inputs, body, shown, component=nested.component)
                else:
                    body = self.interpolate(document.header, item.inputs, body, shown)
            except PipelineError as err:  # GitLab names the included file first (External::File)
                item.error = PipelineError(
                    f"`{location}`: {err.message}", file=err.file, line=err.line, column=err.column, key="include"
                )
                return
        if is_blank(body):
            item.error = located_error(
                f"Included file `{location}` does not have valid YAML syntax!", item.pos, key="include"
            )
            return
        self._stack.append(identity)
        try:
            item.content = self.process(body, shown, nested)
        finally:
            self._stack.pop()
        if is_blank(item.content):
            item.error = located_error(
                f"Included file `{location}` does not have valid YAML syntax!", item.pos, key="include"
            )

    def _interpolates(self, document: YamlDocument, item: _IncludedFile, nested: _Context) -> bool:
        return self.interpolate is not None and (
            document.header is not None or item.inputs is not None or nested.component is not None
        )

    # -- the kinds (External::File::*) -------------------------------------------------------------

    def _read(self, item: _IncludedFile, context: _Context) -> tuple[str, str, _Context] | PipelineError:
        """(text, shown name, context of its own includes), or the located error GitLab reports."""
        reader = {
            "local": self._read_local,
            "project": self._read_project,
            "remote": self._read_remote,
            "template": self._read_template,
            "component": self._read_component,
        }[item.kind]
        return reader(item, context)

    def _read_local(self, item: _IncludedFile, context: _Context) -> tuple[str, str, _Context] | PipelineError:
        location = str(item.location)
        if context.tree is None:
            return located_error(f"Local file `{location}` does not have project!", item.pos, key="include")
        text = context.tree.read(location)
        if text is None:
            return located_error(f"Local file `{location}` does not exist!", item.pos, key="include")
        if not text.strip():
            return located_error(f"Local file `{location}` is empty!", item.pos, key="include")
        return text, context.tree.shown(location), context

    def _git_project(self, name: str, item: _IncludedFile) -> tuple[GitProject, GitRemote] | PipelineError:
        project = self.sources.project(name) if self.sources is not None else None
        if project is None or not project.may_be_included_by(self.project):
            hint = f" (no git repository is configured for it: {_PROJECTS_SETTING})" if project is None else ""
            return located_error(
                f"Project `{name}` not found or access denied! Make sure any includes in the pipeline "
                f"configuration are correctly defined.{hint}",
                item.pos,
                key="include",
            )
        return project, self._remote_of(project)

    def _read_project(self, item: _IncludedFile, context: _Context) -> tuple[str, str, _Context] | PipelineError:
        raw = item.params.get("project")
        name = ruby_to_s(raw[0] if isinstance(raw, list) and raw else raw).strip("/").lower()
        location = str(item.location)
        found = self._git_project(name, item)
        if isinstance(found, PipelineError):
            return found
        project, remote = found
        ref = item.params.get("ref")
        ref_name = ruby_to_s(ref) if ref is not None and not is_blank(ref) else None
        cache = self._git_cache()
        try:
            resolved = cache.resolve(remote, ref_name or project.default_branch)
        except IncludeSourceError as err:
            if err.offline:
                raise
            try:  # the remote answers, so the ref is what does not exist
                cache.refs(remote)
            except IncludeSourceError:
                raise err from None
            return located_error(
                f"Project `{name}` reference `{ref_name or 'HEAD'}` does not exist!", item.pos, key="include"
            )
        self._warn(resolved.warning, item.pos)
        if self.log is not None:
            self.log.resolved_ref(project.url, ref_name or project.default_branch, resolved.sha, cache.state(remote))
        tree = GitTree(cache, remote, project.path, resolved.sha, resolved.ref)
        text = tree.read(location)
        if text is None:
            return located_error(f"Project `{name}` file `{location}` does not exist!", item.pos, key="include")
        if not text.strip():
            return located_error(f"Project `{name}` file `{location}` is empty!", item.pos, key="include")
        return text, tree.shown(location), _Context(tree, project.path, context.component)

    def _read_remote(self, item: _IncludedFile, context: _Context) -> tuple[str, str, _Context] | PipelineError:
        from airflow_ci_vars.pipeline.external.remote import allowed_url, shown_url

        url = str(item.location)
        if not _URL.match(url):
            return located_error(
                f"Remote file `{shown_url(url)}` does not have a valid address!", item.pos, key="include"
            )
        if not allowed_url(url, self.sources.remote_allowed if self.sources is not None else ()):
            return located_error(
                f"Remote file `{shown_url(url)}` could not be fetched because its host is not allowed "
                f"({_REMOTE_SETTING})",
                item.pos,
                key="include",
            )
        integrity = item.params.get("integrity")
        fetched = self._remote_cache().fetch(url, integrity=None if integrity is None else ruby_to_s(integrity))
        self._warn(fetched.warning, item.pos)
        if self.log is not None:
            self.log.fetched_remote(url, fetched.sha256)
        if not fetched.text.strip():
            return located_error(
                f"Included file `{shown_url(url)}` is empty or does not exist!", item.pos, key="include"
            )
        return fetched.text, shown_url(url), _Context(None, None, context.component)

    def _read_template(self, item: _IncludedFile, context: _Context) -> tuple[str, str, _Context] | PipelineError:
        location = str(item.location)
        if not location.endswith(_TEMPLATE_SUFFIX):
            return located_error(f"Template file `{location}` is not a valid location!", item.pos, key="include")
        folder = self.sources.templates_dir if self.sources is not None else None
        if not folder:
            return located_error(
                f"Template file `{location}` cannot be read: no templates folder is configured ({_TEMPLATES_SETTING})",
                item.pos,
                key="include",
            )
        tree = WorktreeTree(Path(folder), "", self.limits.max_yaml_size_bytes, self.log, label="template:")
        text = tree.read(location)
        if text is None or not text.strip():
            return located_error(
                f"Included file `{location}` is empty or does not exist! (templates folder {folder}, "
                f"{_TEMPLATES_SETTING})",
                item.pos,
                key="include",
            )
        return text, f"template:{location}", _Context(None, None, context.component)

    def _read_component(self, item: _IncludedFile, context: _Context) -> tuple[str, str, _Context] | PipelineError:
        address_text = str(item.location)
        if self.sources is None or not self.sources.projects:
            return located_error(
                f"Component `{address_text}` cannot be read: no project is configured ({_PROJECTS_SETTING})",
                item.pos,
                key="include",
            )
        from airflow_ci_vars.pipeline.external.component import (
            ComponentError,
            component_context,
            component_paths,
            parse_component,
        )

        try:
            address = parse_component(
                address_text, server_fqdn=self.sources.server_fqdn, known_projects=tuple(self.sources.projects)
            )
        except ComponentError as err:
            return located_error(err.message, item.pos, key="include")
        found = self._git_project(address.project_path, item)
        if isinstance(found, PipelineError):
            return found
        project, remote = found
        cache = self._git_cache()
        refs = cache.refs(remote)
        self._warn(refs.warning, item.pos)
        try:
            resolved = _component_version(cache, remote, refs, address.version, address=address_text)
        except ComponentError as err:
            if err.offline:
                raise
            return located_error(err.message, item.pos, key="include")
        if self.log is not None:
            self.log.resolved_component(project.url, address.version, resolved.sha, cache.state(remote))
        tree = GitTree(cache, remote, project.path, resolved.sha, address.version)
        for path in component_paths(address.name):
            text = tree.read(path)
            if text is not None:
                break
        else:
            return located_error(f"Component '{address_text}' - content not found", item.pos, key="include")
        nested = _Context(tree, project.path, component_context(address, resolved))
        return text, tree.shown(path), nested

    # -- sources -----------------------------------------------------------------------------------

    def _remote_of(self, project: GitProject) -> GitRemote:
        from airflow_ci_vars.pipeline.external.git_repo import GitRemote

        user = password = None
        if project.conn_id and self.sources is not None and self.sources.credentials is not None:
            found = self.sources.credentials(project.conn_id)
            if found is None:
                raise IncludeSourceError(
                    f"the connection `{project.conn_id}` of project `{project.path}` does not exist",
                    source=project.path,
                )
            user, password = found
        return GitRemote(project.url, user, password)

    def _cache_dir(self) -> Path:
        if self.sources is None or not self.sources.cache_dir:
            raise IncludeSourceError("no include cache folder is configured ([ci_vars] include_cache_dir)")
        return Path(self.sources.cache_dir)

    def _git_cache(self) -> GitCache:
        if self._git is None:
            from airflow_ci_vars.pipeline.external.git_repo import GitCache

            assert self.sources is not None
            self._git = GitCache(
                self._cache_dir(),
                refresh_seconds=self.sources.git_refresh,
                timeout=self.sources.timeout,
                offline=self.sources.offline,
                max_file_bytes=self.limits.max_yaml_size_bytes,
                once=True,  # one load (or one check of a cache entry): each remote's refs asked once
            )
        return self._git

    def _remote_cache(self) -> RemoteCache:
        if self._remote is None:
            from airflow_ci_vars.pipeline.external.remote import RemoteCache

            sources = self.sources
            self._remote = RemoteCache(
                self._cache_dir(),
                ttl_seconds=sources.remote_ttl if sources else 3600.0,
                timeout=sources.timeout if sources else 10.0,
                max_bytes=self.limits.max_yaml_size_bytes,
                allowed=sources.remote_allowed if sources else (),
                offline=sources.offline if sources else False,
                headers_for=sources.remote_headers if sources else None,
            )
        return self._remote

    def _deadline_passed(self) -> bool:
        """Whether this load spent ``total_timeout`` since its first include from git or HTTP began."""
        sources = self.sources
        if sources is None:
            return False
        if self._deadline is None:
            self._deadline = time.monotonic() + sources.total_timeout
        return time.monotonic() > self._deadline

    def _warn(self, warning: str | None, pos: Pos) -> None:
        if warning:
            self.outcome.warnings.append((warning, _at(pos)))
            if self.log is not None:
                self.log.used_stale(warning)


def _check_include_rule(rule: object, pos: Pos) -> None:
    if not isinstance(rule, dict):
        raise located_error("include:rule config should be a hash", pos, key="include")
    if not rule:
        raise located_error("include:rule config can't be blank", pos, key="include")
    unknown = [ruby_to_s(k) for k in rule if k not in ("if", "exists", "when", "changes")]
    if unknown:
        raise located_error(f"include:rule config contains unknown keys: {', '.join(unknown)}", pos, key="include")
    when = rule.get("when")
    if when is not None and ruby_to_s(when) not in ("never", "always"):
        raise located_error(f"include:rule when unknown value: {ruby_to_s(when)}", pos, key="include")


def _location_problem(item: _IncludedFile) -> PipelineError | None:
    """``File::Base#validate_location!`` (a component only needs a string)."""
    location = item.location
    if item.kind != "remote" and "integrity" in item.params:
        return located_error("integrity can only be specified for remote includes", item.pos, key="include")
    if not isinstance(location, str):
        return located_error(f"Included file `{ruby_to_s(location)}` needs to be a string", item.pos, key="include")
    if item.kind != "component" and not _YAML_EXTENSION.match(os.path.basename(location)):
        shown = _shown_location(item)
        return located_error(f"Included file `{shown}` does not have YAML extension!", item.pos, key="include")
    return None


def _describe(item: _IncludedFile) -> str:
    """The include as the user wrote it, after expansion (``include:project acme/x file a.yml``)."""
    if item.kind == "project":
        ref = item.params.get("ref")
        at = f" ref {ruby_to_s(ref)}" if ref is not None else ""
        return f"include:project {ruby_to_s(item.params.get('project'))} file {item.location}{at}"
    if item.kind == "remote":
        from airflow_ci_vars.pipeline.external.remote import shown_url

        return f"include:remote {shown_url(str(item.location))}"
    return f"include:{item.kind} {item.location}"


def _shown_location(item: _IncludedFile) -> str:
    """The location as messages show it (a remote URL without credentials or tokens)."""
    if item.kind == "remote":
        from airflow_ci_vars.pipeline.external.remote import shown_url

        return shown_url(str(item.location))
    return str(item.location)


def _at(pos: Pos) -> str:
    return f"{pos[0]}:{pos[1]}:{pos[2]}"


def _inputs_key(inputs: Mapping[str, object] | None) -> str:
    return "" if inputs is None else json.dumps(inputs, sort_keys=True, default=repr)


def source_checker(
    sources: IncludeSources | None, warn: Callable[[str], None] | None = None
) -> Callable[[str, str, str | None], str | None]:
    """``check(kind, url, ref)``: what a recorded source (``pipeline.sources``: a ref, a component
    version, a remote file) is now, for several sources checked at one moment (each remote asked once).

    Asks the same caches a load asks, so within ``git_refresh``/``remote_ttl`` no network call is made.
    A source that could not be reached answers from its cache: ``warn`` is given the warning a load
    would attach to the include (the value it answered is still returned).
    """
    if sources is None:
        return lambda kind, url, ref: None
    processor = IncludeProcessor(
        root_dir=Path("."),
        shown_dir="",
        variables={},
        limits=ConfigLimits(),
        budget=SizeBudget(ConfigLimits()),
        rule_matches=lambda rule: True,
        interpolate=None,
        sources=sources,
        project=None,
    )
    return lambda kind, url, ref: _current_value(processor, sources, kind, url, ref, warn)


def _current_value(
    processor: IncludeProcessor,
    sources: IncludeSources,
    kind: str,
    url: str,
    ref: str | None,
    warn: Callable[[str], None] | None,
) -> str | None:
    from airflow_ci_vars.pipeline.sources import COMPONENT_VERSION, GIT_REF, REMOTE_FILE

    def answered(value: str, warning: str | None) -> str:
        if warning and warn is not None:
            warn(warning)
        return value

    if kind == REMOTE_FILE:
        fetched = processor._remote_cache().fetch(url)
        return answered(fetched.sha256, fetched.warning)
    project = next((p for p in sources.projects.values() if p.url == url), None)
    if project is None:
        return None
    remote = processor._remote_of(project)
    cache = processor._git_cache()
    if kind == GIT_REF:
        resolved = cache.resolve(remote, ref)
        return answered(resolved.sha, resolved.warning)
    if kind == COMPONENT_VERSION and ref is not None:
        refs = cache.refs(remote)
        return answered(_component_version(cache, remote, refs, ref).sha, refs.warning)
    return None


def _component_version(
    cache: GitCache, remote: GitRemote, refs: RefTable, version: str, *, address: str | None = None
) -> ResolvedVersion:
    """A component ``version`` resolved against a repository's refs (for a load and for a cache check)."""
    from airflow_ci_vars.pipeline.external.component import resolve_version

    return resolve_version(
        version,
        tags=refs.tags,
        branches=refs.branches,
        find_sha=lambda text: _known_sha(cache, remote, text),
        address=address,
    )


def _known_sha(cache: GitCache, remote: GitRemote, text: str) -> str | None:
    """The full SHA of commit ``text`` (full or abbreviated) when the repository has it, else None."""
    try:
        return cache.resolve(remote, text).sha if cache.has_commit(remote, text) else None
    except IncludeSourceError:
        return None
