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
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_ci_vars.errors import PipelineError
from airflow_ci_vars.pipeline.entries.stage import DEFAULT_STAGES
from airflow_ci_vars.pipeline.external.processor import IncludeProcessor, RuleMatcher, Unchecked
from airflow_ci_vars.pipeline.limits import DEFAULT_LIMITS, ConfigLimits, SizeBudget, instance_count
from airflow_ci_vars.pipeline.merging import key_pos, located_error, merge_into, pos_of
from airflow_ci_vars.pipeline.yaml_loader import (
    Location,
    Pos,
    PosDict,
    PosList,
    Reference,
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

if TYPE_CHECKING:
    from airflow_ci_vars.pipeline.external.sources import IncludeSources
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
    #: each included file -> the include that brought it (``file:line:col (include:kind location)``)
    origins: Mapping[str, str] = field(default_factory=dict, compare=False)
    #: (message, ``file:line:col``): sources used from the cache because they were unreachable
    source_warnings: tuple[tuple[str, str], ...] = ()
    #: includes an offline load could not read (``external.processor.Unchecked``)
    unchecked: tuple[Unchecked, ...] = ()

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
    sources: IncludeSources | Callable[[], IncludeSources] | None = None,
    project: str | None = None,
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
    read and expanded, before anything over it is built. ``sources`` say where ``include:project``,
    ``component``, ``template`` and ``remote`` read (default: only ``include:local`` works);
    ``project`` is the path of the project the pipeline belongs to (who includes).
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
        return _load_config(
            path, variables, limits, budget, rule_matches, interpolate, text, log, inputs, sources, project
        )
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
    sources: IncludeSources | Callable[[], IncludeSources] | None = None,
    project: str | None = None,
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
    processor = IncludeProcessor(
        root_dir=Path(path).parent,
        shown_dir=os.path.dirname(file),
        variables=variables or {},
        limits=limits,
        budget=budget,
        rule_matches=rule_matches or _default_rule_matches,
        interpolate=interpolate,
        sources=sources,
        project=project,
        log=log,
    )
    outcome = processor.outcome
    outcome.files.append(file)
    outcome.has_references = document.has_references
    try:
        config = processor.process(body, file)
    except RecursionError:
        raise PipelineError(f"Maximum of {limits.max_includes} nested includes are allowed!", file=file) from None
    config = _Extender(config, budget).run()
    if outcome.has_references:
        config = _ReferenceResolver(config, limits.max_nesting).run()
    # Measured before anything walks what !reference joined, then with what jobs take from default:.
    budget.measure_all(((ruby_to_s(k), v, key_pos(config, k), 1) for k, v in config.items()), "merged")
    config = _inject_edge_stages(config)
    spec = _spec_of(document.header, file)
    composed = _compose_root(config, file, spec, tuple(dict.fromkeys(outcome.files)), tuple(outcome.globs))
    composed = dataclasses.replace(
        composed,
        origins=outcome.origins,
        source_warnings=tuple(dict.fromkeys(outcome.warnings)),
        unchecked=tuple(outcome.unchecked),
    )
    jobs = composed.jobs.items()  # each instance of a parallel job is a task: counted as many times
    budget.measure_all(((k, v, key_pos(config, k), instance_count(v.get("parallel"))) for k, v in jobs), "jobs")
    return composed


def _humanize(name: str) -> str:
    """ActiveSupport ``humanize`` (GitLab's validator prefixes an attribute with it)."""
    text = re.sub(r"\A_+", "", name)
    text = text.removesuffix("_id")
    return text.replace("_", " ")


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
        where = key_pos(value, "extends")
        keys = _extends_keys(value["extends"])
        unknown = [k for k in keys if k not in self.context]
        if unknown:
            raise located_error(
                f"{name}: unknown keys in `extends` ({', '.join(unknown)})", where, job=name, key="extends"
            )
        invalid = [k for k in keys if not isinstance(self.context[k], dict)]
        if invalid:
            raise located_error(
                f"{name}: invalid base hashes in `extends` ({', '.join(invalid)})", where, job=name, key="extends"
            )
        if len(ancestors) > self.max_nesting:
            raise located_error(f"{name}: nesting too deep in `extends`", where, job=name, key="extends")
        if key in ancestors:
            raise located_error(f"{name}: circular dependency detected in `extends`", where, job=name, key="extends")
        merged = new_dict(pos_of(value, where))
        height = 0
        for base_key in keys:
            base = self._extend(base_key, (*ancestors, key))
            if base_key in self.height:
                height = max(height, self.height[base_key] + 1)
            merge_into(merged, base, self.budget, where)  # type: ignore[arg-type]
        merge_into(merged, value, self.budget, where)
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
            raise located_error(f"{ref} is not valid", where, job=self.job)
        state = self.state.get(id(ref))
        if state is _RESOLVING:
            raise located_error(f"{ref} is part of a circular chain", where, job=self.job)
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
            raise located_error(message, where, job=self.job)
        if value is None or value is False:
            raise located_error(f"{ref} could not be found", where, job=self.job)
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
    pos = pos_of(stages, key_pos(config, keyword))
    wrapped = new_list(pos, [".pre", *(s for s, _ in kept), ".post"], [pos, *(p for _, p in kept), pos])
    out = config.copy()
    out[keyword] = wrapped
    return out


def _positions(items: list[Any]) -> list[Pos]:
    positions = getattr(items, "item_pos", None)
    fallback = pos_of(items, ("<unknown>", 1, 1))
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
    return new_list(pos_of(value, ("<unknown>", 1, 1)), items, positions)


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
        return new_list(key_pos(container, key), [value])
    flat = _flatten_strings(value, _MAX_NESTING)
    if flat is None:
        message = f"{location} config should be a string or a nested array of strings up to {_MAX_NESTING} levels deep"
        raise located_error(message.lower(), key_pos(container, key), job=job, key=key)
    return flat


# --- the root entry (entry/root.rb, default.rb, jobs.rb, processable.rb) -----------------------------


def _spec_of(header: PosDict | None, file: str) -> Mapping[str, object] | None:
    if header is None:
        return None
    spec = header["spec"]
    if spec is None:
        return new_dict(key_pos(header, "spec"))
    if not isinstance(spec, dict):
        raise located_error("header:spec config should be a hash", key_pos(header, "spec"), key="spec")
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
    where = key_pos(config, "default")
    if raw is not None and not isinstance(raw, dict):
        raise located_error("default config should be a hash", where, key="default")
    default: PosDict = raw if isinstance(raw, PosDict) else new_dict(where, raw or {})
    unknown = [ruby_to_s(k) for k in default if k not in DEFAULT_KEYS]
    if unknown:
        raise located_error(f"default config contains unknown keys: {', '.join(unknown)}", where, key="default")
    effective = new_dict(default.pos)
    for key in DEFAULT_KEYS:
        in_default = _specified(default, key)
        if key in _GLOBAL_DEFAULT_KEYS and _specified(config, key):
            if in_default:
                raise located_error(
                    f"{key} is defined in top-level and `default:` entry", key_pos(config, key), key=key
                )
            effective[key] = config[key]
            effective.key_pos[key] = key_pos(config, key)
        elif in_default:
            effective[key] = default[key]
            effective.key_pos[key] = key_pos(default, key)
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
        raise located_error(
            f"{keyword} config should be an array of strings or a nested array of strings up to "
            f"{_MAX_NESTING} levels deep",
            key_pos(config, keyword),
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
                out.key_pos[key] = key_pos(default, key)
    return out if out is not None else job


def _compose_root(
    config: PosDict, file: str, spec: Mapping[str, object] | None, files: tuple[str, ...], globs: tuple[str, ...]
) -> PipelineConfig:
    root_pos = pos_of(config, (file, 1, 1))
    job_keys = [
        k for k, v in config.items() if k not in _RESERVED and (_job_type(k, v) is not None or k not in _ROOT_KEYS)
    ]
    job_set = set(job_keys)
    default = _effective_default(config if "default" not in job_set else _without(config, "default"))
    if _specified(config, "variables") and not isinstance(config["variables"], dict):
        raise located_error("variables config should be a hash", key_pos(config, "variables"), key="variables")
    stages = _stages(config)
    workflow: PosDict | None = None
    if "workflow" not in job_set and _specified(config, "workflow"):
        raw_workflow = config["workflow"]
        if not isinstance(raw_workflow, PosDict):
            raise located_error("workflow config should be a hash", key_pos(config, "workflow"), key="workflow")
        workflow = raw_workflow
        rules = workflow.get("rules")
        if isinstance(rules, PosList) and _flatten_any(rules) is not rules:
            workflow = workflow.copy()
            workflow["rules"] = _flatten_any(rules)
    kinds = {k: _job_type(k, config[k]) for k in job_keys}
    for key, kind in kinds.items():
        if kind is None:
            name = ruby_to_s(key)
            raise located_error(
                f"jobs {_humanize(name)} config should implement the script:, run:, or trigger: keyword".lower(),
                key_pos(config, key),
                job=name,
            )
    if not any(kind in ("job", "bridge") for kind in kinds.values()):
        raise located_error("jobs config should contain at least one visible job", root_pos)
    jobs: dict[str, dict[str, Any]] = {}
    for key, kind in kinds.items():
        name = ruby_to_s(key)
        where = key_pos(config, key)
        if kind == "hidden":
            if is_blank(config[key]):
                raise located_error(f"jobs:{name} config can't be blank".lower(), where, job=name)
            continue
        if not isinstance(key, str):
            raise located_error(f"jobs:{name} name should be a symbol".lower(), where, job=name)
        if len(name) > 255:
            raise located_error(f"jobs:{name} name is too long (maximum is 255 characters)".lower(), where, job=name)
        job = config[key]
        if not isinstance(job, PosDict):
            job = new_dict(where, job)
        jobs[name] = _compose_job(name, job, kind or "job", default)
    variables = config.get("variables")
    return PipelineConfig(
        file=file,
        stages=stages,
        variables=variables if isinstance(variables, dict) else new_dict(key_pos(config, "variables")),
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
