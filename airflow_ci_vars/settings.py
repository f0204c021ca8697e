"""The embedded variable store: a YAML settings file with instance, group and project variables.

::

    project: acme/data/etl            # the project a pipeline belongs to (default for the CLI)
    default_branch: main
    protected_refs: [main, {name: "release/*", allowed_to_run: developer}]
    protected_environments: [{name: production, allowed_to_deploy: maintainer}]
    pipeline_variables_minimum_role: maintainer   # no_one_allowed | developer | maintainer | owner
    members: {alice: maintainer, bob: developer}  # Airflow user -> GitLab role
    schedule_owner: alice                         # whose rights scheduled runs carry
    ci_job_token_allowlist: [acme/app-deploy, "acme/*"]
    instance: {variables: [{key: K, value: v}]}
    groups: {acme: {variables: [...]}, acme/data: {variables: [...]}}
    projects: {acme/data/etl: {variables: [...]}, acme/app: {variables: [...], protected_refs: [main]}}
    # a project other pipelines include (include:project, include:component): its git repository
    projects: {acme/ci-templates: {git: "https://git.example.com/acme/ci-templates.git", git_conn_id: git_acme}}

The access settings (``permissions.access``: default branch, protected refs and environments,
members...) at the top of the file apply to every project of the file; a project's entry under
``projects:`` may set any of them for itself, replacing the top-level value.

A variable has GitLab's fields: ``key``, ``value``, ``variable_type`` (``env_var``/``file``),
``masked``, ``hidden``, ``protected``, ``raw``, ``environment_scope`` and ``description``.
Each one is read and checked with the save rules of ``variables.validation`` (this module is its
YAML adapter: it finds the nodes, the rules say what is wrong, the problem is located at its
node). Every problem of a file is reported at once, each with its file, line and key, and never
with a value.

Decisions:

- ``value`` must be a string; an integer is stringified after YAML 1.1 (``012345`` -> ``5349``),
  ``null`` is ``""``; booleans, floats, dates and the like are refused (quote them).
- Key, name and path *fields* take the scalar as written (``key: 0123`` is the key ``0123``).
- ``protected_refs`` left out protects the default branch, as GitLab does for a new project;
  ``protected_refs: []`` protects nothing. A plain name is ``{name: ..., allowed_to_run: maintainer}``.
- Instance variables cannot be scoped: GitLab instance variables have no environment scope.
- Duplicate mapping keys, which YAML loaders silently collapse, are refused. Anchors and ``<<``
  merges work (explicit fields override merged ones); top-level keys starting with ``.`` are
  ignored, as hidden keys are in ``.gitlab-ci.yml``, so they can hold anchors.

Nothing here imports Airflow.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypedDict

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from airflow_ci_vars.errors import SettingsError
from airflow_ci_vars.permissions.access import ACCESS_FIELDS, DEFAULT_BRANCH, ProjectAccess, parse_access
from airflow_ci_vars.pipeline.external.sources import GitProject, parse_git_projects
from airflow_ci_vars.variables.model import Layer, Variable, VariableSource
from airflow_ci_vars.variables.resolve import group_chain
from airflow_ci_vars.variables.validation import (
    FIELDS,
    key_text,
    layer_limit_problem,
    read_variable,
    unique_in_layer,
    variable_label,
    yaml_raw,
)

__all__ = [
    "DEFAULT_BRANCH",
    "LayerArguments",
    "Settings",
    "load_settings",
    "parse_settings",
]

TOP_LEVEL_FIELDS = ("project", *ACCESS_FIELDS, "instance", "groups", "projects")
LAYER_FIELDS = ("variables",)
#: A project's git repository, for ``include:project`` and ``include:component`` (``pipeline.external.sources``).
INCLUDE_FIELDS = ("git", "git_conn_id", "included_by")
PROJECT_FIELDS = ("variables", *ACCESS_FIELDS, *INCLUDE_FIELDS)
_PATH_RE = re.compile(r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*", re.ASCII)
_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _NULL, _MERGE = (_TAG + t for t in ("str", "int", "float", "null", "merge"))
_NAME_TAGS = (_STR, _INT, _FLOAT)
_FIELD_NAMES = frozenset(FIELDS)
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML was built with it


class LayerArguments(TypedDict):
    """Keyword arguments of ``VariableLayers`` for the stored layers of one project."""

    instance: tuple[Variable, ...]
    groups: tuple[tuple[str, tuple[Variable, ...]], ...]
    project: tuple[Variable, ...]
    project_path: str | None


def _frozen_layers(layers: Mapping[str, Iterable[Variable]]) -> Mapping[str, tuple[Variable, ...]]:
    return MappingProxyType({path: tuple(vs) for path, vs in layers.items()})


@dataclass(frozen=True, slots=True)
class Settings:
    """A parsed settings file. Immutable; ``groups`` and ``projects`` map paths to variables.

    ``access_defaults`` holds the file's top-level access settings (every project's defaults),
    ``project_access`` the projects that set their own under ``projects:``; ``access(path)``
    gives one project's.
    """

    project: str | None = None
    instance: tuple[Variable, ...] = ()
    groups: Mapping[str, tuple[Variable, ...]] = field(default_factory=lambda: MappingProxyType({}))
    projects: Mapping[str, tuple[Variable, ...]] = field(default_factory=lambda: MappingProxyType({}))
    file: str | None = None
    access_defaults: ProjectAccess = field(default_factory=ProjectAccess)
    project_access: Mapping[str, ProjectAccess] = field(default_factory=lambda: MappingProxyType({}))
    #: projects with a git repository (``git:``), for includes of other pipelines
    git_projects: Mapping[str, GitProject] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "instance", tuple(self.instance))
        object.__setattr__(self, "groups", _frozen_layers(self.groups))
        object.__setattr__(self, "projects", _frozen_layers(self.projects))
        object.__setattr__(self, "project_access", MappingProxyType(dict(self.project_access)))
        object.__setattr__(self, "git_projects", MappingProxyType(dict(self.git_projects)))

    def access(self, project_path: str | None = None) -> ProjectAccess:
        """The access settings of ``project_path`` (default: ``project``): its own, else the file's."""
        path = (project_path if project_path is not None else self.project or "").strip("/")
        return self.project_access.get(path, self.access_defaults)

    def layers_for(self, project_path: str | None = None) -> LayerArguments:
        """The stored layers of a project (default: ``project``), as ``VariableLayers`` keywords.

        ``groups`` lists the project's ancestor groups present in the file, root first, so the
        nearest subgroup wins. Without any project, only the instance layer is returned.
        """
        path = project_path if project_path is not None else self.project
        if path is None or not path.strip("/"):
            return {"instance": self.instance, "groups": (), "project": (), "project_path": None}
        path = path.strip("/")
        groups = tuple((g, self.groups[g]) for g in group_chain(path) if g in self.groups)
        return {
            "instance": self.instance,
            "groups": groups,
            "project": self.projects.get(path, ()),
            "project_path": path,
        }


