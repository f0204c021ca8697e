"""A ``.gitlab-ci.yml`` as GitLab composes it: includes, ``extends``, ``!reference``, stages, ``default:``.

The order is GitLab's (R: ``lib/gitlab/ci/config.rb`` ``build_config``): load the YAML, merge the
``include:`` files (``config/external/processor.rb``, ``mapper/*``, ``file/local.rb``), apply
``extends`` (``config/extendable*.rb``), resolve ``!reference`` (``config/yaml/tags/*``), wrap the
stages with ``.pre``/``.post`` (``edge_stages_injector.rb``); then the root entry splits jobs from
keywords and gives each job the ``default:`` keys it does not set (``entry/root.rb``,
``entry/default.rb``, ``entry/processable.rb``, ``entry/jobs.rb``). Error messages are GitLab's.

Only structural checks live here (what GitLab refuses before it looks at a job's keywords);
keyword semantics (stages of jobs, needs, rules, when...) are validated by ``pipeline.model``.
Nothing here imports Airflow.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_ci_vars.errors import CIVarsError, PipelineError
from airflow_ci_vars.pipeline.entries.stage import DEFAULT_STAGES
from airflow_ci_vars.pipeline.limits import DEFAULT_LIMITS, ConfigLimits, SizeBudget, instance_count
from airflow_ci_vars.pipeline.yaml_loader import (
    Location,
    Pos,
    PosDict,
    PosList,
    Reference,
    YamlDocument,
    is_blank,
    load_yaml,
    new_dict,
    new_list,
    read_text,
    replaced_items,
    ruby_inspect,
    ruby_to_s,
    utf8_size,
)
from airflow_ci_vars.untrusted_regexp import wildcard_regexp
from airflow_ci_vars.variables.expansion import expand_value

if TYPE_CHECKING:
    from airflow_ci_vars.pipeline.sources import SourceLog

__all__ = [
    "DEFAULT_KEYS",
    "DEFAULT_STAGES",
    "Interpolator",
    "PipelineConfig",
    "RuleMatcher",
    "load_config",
]

#: Keys of ``default:`` (R: entry/default.rb), in GitLab's entry order.
DEFAULT_KEYS: tuple[str, ...] = (
    "before_script", "image", "services", "after_script", "hooks", "cache",
    "interruptible", "timeout", "retry", "tags", "artifacts", "id_tokens",
)  # fmt: skip
#: Deprecated globals that ``default:`` inherits from the top level (entry/root.rb, ``inherit: true``).
_GLOBAL_DEFAULT_KEYS = ("before_script", "image", "services", "after_script", "cache")
#: A bridge (``trigger``/``needs`` job without script) only inherits ``interruptible`` (entry/bridge.rb).
_BRIDGE_DEFAULT_KEYS = ("interruptible",)
#: Root keywords that can never name a job (entry/root.rb ``reserved: true``).
_RESERVED = frozenset(
    {"include", "before_script", "image", "services", "after_script", "variables", "stages", "types", "cache"}
)
#: Root keywords; other top-level keys are jobs (entry/root.rb ``ALLOWED_KEYS``).
_ROOT_KEYS = _RESERVED | {"default", "workflow"}
_SCRIPT_KEYS = ("before_script", "script", "after_script")
_FLATTENED_KEYS = ("rules", "needs")  # ComposableArray: ``[@config].flatten``
_MAX_NESTING = 10  # Commands / Stages MAX_NESTING_LEVEL (Extendable's is ConfigLimits.max_nesting)
_INCLUDE_TYPES = ("local", "project", "remote", "template", "artifact", "component")
_URL = re.compile(r"(?:https?|ssh|git)://\S", re.IGNORECASE)  # Gitlab::UrlSanitizer.valid?
_YAML_EXTENSION = re.compile(r".+\.(yml|yaml)$", re.IGNORECASE)

#: ``rule_matches(rule) -> bool`` for ``include:rules`` (``if``/``exists``/``changes`` clauses).
RuleMatcher = Callable[[Mapping[str, object]], bool]
#: ``interpolate(header, inputs, body, file) -> body``: ``spec:inputs`` interpolation of one file.
#: ``header`` is the ``spec:`` header document (or None), ``inputs`` the ``include:inputs`` given
#: to that file (None for the root file).
Interpolator = Callable[[PosDict | None, Mapping[str, object] | None, PosDict, str], PosDict]


def _default_rule_matches(rule: Mapping[str, object]) -> bool:
    return "if" not in rule and "exists" not in rule


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """A fully merged pipeline configuration (includes, ``extends``, ``!reference``, ``default:``).

    ``jobs`` holds the visible jobs in GitLab's merged order, each a ``PosDict`` (plain ``dict``
    subclass) with ``script``/``before_script``/``after_script`` as flat lists of strings and
    ``rules``/``needs`` lists flattened; values are otherwise the raw YAML values. ``stages``
    is wrapped with ``.pre``/``.post``. ``variables`` is the top-level ``variables:`` mapping
    (raw values, empty when absent), ``workflow`` the ``workflow:`` mapping or None, ``spec``
    the ``spec:`` of the header document or None. ``included_files`` lists the root file first,
    then every included file once, in load order; ``include_globs`` the wildcard ``include:local``
    patterns evaluated (a new matching file changes the configuration). ``raw`` is the merged
    top-level mapping before jobs were split off (hidden keys included). Treat it all as read-only:
    objects may be shared between jobs.
    """

    file: str
    stages: tuple[str, ...]
    variables: Mapping[str, object]
    workflow: Mapping[str, object] | None
    jobs: dict[str, dict[str, Any]]
    spec: Mapping[str, object] | None
    included_files: tuple[str, ...]
    include_globs: tuple[str, ...] = ()
    raw: Mapping[str, object] = field(default_factory=dict, repr=False, compare=False)

    def location(self, job: str, *keys: str | int) -> Location:
        """``file:line:col`` of ``job`` -> ``keys`` (the deepest key that exists; else the job).

        ``job`` may also be a top-level keyword (``variables``, ``workflow``, ``stages``...).
        """
        root = self.raw
        node: object = self.jobs.get(job, root.get(job) if isinstance(root, Mapping) else None)
        if isinstance(root, PosDict) and job in root:
            where = root.key_location(job)
        elif isinstance(node, PosDict):
            where = node.location
        else:
            return Location(self.file, 1, 1)
        for key in keys:
            if isinstance(node, PosDict) and key in node:
                where = node.key_location(key)
                node = node[key]
            elif isinstance(node, PosList) and isinstance(key, int) and -len(node) <= key < len(node):
                where = node.item_location(key)
                node = node[key]
            else:
                break
        return where


def load_config(
    path: str | Path,
    *,
    variables: Mapping[str, str] | None = None,
    max_includes: int | None = None,
    rule_matches: RuleMatcher | None = None,
    interpolate: Interpolator | None = None,
    text: str | None = None,
    log: SourceLog | None = None,
    inputs: Mapping[str, object] | None = None,
    limits: ConfigLimits = DEFAULT_LIMITS,
    budget: SizeBudget | None = None,
) -> PipelineConfig:
    """Load ``path`` and everything it includes into a ``PipelineConfig``, as GitLab composes it.

    ``text`` replaces the content of ``path`` (a child pipeline's synthetic root document; local
    includes still resolve next to ``path``).

    ``variables`` expand ``include`` locations (GitLab's ``ExpandVariables``: undefined -> empty);
    ``rule_matches`` decides whether an ``include:rules`` rule matches (default: a rule without
    ``if``/``exists`` matches); ``interpolate`` applies ``spec:inputs`` (default:
    ``pipeline.inputs.interpolator(variables)``, GitLab's interpolation); ``inputs`` are the
    values of the main file's own ``spec:inputs`` (as a run gives them);
    ``log`` records every file read and every wildcard search (for the parse cache).
    ``limits`` are GitLab's size limits (``pipeline.limits``; ``max_includes`` overrides its
    ``max_includes``); ``budget`` counts the total size, shared by the loads of one pipeline
    and its child pipelines (default: a new one). Every limit is checked while the files are
    read and expanded, before anything over it is built.
    Raises ``PipelineError`` (``file:line:col: message``) on the first error, in GitLab's order.
    """
    if max_includes is not None:
        limits = dataclasses.replace(limits, max_includes=max_includes)
    if budget is None:
        budget = SizeBudget(limits)
    # Building a big configuration allocates many small containers and no reference cycles: the
    # cyclic garbage collector would only re-scan them (about a third of the time of a 2,000-job file).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _load_config(path, variables, limits, budget, rule_matches, interpolate, text, log, inputs)
    finally:
        if collecting:
            gc.enable()


def _load_config(
    path: str | Path,
    variables: Mapping[str, str] | None,
    limits: ConfigLimits,
    budget: SizeBudget,
    rule_matches: RuleMatcher | None,
    interpolate: Interpolator | None,
    text: str | None = None,
    log: SourceLog | None = None,
    inputs: Mapping[str, object] | None = None,
) -> PipelineConfig:
    file = str(path)
    if text is None:
        text = read_text(path, file, max_bytes=limits.max_yaml_size_bytes)
        if log is not None:
            log.read(path, text)
    if not text.strip():
        raise PipelineError("Please provide content of .gitlab-ci.yml", file=file)
    document = load_yaml(text, file, limits=limits)
    budget.add_text(utf8_size(text), (file, 1, 1))
    body = document.body
    if interpolate is None:
        from airflow_ci_vars.pipeline.inputs import interpolator

        interpolate = interpolator(variables)
    if document.header is not None or inputs:
        body = interpolate(document.header, inputs, body, file)
    context = _IncludeContext(
        root_dir=Path(path).parent,
        shown_dir=os.path.dirname(file),
        variables=dict(variables or {}),
        limits=limits,
        budget=budget,
        rule_matches=rule_matches or _default_rule_matches,
        interpolate=interpolate,
        log=log,
    )
    context.files.append(file)
    context.has_references = document.has_references
    try:
        config = context.process(body, file)
    except RecursionError:
        raise PipelineError(f"Maximum of {limits.max_includes} nested includes are allowed!", file=file) from None
    config = _Extender(config, budget).run()
    if context.has_references:
        config = _ReferenceResolver(config, limits.max_nesting).run()
    # Measured before anything walks what !reference joined, then with what jobs take from default:.
    budget.measure_all(((ruby_to_s(k), v, _key_pos(config, k), 1) for k, v in config.items()), "merged")
    config = _inject_edge_stages(config)
    spec = _spec_of(document.header, file)
    composed = _compose_root(config, file, spec, tuple(dict.fromkeys(context.files)), tuple(context.globs))
    jobs = composed.jobs.items()  # each instance of a parallel job is a task: counted as many times
    budget.measure_all(((k, v, _key_pos(config, k), instance_count(v.get("parallel"))) for k, v in jobs), "jobs")
    return composed


# --- positions and merging ----------------------------------------------------------------------


def _pos(value: object, fallback: Pos) -> Pos:
    return getattr(value, "pos", fallback)


def _key_pos(mapping: Mapping[Any, object], key: object) -> Pos:
    positions = getattr(mapping, "key_pos", None)
    if positions is not None and key in positions:
        return positions[key]  # type: ignore[no-any-return]
    return _pos(mapping, ("<unknown>", 1, 1))


def _error(message: str, pos: Pos, *, job: str | None = None, key: str | None = None) -> PipelineError:
    return PipelineError(message, file=pos[0], line=pos[1], column=pos[2], job=job, key=key)


def _merge_into(target: PosDict, other: Mapping[Any, object], budget: SizeBudget, where: Pos) -> None:
    """ActiveSupport ``Hash#deep_merge!``: hashes merge recursively, other values replace.

    Each entry copied is counted in ``budget`` before it is copied (for the entry at ``where``).
    """
    budget.add_copies(len(other), where)
    positions = getattr(other, "key_pos", {})
    fallback = _pos(other, target.pos)
    for key, value in other.items():
        current = target.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            value = _deep_merge(current, value, budget, where)
        target[key] = value
        target.key_pos[key] = positions.get(key, fallback)


def _deep_merge(base: Mapping[Any, object], other: Mapping[Any, object], budget: SizeBudget, where: Pos) -> PosDict:
    """ActiveSupport ``Hash#deep_merge`` into a new mapping (neither input is changed)."""
    budget.add_copies(len(base), where)
    out = new_dict(_pos(other, _pos(base, ("<unknown>", 1, 1))), base, getattr(base, "key_pos", None))
    _merge_into(out, other, budget, where)
    return out


def _humanize(name: str) -> str:
    """ActiveSupport ``humanize`` (GitLab's validator prefixes an attribute with it)."""
    text = re.sub(r"\A_+", "", name)
    text = text.removesuffix("_id")
    return text.replace("_", " ")


# --- include: (config/external) ---------------------------------------------------------------------


@dataclass(slots=True)
class _Location:
    params: dict[str, object]
    pos: Pos


@dataclass(slots=True)
class _IncludedFile:
    location: object
    pos: Pos
    inputs: Mapping[str, object] | None
    error: PipelineError | None = None
    content: PosDict | None = None


@dataclass(slots=True)
class _IncludeContext:
    root_dir: Path
    shown_dir: str
    variables: dict[str, str]
    limits: ConfigLimits
    budget: SizeBudget
    rule_matches: RuleMatcher
    interpolate: Interpolator | None
    log: SourceLog | None = None
    files: list[str] = field(default_factory=list)
    globs: list[str] = field(default_factory=list)
    count: int = 0
    has_references: bool = False
    _texts: dict[str, str | None] = field(default_factory=dict)
    _documents: dict[str, YamlDocument] = field(default_factory=dict)
    _resolved_root: Path | None = None

    # Processor#perform
    def process(self, values: PosDict, file: str) -> PosDict:
        if "include" not in values:
            return values
        included = self._map(values, file)
        for item in included:  # validate_external_files!
            if item.error is not None:
                raise item.error
        content = new_dict(values.pos)
        for item in included:
            if item.content is not None:
                _merge_into(content, item.content, self.budget, item.pos)
        _merge_into(content, values, self.budget, _key_pos(values, "include"))
        del content["include"]
        content.key_pos.pop("include", None)
        return content

    # Mapper#process: Normalizer, Filter, LocationExpander, VariablesExpander, Matcher, Verifier
    def _map(self, values: PosDict, file: str) -> list[_IncludedFile]:
        raw = values["include"]
        where = _key_pos(values, "include")
        entries: list[tuple[object, Pos]]
        if raw is None:
            entries = []
        elif isinstance(raw, list):
            entries = [(v, _item_pos(raw, i, where)) for i, v in enumerate(raw) if v is not None]
        else:
            entries = [(raw, where)]
        locations = [self._normalize(value, pos) for value, pos in entries]
        locations = [loc for loc in locations if self._passes_rules(loc)]
        locations = [expanded for loc in locations for expanded in self._expand_wildcards(loc)]
        for loc in locations:
            loc.params = {k: self._expand_location_value(v) for k, v in loc.params.items()}
        included = [self._match(loc) for loc in locations]
        return self._verify(included)

    def _expand(self, text: str) -> str:
        return expand_value(text, self.variables)

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
            return _Location(dict(value), _key_pos(value, "local") if "local" in value else _pos(value, pos))
        raise _error("Each include must be a hash or a string", pos, key="include")

    def _passes_rules(self, loc: _Location) -> bool:
        """External::Rules: the first matching rule decides (``when: never`` excludes); none -> out."""
        rules = loc.params.get("rules")
        if rules is None:
            return True
        if is_blank(rules):
            raise _error("include:rules config can't be blank", loc.pos, key="include")
        if not isinstance(rules, list):
            raise _error("include:rules config should be a array", loc.pos, key="include")
        for rule in _flatten_plain(rules):
            self._check_include_rule(rule, loc.pos)
        for rule in _flatten_plain(rules):
            try:
                matched = self.rule_matches(rule)
            except PipelineError:
                raise
            except CIVarsError as err:
                raise _error(f"include:{getattr(err, 'message', err)}", loc.pos, key="include") from None
            if matched:
                return bool(rule.get("when", "always") != "never")
        return False

    @staticmethod
    def _check_include_rule(rule: object, pos: Pos) -> None:
        if not isinstance(rule, dict):
            raise _error("include:rule config should be a hash", pos, key="include")
        if not rule:
            raise _error("include:rule config can't be blank", pos, key="include")
        unknown = [ruby_to_s(k) for k in rule if k not in ("if", "exists", "when", "changes")]
        if unknown:
            raise _error(f"include:rule config contains unknown keys: {', '.join(unknown)}", pos, key="include")
        when = rule.get("when")
        if when is not None and ruby_to_s(when) not in ("never", "always"):
            raise _error(f"include:rule when unknown value: {ruby_to_s(when)}", pos, key="include")

    def _expand_wildcards(self, loc: _Location) -> list[_Location]:
        local = loc.params.get("local")
        if not isinstance(local, str) or "*" not in local:
            return [loc]
        pattern = local.lstrip("/")
        self.globs.append(pattern)
        found = _search_wildcard(self.root_dir, pattern)
        if self.log is not None:
            self.log.searched_wildcard(self.root_dir, pattern, found)
        return [_Location({"local": path}, loc.pos) for path in found]

    def _match(self, loc: _Location) -> _IncludedFile:
        params = loc.params

        def present(key: str) -> bool:
            return not is_blank(params.get(key))

        kinds = [
            kind
            for kind in _INCLUDE_TYPES
            if (present("artifact") and present("job") if kind == "artifact" else present(kind))
        ]
        if not kinds:
            shown = json.dumps(params, separators=(",", ":"), ensure_ascii=False, default=ruby_to_s)
            subkeys = "`, `".join(_INCLUDE_TYPES)
            raise _error(
                f"`{shown}` does not have a valid subkey for include. Valid subkeys are: `{subkeys}`",
                loc.pos,
                key="include",
            )
        if len(kinds) > 1:
            raise _error(f"Each include must use only one of: `{'`, `'.join(_INCLUDE_TYPES)}`", loc.pos, key="include")
        if kinds[0] != "local":
            raise _error(
                f"include:{kinds[0]} is not supported: airflow-ci-vars only reads include:local files",
                loc.pos,
                key="include",
            )
        local = params["local"]
        location = re.sub(r"\A/+", "", local) if isinstance(local, str) else local
        inputs = params.get("inputs", params.get("with"))
        return _IncludedFile(location, loc.pos, inputs if isinstance(inputs, Mapping) else None)

    # Verifier: count and check every location, then read each valid file (nested includes first).
    def _verify(self, included: list[_IncludedFile]) -> list[_IncludedFile]:
        for item in included:
            self.count += 1
            if self.count > self.limits.max_includes:
                message = f"Maximum of {self.limits.max_includes} nested includes are allowed!"
                raise _error(message, item.pos, key="include")
            location = item.location
            if not isinstance(location, str):
                item.error = _error(
                    f"Included file `{ruby_to_s(location)}` needs to be a string", item.pos, key="include"
                )
            elif not _YAML_EXTENSION.match(os.path.basename(location)):
                item.error = _error(
                    f"Included file `{location}` does not have YAML extension!", item.pos, key="include"
                )
        for item in included:
            if item.error is None:
                self._load(item)
        return included

    def _load(self, item: _IncludedFile) -> None:
        location = str(item.location)
        try:
            text = self._read_local(location)
        except PipelineError as err:
            item.error = PipelineError(
                f"`{location}`: {err.message}", file=err.file, line=err.line, column=err.column, key="include"
            )
            return
        if text is None:
            item.error = _error(f"Local file `{location}` does not exist!", item.pos, key="include")
            return
        if not text.strip():
            item.error = _error(f"Local file `{location}` is empty!", item.pos, key="include")
            return
        shown = os.path.join(self.shown_dir, location) if self.shown_dir else location
        self.budget.add_text(utf8_size(text), item.pos)  # Verifier: counted per include, as GitLab does
        self.files.append(shown)
        document = self._documents.get(location)
        if document is None or self._interpolates(document, item):
            # Parsed once per file; an interpolator may change the body, so it gets a fresh one.
            try:
                document = load_yaml(text, shown, limits=self.limits)
            except PipelineError as err:
                item.error = PipelineError(
                    f"`{location}`: {err.message}", file=err.file, line=err.line, column=err.column, key="include"
                )
                return
            if not self._interpolates(document, item):
                self._documents[location] = document
        self.has_references = self.has_references or document.has_references
        body = document.body
        if self.interpolate is not None and self._interpolates(document, item):
            try:
                body = self.interpolate(document.header, item.inputs, body, shown)
            except PipelineError as err:  # GitLab names the included file first (External::File)
                item.error = PipelineError(
                    f"`{location}`: {err.message}", file=err.file, line=err.line, column=err.column, key="include"
                )
                return
        if is_blank(body):
            item.error = _error(f"Included file `{location}` does not have valid YAML syntax!", item.pos, key="include")
            return
        item.content = self.process(body, shown)
        if is_blank(item.content):
            item.error = _error(f"Included file `{location}` does not have valid YAML syntax!", item.pos, key="include")

    def _interpolates(self, document: YamlDocument, item: _IncludedFile) -> bool:
        return self.interpolate is not None and (document.header is not None or item.inputs is not None)

    def _read_local(self, location: str) -> str | None:
        """The file's text, or None where GitLab finds no blob (``.``/``..`` segments, outside)."""
        if location in self._texts:
            return self._texts[location]
        text = None
        parts = location.split("/")
        if not any(part in ("", ".", "..") for part in parts):
            if self._resolved_root is None:
                self._resolved_root = self.root_dir.resolve()
            try:
                resolved = self.root_dir.joinpath(*parts).resolve()
                inside = resolved.is_relative_to(self._resolved_root) and resolved.is_file()
            except OSError:
                inside = False
            if inside:
                shown = os.path.join(self.shown_dir, location) if self.shown_dir else location
                text = read_text(resolved, shown, max_bytes=self.limits.max_yaml_size_bytes)
                if self.log is not None:
                    self.log.read(resolved, text)
        self._texts[location] = text
        return text


def _item_pos(items: list[Any], index: int, fallback: Pos) -> Pos:
    positions = getattr(items, "item_pos", None)
    return positions[index] if positions is not None and index < len(positions) else fallback


def _search_wildcard(root: Path, pattern: str) -> list[str]:
    """``Repository#search_files_by_wildcard_path``: ``**`` = ``.*?``, ``*`` = ``[^/]*?``, sorted.

    Matched by RE2 (a whole path, so laziness does not matter): linear whatever the pattern."""
    regex = wildcard_regexp(pattern, star="[^/]*", double_star=".*")
    prefix = pattern[: pattern.index("*")]
    base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
    start = root.joinpath(*base.split("/")) if base else root
    found = []
    for directory, dirnames, filenames in os.walk(start):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        relative_dir = os.path.relpath(directory, root).replace(os.sep, "/")
        for name in filenames:
            relative = name if relative_dir == "." else f"{relative_dir}/{name}"
            if regex.fullmatch(relative):
                found.append(relative)
    return sorted(found)


def _flatten_plain(items: list[Any]) -> Iterator[Any]:
    for item in items:
        if isinstance(item, list):
            yield from _flatten_plain(item)
        else:
            yield item


# --- extends (config/extendable/entry.rb) -----------------------------------------------------------


def _extends_keys(value: object) -> list[str]:
    """``Array(value).map(&:to_s)``."""
    if value is None:
        return []
    if isinstance(value, list):
        return [ruby_to_s(v) for v in value]
    if isinstance(value, dict):
        return [ruby_inspect([k, v]) for k, v in value.items()]
    return [ruby_to_s(value)]


class _Extender:
    """``Extendable``: each entry with ``extends`` becomes its bases deep-merged, then itself over them.

    GitLab re-extends a base every time it is reached; the result is the same, so an entry is
    extended once and only its height (longest ``extends`` chain below it) is kept, to find a
    ``nesting too deep`` error exactly where GitLab's walk would.
    """

    def __init__(self, config: PosDict, budget: SizeBudget) -> None:
        self.max_nesting = budget.limits.max_nesting
        self.context = config.copy()
        self.height: dict[object, int] = {}
        self.budget = budget

    def run(self) -> PosDict:
        for key in list(self.context):
            self._extend(key, ())
        return self.context

    def _extend(self, key: object, ancestors: tuple[object, ...]) -> object:
        value = self.context[key]
        if not isinstance(value, dict) or "extends" not in value:
            return value
        height = self.height.get(key)
        if height is not None and len(ancestors) + height <= self.max_nesting:
            return value
        name = ruby_to_s(key)
        where = _key_pos(value, "extends")
        keys = _extends_keys(value["extends"])
        unknown = [k for k in keys if k not in self.context]
        if unknown:
            raise _error(f"{name}: unknown keys in `extends` ({', '.join(unknown)})", where, job=name, key="extends")
        invalid = [k for k in keys if not isinstance(self.context[k], dict)]
        if invalid:
            raise _error(
                f"{name}: invalid base hashes in `extends` ({', '.join(invalid)})", where, job=name, key="extends"
            )
        if len(ancestors) > self.max_nesting:
            raise _error(f"{name}: nesting too deep in `extends`", where, job=name, key="extends")
        if key in ancestors:
            raise _error(f"{name}: circular dependency detected in `extends`", where, job=name, key="extends")
        merged = new_dict(_pos(value, where))
        height = 0
        for base_key in keys:
            base = self._extend(base_key, (*ancestors, key))
            if base_key in self.height:
                height = max(height, self.height[base_key] + 1)
            _merge_into(merged, base, self.budget, where)  # type: ignore[arg-type]
        _merge_into(merged, value, self.budget, where)
        self.context[key] = merged
        self.height[key] = height
        return merged


# --- !reference (config/yaml/tags/reference.rb, resolver.rb) ------------------------------------


class _ReferenceResolver:
    """Replace each ``!reference`` by the value at its path in the (extended) configuration.

    A reference found while resolving itself is ``part of a circular chain``; a path that does
    not lead to a value (or leads through a list, a string or another unresolved reference, as
    Ruby's ``dig`` does) ``could not be found``. Nested references inside a referenced value are
    resolved too, at most ``max_nesting`` levels deep (GitLab documents 10 levels of nested
    ``!reference`` tags; ``entry/commands.rb`` refuses deeper scripts).

    Each reference and each container is resolved once and its result shared by every place
    that uses it (GitLab's ``resolved_value``): the work is linear in the file, whatever the
    result expands to (the total size is measured next, from the sizes of the shared parts).
    """

    def __init__(self, config: PosDict, max_nesting: int) -> None:
        self.config = config
        self.max_nesting = max_nesting
        self.state: dict[int, object] = {}
        # id -> (container, its resolved form, the deepest !reference level inside it)
        self.walked: dict[int, tuple[object, object, int]] = {}
        self.levels: list[int] = []  # deepest level seen inside each container or reference being walked
        self.job: str | None = None

    def run(self) -> PosDict:
        out = self.config.copy()
        for key, value in self.config.items():
            self.job = ruby_to_s(key)
            try:
                out[key] = self._walk(value)
            except RecursionError:
                raise PipelineError(f"!reference nesting too deep in {self.job}", job=self.job) from None
        return out

    def _note(self, level: int) -> None:
        if self.levels and level > self.levels[-1]:
            self.levels[-1] = level

    def _walk(self, value: object) -> object:
        kind = type(value)
        if kind in _SCALARS:
            return value
        if kind is Reference:
            return self._resolve(value)  # type: ignore[arg-type]
        if not isinstance(value, (dict, list)):
            return value
        known = self.walked.get(id(value))
        if known is not None and known[0] is value:
            self._note(known[2])
            return known[1]
        self.levels.append(0)
        result = self._walk_dict(value) if isinstance(value, dict) else self._walk_list(value)
        level = self.levels.pop()
        self.walked[id(value)] = (value, result, level)
        self._note(level)
        return result

    def _walk_dict(self, value: dict[Any, Any]) -> object:
        changed: dict[Any, Any] | None = None
        for key, item in value.items():
            if type(item) in _SCALARS:
                continue
            new = self._walk(item)
            if new is not item:
                if changed is None:
                    changed = value.copy() if isinstance(value, PosDict) else dict(value)
                changed[key] = new
        return value if changed is None else changed

    def _walk_list(self, value: list[Any]) -> object:
        return replaced_items(
            value, lambda _, item: item if type(item) in _SCALARS else self._walk(item), ("<unknown>", 1, 1)
        )

    def _resolve(self, ref: Reference) -> object:
        loc = ref.location
        where = (loc.file, loc.line, loc.column)
        if not ref.valid:
            raise _error(f"{ref} is not valid", where, job=self.job)
        state = self.state.get(id(ref))
        if state is _RESOLVING:
            raise _error(f"{ref} is part of a circular chain", where, job=self.job)
        if state is not None:
            self._note(self.walked[id(ref)][2])
            return state
        self.state[id(ref)] = _RESOLVING
        found: object = self.config
        for segment in ref.path:
            found = found.get(segment) if isinstance(found, dict) else None
            if found is None:
                break
        self.levels.append(0)
        value = self._walk(found)
        level = self.levels.pop() + 1
        if level > self.max_nesting:
            message = f"{ref} is nested too deep: at most {self.max_nesting} levels of !reference are allowed"
            raise _error(message, where, job=self.job)
        if value is None or value is False:
            raise _error(f"{ref} could not be found", where, job=self.job)
        self.state[id(ref)] = value
        self.walked[id(ref)] = (ref, value, level)
        self._note(level)
        return value


_RESOLVING = object()
_SCALARS = frozenset({str, int, float, bool, type(None)})


# --- stages (edge_stages_injector.rb, entry/stages.rb) ----------------------------------------------


def _inject_edge_stages(config: PosDict) -> PosDict:
    keyword = "stages" if "stages" in config else "types" if "types" in config else None
    if keyword is None:
        return config
    stages = config[keyword]
    if not isinstance(stages, list) or not stages:
        return config
    kept = [(s, p) for s, p in zip(stages, _positions(stages), strict=True) if s not in (".pre", ".post")]
    pos = _pos(stages, _key_pos(config, keyword))
    wrapped = new_list(pos, [".pre", *(s for s, _ in kept), ".post"], [pos, *(p for _, p in kept), pos])
    out = config.copy()
    out[keyword] = wrapped
    return out


def _positions(items: list[Any]) -> list[Pos]:
    positions = getattr(items, "item_pos", None)
    fallback = _pos(items, ("<unknown>", 1, 1))
    if positions is None or len(positions) != len(items):
        return [fallback] * len(items)
    return list(positions)


def _flatten_strings(value: object, max_level: int) -> PosList | None:
    """``string_or_nested_array_of_strings`` (max_level deep) flattened, or None when invalid."""
    if not isinstance(value, list):
        return None
    if all(type(item) is str for item in value):
        return value if isinstance(value, PosList) else new_list(("<unknown>", 1, 1), value)
    items: list[str] = []
    positions: list[Pos] = []

    def walk(node: list[Any], level: int) -> bool:
        node_positions = _positions(node)
        for item, pos in zip(node, node_positions, strict=True):
            if isinstance(item, str):
                items.append(item)
                positions.append(pos)
            elif isinstance(item, list) and level > 1:
                if not walk(item, level - 1):
                    return False
            else:
                return False
        return True

    if not walk(value, max_level):
        return None
    return new_list(_pos(value, ("<unknown>", 1, 1)), items, positions)


def _flatten_any(value: PosList) -> PosList:
    if not any(isinstance(item, list) for item in value):
        return value
    items: list[Any] = []
    positions: list[Pos] = []

    def walk(node: list[Any]) -> None:
        for item, pos in zip(node, _positions(node), strict=True):
            if isinstance(item, list):
                walk(item)
            else:
                items.append(item)
                positions.append(pos)

    walk(value)
    return new_list(value.pos, items, positions)


def _commands(container: Mapping[Any, object], key: str, location: str, job: str | None = None) -> PosList:
    """``Entry::Commands``: a string or nested array of strings (10 levels), as a flat list."""
    value = container[key]
    if isinstance(value, str):
        return new_list(_key_pos(container, key), [value])
    flat = _flatten_strings(value, _MAX_NESTING)
    if flat is None:
        message = f"{location} config should be a string or a nested array of strings up to {_MAX_NESTING} levels deep"
        raise _error(message.lower(), _key_pos(container, key), job=job, key=key)
    return flat


# --- the root entry (entry/root.rb, default.rb, jobs.rb, processable.rb) -----------------------------


def _spec_of(header: PosDict | None, file: str) -> Mapping[str, object] | None:
    if header is None:
        return None
    spec = header["spec"]
    if spec is None:
        return new_dict(_key_pos(header, "spec"))
    if not isinstance(spec, dict):
        raise _error("header:spec config should be a hash", _key_pos(header, "spec"), key="spec")
    return spec


def _job_type(name: object, value: object) -> str | None:
    """``Jobs.find_type``: Hidden (``.name``), Job (``script``/``run``), Bridge (``trigger``/``needs``)."""
    if ruby_to_s(name).startswith("."):
        return "hidden"
    if isinstance(value, dict):
        if "script" in value or "run" in value:
            return "job"
        if "trigger" in value or "needs" in value:
            return "bridge"
    return None


def _specified(mapping: Mapping[Any, object] | None, key: str) -> bool:
    return mapping is not None and mapping.get(key) is not None


def _effective_default(config: PosDict) -> PosDict:
    """``default:`` with the deprecated top-level keys it inherits; conflicts are errors."""
    raw = config.get("default")
    where = _key_pos(config, "default")
    if raw is not None and not isinstance(raw, dict):
        raise _error("default config should be a hash", where, key="default")
    default: PosDict = raw if isinstance(raw, PosDict) else new_dict(where, raw or {})
    unknown = [ruby_to_s(k) for k in default if k not in DEFAULT_KEYS]
    if unknown:
        raise _error(f"default config contains unknown keys: {', '.join(unknown)}", where, key="default")
    effective = new_dict(default.pos)
    for key in DEFAULT_KEYS:
        in_default = _specified(default, key)
        if key in _GLOBAL_DEFAULT_KEYS and _specified(config, key):
            if in_default:
                raise _error(f"{key} is defined in top-level and `default:` entry", _key_pos(config, key), key=key)
            effective[key] = config[key]
            effective.key_pos[key] = _key_pos(config, key)
        elif in_default:
            effective[key] = default[key]
            effective.key_pos[key] = _key_pos(default, key)
    for key in ("before_script", "after_script"):
        if key in effective:
            from_default = _specified(default, key)
            source = default if from_default else config
            effective[key] = _commands(source, key, f"default:{key}" if from_default else key)
    return effective


def _stages(config: PosDict) -> tuple[str, ...]:
    keyword = "stages" if _specified(config, "stages") else "types" if _specified(config, "types") else None
    if keyword is None:
        return DEFAULT_STAGES
    flat = _flatten_strings(config[keyword], _MAX_NESTING)
    if flat is None:
        raise _error(
            f"{keyword} config should be an array of strings or a nested array of strings up to "
            f"{_MAX_NESTING} levels deep",
            _key_pos(config, keyword),
            key=keyword,
        )
    return tuple(flat)


def _inherited_keys(job: Mapping[str, object], keys: tuple[str, ...]) -> tuple[str, ...]:
    """The ``default:`` keys a job takes (``inherit:default: false | [keys]``)."""
    inherit = job.get("inherit")
    setting = inherit.get("default") if isinstance(inherit, dict) else None
    if setting is None or setting is True:
        return keys
    if isinstance(setting, list):
        return tuple(k for k in keys if k in setting)
    return keys if setting else ()


def _compose_job(name: str, job: PosDict, kind: str, default: PosDict) -> PosDict:
    out: PosDict | None = None
    for key in _SCRIPT_KEYS:
        value = job.get(key)
        if value is not None:
            flat = _commands(job, key, f"jobs:{name}:{key}", name)
            if flat is not value:
                if out is None:
                    out = job.copy()
                out[key] = flat
    for key in _FLATTENED_KEYS:
        value = job.get(key)
        if isinstance(value, PosList):
            flat_any = _flatten_any(value)
            if flat_any is not value:
                if out is None:
                    out = job.copy()
                out[key] = flat_any
    if default:
        for key in _inherited_keys(job, DEFAULT_KEYS if kind == "job" else _BRIDGE_DEFAULT_KEYS):
            if key in default and job.get(key) is None:
                if out is None:
                    out = job.copy()
                out[key] = default[key]
                out.key_pos[key] = _key_pos(default, key)
    return out if out is not None else job


def _compose_root(
    config: PosDict, file: str, spec: Mapping[str, object] | None, files: tuple[str, ...], globs: tuple[str, ...]
) -> PipelineConfig:
    root_pos = _pos(config, (file, 1, 1))
    job_keys = [
        k for k, v in config.items() if k not in _RESERVED and (_job_type(k, v) is not None or k not in _ROOT_KEYS)
    ]
    job_set = set(job_keys)
    default = _effective_default(config if "default" not in job_set else _without(config, "default"))
    if _specified(config, "variables") and not isinstance(config["variables"], dict):
        raise _error("variables config should be a hash", _key_pos(config, "variables"), key="variables")
    stages = _stages(config)
    workflow: PosDict | None = None
    if "workflow" not in job_set and _specified(config, "workflow"):
        raw_workflow = config["workflow"]
        if not isinstance(raw_workflow, PosDict):
            raise _error("workflow config should be a hash", _key_pos(config, "workflow"), key="workflow")
        workflow = raw_workflow
        rules = workflow.get("rules")
        if isinstance(rules, PosList) and _flatten_any(rules) is not rules:
            workflow = workflow.copy()
            workflow["rules"] = _flatten_any(rules)
    kinds = {k: _job_type(k, config[k]) for k in job_keys}
    for key, kind in kinds.items():
        if kind is None:
            name = ruby_to_s(key)
            raise _error(
                f"jobs {_humanize(name)} config should implement the script:, run:, or trigger: keyword".lower(),
                _key_pos(config, key),
                job=name,
            )
    if not any(kind in ("job", "bridge") for kind in kinds.values()):
        raise _error("jobs config should contain at least one visible job", root_pos)
    jobs: dict[str, dict[str, Any]] = {}
    for key, kind in kinds.items():
        name = ruby_to_s(key)
        where = _key_pos(config, key)
        if kind == "hidden":
            if is_blank(config[key]):
                raise _error(f"jobs:{name} config can't be blank".lower(), where, job=name)
            continue
        if not isinstance(key, str):
            raise _error(f"jobs:{name} name should be a symbol".lower(), where, job=name)
        if len(name) > 255:
            raise _error(f"jobs:{name} name is too long (maximum is 255 characters)".lower(), where, job=name)
        job = config[key]
        if not isinstance(job, PosDict):
            job = new_dict(where, job)
        jobs[name] = _compose_job(name, job, kind or "job", default)
    variables = config.get("variables")
    return PipelineConfig(
        file=file,
        stages=stages,
        variables=variables if isinstance(variables, dict) else new_dict(_key_pos(config, "variables")),
        workflow=workflow,
        jobs=jobs,
        spec=spec,
        included_files=files,
        include_globs=tuple(dict.fromkeys(globs)),
        raw=config,
    )


def _without(config: PosDict, key: str) -> PosDict:
    out = config.copy()
    del out[key]
    return out