def load_settings(path: str | os.PathLike[str]) -> Settings:
    """Read and check a settings file. Raises ``SettingsError`` (and ``OSError`` if unreadable)."""
    with open(path, "rb") as fh:
        data = fh.read()
    return parse_settings(data, file=os.fspath(path))


def parse_settings(text: str | bytes, *, file: str = "<settings>") -> Settings:
    """Parse and check settings YAML; raise one ``SettingsError`` listing every problem."""
    try:
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        detail = f"{exc.problem} ({exc.context})" if exc.problem and exc.context else exc.problem or exc.context
        raise SettingsError(
            f"invalid YAML: {detail}",
            file=file,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from None
    except yaml.reader.ReaderError as exc:
        line = _line_at(text, exc.position)
        raise SettingsError(f"invalid character in the settings file: {exc.reason}", file=file, line=line) from None
    except yaml.YAMLError as exc:  # pragma: no cover - every loader error is one of the above
        raise SettingsError(f"invalid YAML: {type(exc).__name__}", file=file) from None
    return _Parser(file).settings(root)


def _line_at(text: str | bytes, position: object) -> int | None:
    if not isinstance(position, int):
        return None
    head = text[:position]
    return (head.count(b"\n") if isinstance(head, bytes) else head.count("\n")) + 1


@dataclass(frozen=True, slots=True)
class _Problem:
    line: int | None
    column: int | None
    message: str
    key: str | None
    field: str | None


_Entries = dict[str, tuple[Node, Node]]


class _Parser:
    """Walks the composed node tree, collecting every problem with its location."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[_Problem] = []
        #: the entries of each project under ``projects:`` (their access settings are read last)
        self.project_entries: dict[str, _Entries] = {}

    # -- reporting ------------------------------------------------------------------------------

    def error(self, node: Node | None, message: str, *, key: str | None = None, field: str | None = None) -> None:
        mark = node.start_mark if node is not None else None
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        self.problems.append(_Problem(line, column, message, key, field))

    def raise_problems(self) -> None:
        unique = sorted(set(self.problems), key=lambda p: (p.line or 0, p.column or 0))
        if not unique:
            return
        errors = [
            SettingsError(p.message, file=self.file, line=p.line, column=p.column, key=p.key, field=p.field)
            for p in unique
        ]
        first = errors[0]
        message = "\n".join([first.message, *(str(e) for e in errors[1:])])
        raise SettingsError(
            message,
            file=self.file,
            line=first.line,
            column=first.column,
            key=first.key,
            field=first.field,
            errors=errors if len(errors) > 1 else (),
        )

    # -- generic node helpers -------------------------------------------------------------------

    def entries(
        self, node: MappingNode, what: str | Callable[[], str], _seen: frozenset[int] = frozenset()
    ) -> _Entries:
        """A mapping's entries by key text; duplicates refused, ``<<`` merges applied. ``what``
        names the mapping in messages (a callable: worked out only for a message)."""
        explicit: _Entries = {}
        merged: _Entries = {}
        for knode, vnode in node.value:
            if knode.tag == _MERGE:
                sources = vnode.value if isinstance(vnode, SequenceNode) else [vnode]
                for src in sources:
                    if not isinstance(src, MappingNode) or id(src) in _seen | {id(node)}:
                        self.error(src, f"{_text(what)}: '<<' must merge a mapping or a list of mappings")
                        continue
                    for name, pair in self.entries(src, what, _seen | {id(node)}).items():
                        merged.setdefault(name, pair)
                continue
            if not isinstance(knode, ScalarNode) or knode.tag == _NULL:
                self.error(knode, f"{_text(what)}: keys must be strings")
                continue
            name = knode.value
            if name in explicit:
                first = explicit[name][0].start_mark
                self.error(
                    knode,
                    f"{_text(what)}: duplicate key '{name}' (first defined on line {first.line + 1})",
                    key=name,
                    field=name,
                )
                continue
            explicit[name] = (knode, vnode)
        return {**merged, **explicit}

    def mapping(
        self, node: Node, what: str, allowed: tuple[str, ...], *, key: str | None = None, hidden_ok: bool = False
    ) -> _Entries | None:
        """Entries of a mapping restricted to ``allowed`` keys (and ``.hidden`` ones if ``hidden_ok``)."""
        if isinstance(node, ScalarNode) and node.tag == _NULL:
            return {}
        if not isinstance(node, MappingNode):
            self.error(node, f"{what} must be a mapping", key=key)
            return None
        found = self.entries(node, what)
        if hidden_ok:  # hidden keys hold YAML anchors, as in .gitlab-ci.yml
            found = {name: pair for name, pair in found.items() if not name.startswith(".")}
        for name, (knode, _) in found.items():
            if name not in allowed:
                self.error(knode, f"{what}: unknown key '{name}' (allowed: {', '.join(allowed)})", key=name)
        return {name: pair for name, pair in found.items() if name in allowed}

    def name(self, node: Node, what: str, *, key: str | None = None) -> str | None:
        """A name-like scalar (path, branch) as written; None after an error."""
        if isinstance(node, ScalarNode) and node.tag in _NAME_TAGS and node.value.strip():
            return str(node.value).strip()
        self.error(node, f"{what} must be a non-empty string", key=key)
        return None

    def path(self, node: Node, what: str, *, key: str | None = None) -> str | None:
        text = self.name(node, what, key=key)
        if text is not None and not _PATH_RE.fullmatch(text):
            self.error(
                node,
                f"{what} is not a valid path: segments of letters, digits, '_', '-' and '.', separated by '/'",
                key=key or text,
            )
            return None
        return text

    # -- the file -------------------------------------------------------------------------------

    def settings(self, root: Node | None) -> Settings:
        if root is None:
            return Settings(file=self.file)
        top = self.mapping(root, "settings", TOP_LEVEL_FIELDS, hidden_ok=True)
        if top is None:  # not a mapping: nothing more to check
            self.raise_problems()
            return Settings(file=self.file)  # pragma: no cover - raise_problems() raised
        project = None
        if "project" in top:
            project = self.path(top["project"][1], "project", key="project")
        defaults = self.access(top, ProjectAccess(), where="")
        instance: tuple[Variable, ...] = ()
        if "instance" in top:
            instance = self.layer(top["instance"][1], VariableSource(Layer.INSTANCE))
        groups = self.layers(top.get("groups"), Layer.GROUP)
        projects = self.layers(top.get("projects"), Layer.PROJECT)
        project_access: dict[str, ProjectAccess] = {}
        git_projects: dict[str, GitProject] = {}
        for path, entries in self.project_entries.items():
            if any(name in ACCESS_FIELDS for name in entries):
                access = self.access(entries, defaults, where=f"projects: {path}: ")
                if access != defaults:  # what the file says, not how: a rewrite reads back the same
                    project_access[path] = access
            if any(name in INCLUDE_FIELDS for name in entries):
                git_projects.update(self.git_project(path, entries, project_access.get(path, defaults)))
        self.raise_problems()
        return Settings(
            project,
            instance,
            groups,
            projects,
            self.file,
            access_defaults=defaults,
            project_access=project_access,
            git_projects=git_projects,
        )

    def git_project(self, path: str, entries: _Entries, access: ProjectAccess) -> dict[str, GitProject]:
        """A project's ``git``/``git_conn_id``/``included_by`` (``external.sources.parse_git_projects``)."""
        doc: dict[str, object] = {
            name: SafeConstructor().construct_object(vnode, deep=True)
            for name, (_, vnode) in entries.items()
            if name in INCLUDE_FIELDS
        }
        if "git" not in doc:
            self.error(entries[next(n for n in INCLUDE_FIELDS if n in entries)][0], f"projects: {path}: git is missing")
            return {}
        doc["default_branch"] = access.default_branch  # the project's (the file's default: main)
        try:
            return parse_git_projects({path: doc}, where="projects")
        except SettingsError as err:
            self.error(entries["git"][0], err.message, key="git")
            return {}

    def access(self, entries: _Entries, base: ProjectAccess, *, where: str) -> ProjectAccess:
        """The access settings among ``entries`` (``permissions.access.parse_access`` on the YAML
        values), each problem located at the node it concerns."""
        doc = {
            name: SafeConstructor().construct_object(vnode, deep=True)  # a fresh one: it keeps every node
            for name, (_, vnode) in entries.items()
            if name in ACCESS_FIELDS
        }

        def report(message: str, path: tuple[str | int, ...]) -> None:
            top = str(path[0]) if path else None
            node = _node_at(entries[top][1], path[1:]) if top in entries else None
            self.error(node, f"{where}{message}", key=top)

        return parse_access(doc, report, base=base)

    def layers(self, pair: tuple[Node, Node] | None, layer: Layer) -> dict[str, tuple[Variable, ...]]:
        """``groups:`` or ``projects:``: a mapping of paths to ``{variables: [...]}``."""
        if pair is None:
            return {}
        setting = pair[0].value
        node = pair[1]
        if isinstance(node, ScalarNode) and node.tag == _NULL:
            return {}
        if not isinstance(node, MappingNode):
            self.error(node, f"{setting} must be a mapping of paths to {{variables: [...]}}", key=setting)
            return {}
        out: dict[str, tuple[Variable, ...]] = {}
        for name, (knode, vnode) in self.entries(node, setting).items():
            path = self.path(knode, f"{layer.label} path '{name}'", key=name)
            if path is not None:
                out[path] = self.layer(vnode, VariableSource(layer, path))
        return out

    def layer(self, node: Node, source: VariableSource) -> tuple[Variable, ...]:
        """``{variables: [...]}`` of one layer, each variable read with the save rules
        (``variables.validation``) and each problem located at its node.

        A project's entry may also hold its access settings (kept in ``project_entries``)."""
        where = str(source)
        is_project = source.layer is Layer.PROJECT and source.name is not None
        found = self.mapping(node, where, PROJECT_FIELDS if is_project else LAYER_FIELDS)
        if found and is_project:
            self.project_entries[str(source.name)] = found
        if not found or "variables" not in found:
            return ()
        vnode = found["variables"][1]
        if isinstance(vnode, ScalarNode) and vnode.tag == _NULL:
            return ()
        if not isinstance(vnode, SequenceNode):
            self.error(vnode, f"{where}: variables must be a list of variables", field="variables")
            return ()
        if problem := layer_limit_problem(source.layer, len(vnode.value)):
            self.error(vnode, f"{where}: {problem}")
        parsed = (self.variable(item, source, index) for index, item in enumerate(vnode.value, start=1))

        def duplicate(variable: Variable, message: str, key_node: Node, first: Node) -> None:
            line = first.start_mark.line + 1
            label = variable_label(where, variable.key, 0)
            self.error(key_node, f"{label}: {message} (first defined on line {line})", key=variable.key, field="key")

        return unique_in_layer((pair for pair in parsed if pair is not None), duplicate)

    def variable(self, node: Node, source: VariableSource, index: int) -> tuple[Variable, Node] | None:
        """One variable (the YAML adapter of ``read_variable``); None after an error."""
        where = str(source)
        if not isinstance(node, MappingNode):
            self.error(node, f"{where} variable #{index} must be a mapping")
            return None

        def label() -> str:
            key_node = next((v for k, v in node.value if isinstance(k, ScalarNode) and k.value == "key"), None)
            return variable_label(where, key_text(None if key_node is None else yaml_raw(key_node)), index)

        fields = self.entries(node, label)
        # A bare entry in a flow mapping is most likely part of an unquoted value ({value: a,b}).
        fragments = (
            {name for name, (_, fvalue) in fields.items() if fvalue.tag == _NULL and fvalue.value == ""}
            if node.flow_style and not fields.keys() <= _FIELD_NAMES
            else ()
        )
        raws = {name: yaml_raw(fvalue) for name, (_, fvalue) in fields.items()}
        variable, problems = read_variable(raws, source=source, where=where, index=index, fragments=fragments)
        for problem in problems:
            located = node if problem.at not in fields else fields[problem.at][0 if problem.on_name else 1]
            self.error(located, str(problem), key=problem.key, field=problem.field)
        if variable is None:
            return None
        return variable, fields["key"][1]


def _text(what: str | Callable[[], str]) -> str:
    return what if isinstance(what, str) else what()


def _node_at(node: Node, path: tuple[str | int, ...]) -> Node:
    """The node at ``path`` (mapping keys, list indexes) below ``node``, as deep as it exists."""
    for step in path:
        if isinstance(node, MappingNode):
            found = [v for k, v in node.value if isinstance(k, ScalarNode) and k.value == str(step)]
            if not found:
                return node
            node = found[-1]
        elif isinstance(node, SequenceNode) and isinstance(step, int) and step < len(node.value):
            node = node.value[step]
        else:
            return node
    return node
