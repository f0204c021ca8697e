"""``spec:inputs``: the header of a CI file, the values given to it, and ``$[[ inputs.NAME ]]``.

A file may start with a header document (``spec: {inputs: ...}``) before ``---``. Its inputs get
values from ``include: {local: f.yml, inputs: {...}}`` (or, for the main file, from the run), are
checked against the header, and replace every ``$[[ inputs.NAME | fn | fn ]]`` block of the
file's body when the configuration is loaded -- before includes are merged and long before any
variable is expanded. Sources (GitLab, R): ``lib/gitlab/ci/config/header/{root,spec,input}.rb``,
``lib/gitlab/ci/config/interpolation/{interpolator,inputs,template,config,block,access,
functions_stack}.rb``, ``interpolation/inputs/*_input.rb``, ``interpolation/functions/*.rb``.

What GitLab does, and so what this module does:

- Every string of the body is scanned, keys included. A block that is the whole string is
  replaced by the input's value *with its type* (``stage: $[[ inputs.n ]]`` with a number input
  gives a number, an array input gives an array); inside a longer string the value's Ruby text is
  substituted (``true``, ``["a", "b"]``). ``$[[ matrix.X ]]`` blocks are left for ``needs``.
- An input without ``default`` is required; ``type`` is ``string`` (the default), ``number``,
  ``boolean`` or ``array``; ``options`` (at most 50) and ``regex`` (RE2, unanchored) restrict the
  value; defaults are checked as given values are. Errors are GitLab's, joined as GitLab joins
  them (the first three, ``", "``), and located (``file:line:col``) at the first one.
- Functions: ``truncate(offset,length)``, ``expand_vars`` (one pass of ``ExpandVariables
  .expand_existing`` over the variables ``include`` sees) and ``posix_escape`` (Ruby's
  ``Shellwords.escape``); at most three per block.
- ``$[[ component.FIELD ]]`` (R: ``header/component.rb``, ``external/file/component.rb``): a
  file read by ``include:component`` gets its component's ``name``, ``sha``, ``version`` and
  ``reference``, but only the fields its header lists in ``spec:component``; any other field,
  or any field in a file that is not a component, is "unknown interpolation provided". A file
  without a header is not interpolated, component or not.

Nothing here imports Airflow.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from airflow_ci_vars.errors import PipelineError
from airflow_ci_vars.pipeline.limits import DEFAULT_LIMITS, TOTAL_TOO_BIG
from airflow_ci_vars.pipeline.yaml_loader import (
    Location,
    Pos,
    PosDict,
    PosList,
    key_location,
    new_dict,
    new_list,
    replaced_items,
    ruby_to_s,
)
from airflow_ci_vars.untrusted_regexp import RegexpError, UntrustedRegexp
from airflow_ci_vars.variables.expansion import expand_value

__all__ = [
    "COMPONENT_FIELDS",
    "INPUT_TYPES",
    "MAX_FUNCTIONS",
    "InputSpec",
    "Interpolate",
    "header_component_fields",
    "header_input_specs",
    "input_specs",
    "interpolate_body",
    "interpolate_file",
    "interpolator",
    "resolve_inputs",
    "same_inputs",
]

INPUT_TYPES: tuple[str, ...] = ("array", "boolean", "number", "string")  # Interpolation::Inputs::TYPES
COMPONENT_FIELDS: tuple[str, ...] = ("name", "sha", "version", "reference")  # Header::Component::ALLOWED_VALUES
MAX_FUNCTIONS = 3  # Block::MAX_FUNCTIONS
MAX_OPTIONS = 50  # Header::Input::ALLOWED_OPTIONS_LIMIT
_ALLOWED_KEYS = ("default", "description", "options", "regex", "type")  # Header::Input::ALLOWED_KEYS
_MAX_BLOCKS = 10_000  # Template::MAX_BLOCKS
_MAX_NODES = 500_000  # Config::MAX_NODES
_MAX_NODE_SIZE = 1024 * 1024  # Config::MAX_NODE_SIZE (bytes)
_MAX_ACCESS_OBJECTS = 5  # Access::MAX_ACCESS_OBJECTS
_MAX_ACCESS_BYTESIZE = 1024  # Access::MAX_ACCESS_BYTESIZE
_SKIPPED_CONTEXTS = ("matrix",)  # Block::SKIP_INTERPOLATION_CONTEXTS
_SPEC_KEYS = ("inputs", "component")  # Header::Spec::ALLOWED_KEYS (but `include`)
_NO_SPEC_FOR_INPUTS = "Given inputs not defined in the `spec` section of the included configuration file"
_UNKNOWN: Pos = ("<unknown>", 1, 1)

# Template::BLOCK_REGEXP, an RE2 pattern: RE2's \s is [\t\n\f\r ] and `.` stops at a newline.
_BLOCK = re.compile(r"(\$\[\[[\t\n\f\r ]*([^\t\n\f\r ].*?[^\t\n\f\r ])[\t\n\f\r ]*\]\])")
_TRUNCATE = re.compile(r"^truncate\(\s*(\d+)\s*,\s*(\d+)\s*\)?$", re.MULTILINE)
# Ruby's Shellwords.escape: every other character gets a backslash; a newline is quoted.
_SHELL_UNSAFE = re.compile(r"([^A-Za-z0-9_\-.,:+/@\n])")


@dataclass(frozen=True, slots=True)
class InputSpec:
    """One ``spec:inputs`` entry. ``required`` when it has no ``default`` key.

    ``location`` is where the input's name is written; ``key_locations`` where each of its keys
    (``default``, ``regex``...) is.
    """

    name: str
    type: str = "string"
    required: bool = True
    default: object = None
    description: str | None = None
    options: tuple[object, ...] | None = None
    regex: str | None = None
    location: Location = field(default=Location(*_UNKNOWN), compare=False)
    key_locations: Mapping[str, Location] = field(default_factory=dict, compare=False, repr=False)

    def where(self, key: str) -> Location:
        """Where ``key`` of this input is written (the input's name when it has none)."""
        return self.key_locations.get(key, self.location)


class _Problems:
    """GitLab's error list: every message, surfaced as ``Interpolator#error_message`` does."""

    def __init__(self) -> None:
        self.items: list[tuple[str, Location]] = []

    def add(self, message: str, where: Location) -> None:
        self.items.append((message, where))

    def raise_if_any(self) -> None:
        if self.items:
            message = ", ".join(m for m, _ in self.items[:3])
            where = self.items[0][1]
            raise PipelineError(message, file=where.file, line=where.line, column=where.column, key="inputs")


def _location_of(value: object, fallback: Location) -> Location:
    pos = getattr(value, "pos", None)
    return Location(*pos) if pos is not None else fallback


def _alphanumeric(value: object) -> bool:
    """GitLab's ``AlphanumericValidator``: a String, Symbol or Integer."""
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


# --- the header (config/header/*.rb) --------------------------------------------------------------


def header_input_specs(header: Mapping[str, object] | None, file: str) -> tuple[InputSpec, ...]:
    """The inputs declared by a file's header document (``spec:`` before ``---``).

    Raises ``PipelineError`` with GitLab's ``header...`` messages (unknown keys, bad types).
    """
    if header is None:
        return ()
    where = _location_of(header, Location(file, 1, 1))
    unknown = [ruby_to_s(k) for k in header if k != "spec"]
    if unknown:
        problems = _Problems()
        problems.add(f"header config contains unknown keys: {', '.join(unknown)}", where)
        problems.raise_if_any()
    spec = header.get("spec")
    spec_where = key_location(header, "spec", where)
    if spec is not None and not isinstance(spec, Mapping):
        raise PipelineError(
            "header:spec config should be a hash",
            file=spec_where.file,
            line=spec_where.line,
            column=spec_where.column,
            key="spec",
        )
    return input_specs(spec, file, where=spec_where)


def input_specs(
    spec: Mapping[str, object] | None, file: str, *, where: Location | None = None
) -> tuple[InputSpec, ...]:
    """The inputs of a ``spec:`` mapping (``header:spec``), validated as GitLab's header entries."""
    if spec is None:
        return ()
    here = where or _location_of(spec, Location(file, 1, 1))
    problems = _Problems()
    unknown = [ruby_to_s(k) for k in spec if k not in _SPEC_KEYS]
    if unknown:
        problems.add(f"header:spec config contains unknown keys: {', '.join(unknown)}", here)
        problems.raise_if_any()
    _check_component_fields(spec, here, problems)
    inputs = spec.get("inputs")
    inputs_where = key_location(spec, "inputs", here)
    if inputs is None:
        problems.raise_if_any()
        return ()
    if not isinstance(inputs, Mapping):
        problems.add("header:spec:inputs config should be a hash", inputs_where)
        problems.raise_if_any()
    assert isinstance(inputs, Mapping)
    specs: list[InputSpec] = []
    for raw_name, raw in inputs.items():
        name = ruby_to_s(raw_name)
        at = key_location(inputs, raw_name, inputs_where)
        prefix = f"header:spec:inputs:{name}"
        if not _alphanumeric(raw_name):
            problems.add(f"{prefix} key must be an alphanumeric string", at)
        if raw is None:  # a minimal declaration (`name:`) is a required string input
            specs.append(InputSpec(name, location=at))
            continue
        if not isinstance(raw, Mapping):
            problems.add(f"{prefix} config should be a hash", at)
            continue
        extra = [ruby_to_s(k) for k in raw if k not in _ALLOWED_KEYS]
        if extra:
            problems.add(f"{prefix} config contains unknown keys: {', '.join(extra)}", at)
        description = raw.get("description")
        if description is not None and not _alphanumeric(description):
            problems.add(f"{prefix} input description must be an alphanumeric string", at)
        regex = raw.get("regex")
        if regex is not None and not isinstance(regex, str):
            problems.add(f"{prefix} input regex should be a string", at)
        kind = raw.get("type")
        if kind is not None and kind not in INPUT_TYPES:
            problems.add(f"{prefix} input type unknown value: {ruby_to_s(kind)}", at)
        options = raw.get("options")
        if options is not None and not isinstance(options, list):
            problems.add(f"{prefix} input options should be a array", at)
        elif isinstance(options, list) and len(options) > MAX_OPTIONS:
            problems.add(f"{prefix} config cannot define more than {MAX_OPTIONS} options", at)
        # `type: null` written out matches no input class (Inputs#fabricate!), unlike no `type`.
        if "type" in raw and kind is None:
            problems.add(f"unknown input specification for `{name}` (valid types: {', '.join(INPUT_TYPES)})", at)
        specs.append(
            InputSpec(
                name,
                type=kind if isinstance(kind, str) else "string",
                required="default" not in raw,
                default=raw.get("default"),
                description=None if description is None else ruby_to_s(description),
                options=tuple(options) if isinstance(options, list) else None,
                regex=regex if isinstance(regex, str) else None,
                location=at,
                key_locations={ruby_to_s(k): key_location(raw, k, at) for k in raw},
            )
        )
    problems.raise_if_any()
    return tuple(specs)


def _check_component_fields(spec: Mapping[str, object], here: Location, problems: _Problems) -> None:
    """``Header::Component``'s validations of ``spec:component``: an array of known field names."""
    if "component" not in spec:
        return
    fields = spec.get("component")
    at = key_location(spec, "component", here)
    prefix = "header:spec:component config"
    if not isinstance(fields, list):
        problems.add(f"{prefix} should be a array", at)
        problems.add(f"{prefix} should be an array of strings", at)
        return
    if not all(isinstance(f, str) for f in fields):
        problems.add(f"{prefix} should be an array of strings", at)
    unknown = [ruby_to_s(f) for f in fields if f not in COMPONENT_FIELDS]
    if unknown:
        problems.add(f"{prefix} contains unknown values: {', '.join(unknown)}", at)


def header_component_fields(header: Mapping[str, object] | None) -> tuple[str, ...]:
    """The ``spec:component`` fields a header declares (validated by ``header_input_specs``)."""
    spec = header.get("spec") if header is not None else None
    fields = spec.get("component") if isinstance(spec, Mapping) else None
    if not isinstance(fields, list):
        return ()
    return tuple(dict.fromkeys(f for f in fields if isinstance(f, str) and f in COMPONENT_FIELDS))


# --- values (interpolation/inputs/*.rb) ------------------------------------------------------------


_TYPE_NAMES = {"string": "a string", "number": "a number", "boolean": "a boolean", "array": "an array"}


def _has_type(kind: str, value: object) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "number":  # Ruby's Numeric: true/false are not numbers there
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    return isinstance(value, list)


def _check(spec: InputSpec, value: object, *, default: bool, where: Location, problems: _Problems) -> None:
    """``BaseInput#run_validations``: type, then options, then regex."""
    which = "default" if default else "provided"
    prefix = f"`{spec.name}` input: "
    if not _has_type(spec.type, value):
        problems.add(f"{prefix}{which} value is not {_TYPE_NAMES[spec.type]}", where)
    if spec.options is not None:
        if spec.type in ("string", "number"):
            if value is not None and value is not False and value not in spec.options:
                # GitLab's two input classes word it differently; both are copied.
                the = "the " if spec.type == "number" else ""
                shown = ruby_to_s(value)
                problems.add(
                    f"{prefix}`{shown}` cannot be used because it is not in the list of {the}allowed options", where
                )
        else:
            problems.add(f"{prefix}Options can only be used with string and number inputs", where)
    if spec.regex is not None:
        if spec.type != "string":
            problems.add(f"{prefix}RegEx validation can only be used with string inputs", where)
        elif isinstance(value, str):
            pattern = compile_input_regex(spec.regex)
            if pattern is None:
                problems.add(f"{prefix}invalid regular expression", spec.where("regex"))
            elif not pattern.search(value):
                problems.add(f"{prefix}{which} value does not match required RegEx pattern", where)


def compile_input_regex(source: str) -> UntrustedRegexp | None:
    """An input's ``regex`` compiled by RE2 (``Gitlab::UntrustedRegexp``); None if invalid."""
    try:
        return UntrustedRegexp.compile(source)
    except RegexpError:
        return None


def resolve_inputs(
    specs: Sequence[InputSpec], given: Mapping[str, object] | None, *, where: Location | None = None
) -> dict[str, object]:
    """Each input's value: the given one, else its default. Raises ``PipelineError`` as GitLab
    refuses: unknown names, a required input without value, a wrong type, a value outside
    ``options`` or not matching ``regex`` (defaults are checked too).

    ``where`` locates errors about the given values when ``given`` carries no positions (values
    from a run rather than from an ``include:``); else the input's declaration is used.
    """
    given = given or {}
    problems = _Problems()
    fallback = where or (specs[0].location if specs else Location(*_UNKNOWN))
    declared = {s.name for s in specs}
    unknown = [ruby_to_s(k) for k in given if ruby_to_s(k) not in declared]
    if unknown:
        at = key_location(given, next(k for k in given if ruby_to_s(k) not in declared), fallback)
        problems.add(f"unknown input arguments: {', '.join(unknown)}", at)
    by_name = {ruby_to_s(k): v for k, v in given.items()}
    values: dict[str, object] = {}
    for spec in specs:
        value = by_name.get(spec.name)
        value_where = key_location(given, spec.name, where or spec.location)
        if spec.required and value is None:
            at = _location_of(given, where or spec.location) if given else (where or spec.location)
            problems.add(f"`{spec.name}` input: required value has not been provided", at)
            continue
        if not spec.required:
            _check(spec, spec.default, default=True, where=spec.where("default"), problems=problems)
        if value is not None:
            _check(spec, value, default=False, where=value_where, problems=problems)
        values[spec.name] = spec.default if value is None else value
    problems.raise_if_any()
    return values


def same_inputs(a: Mapping[str, object], b: Mapping[str, object]) -> bool:
    """Whether two sets of input values interpolate the same (``1`` and ``1.0`` or ``true`` differ)."""
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


# --- interpolation (interpolation/template.rb, block.rb, access.rb, functions/*.rb) ----------------


def _shell_escape(text: str) -> str:
    """Ruby's ``Shellwords.escape``."""
    if not text:
        return "''"
    return _SHELL_UNSAFE.sub(r"\\\1", text).replace("\n", "'\n'")


def _split_functions(data: str) -> list[str]:
    """Ruby's ``data.split('|').map(&:strip)``: trailing empty fields are dropped before stripping."""
    parts = data.split("|")
    while parts and parts[-1] == "":
        parts.pop()
    return [p.strip() for p in parts]


class _Block:
    """One ``$[[ access | fn | fn ]]`` block, evaluated once (blocks are memoized by their text)."""

    __slots__ = ("errors", "text", "value")

    def __init__(self, text: str, data: str, context: Mapping[str, object], variables: Mapping[str, str]) -> None:
        self.text = text
        self.errors: list[str] = []
        self.value: object = None
        access, *functions = _split_functions(data) or [""]
        if access.split(".", 1)[0] in _SKIPPED_CONTEXTS:
            self.value = text
            return
        found = self._access(access, context)
        if self.errors:
            return
        if len(functions) > MAX_FUNCTIONS:
            self.errors.append("too many functions in interpolation block")
            return
        stack: list[Callable[[object], object]] = []
        for expression in functions:
            function = self._function(expression, variables)
            if function is None:
                self.errors.append(
                    f"no function matching `{expression}`: check that the function name, arguments, and types are "
                    "correct"
                )
            else:
                stack.append(function)
        if self.errors:
            return
        for function in stack:
            found = function(found)
            if self.errors:
                return
        self.value = found

    def _access(self, access: str, context: Mapping[str, object]) -> object:
        objects = access.split(".", _MAX_ACCESS_OBJECTS - 1)
        if len(objects) <= 1:
            self.errors.append("invalid interpolation access pattern")
        if len(access.encode()) > _MAX_ACCESS_BYTESIZE:
            self.errors.append("maximum interpolation expression size exceeded")
        if self.errors:
            return None
        found: object = context
        for key in objects:
            if not isinstance(found, Mapping) or key not in found:
                if objects[0] == "component":  # GitLab's wording of the release that added it
                    self.errors.append(f"unknown interpolation provided: `{key}` in `{access}`")
                else:
                    self.errors.append(f"unknown interpolation key: `{key}`")
                return None
            found = found[key]
        return found

    def _function(self, expression: str, variables: Mapping[str, str]) -> Callable[[object], object] | None:
        def string_only(name: str, apply: Callable[[str], object]) -> Callable[[object], object]:
            def run(value: object) -> object:
                if not isinstance(value, str):
                    self.errors.append(
                        f"error in `{name}` function: invalid input type: {name} can only be used with string inputs"
                    )
                    return None
                return apply(value)

            return run

        match = _TRUNCATE.match(expression)
        if match is not None:
            offset, length = int(match.group(1)), int(match.group(2))
            return string_only("truncate", lambda value: value[offset : offset + length])
        if expression == "expand_vars":
            return string_only("expand_vars", lambda value: expand_value(value, variables, keep_undefined=True))
        if expression == "posix_escape":
            return string_only("posix_escape", _shell_escape)
        return None


class _Template:
    """``Interpolation::Template`` over a loaded body: every string node, keys included."""

    def __init__(
        self,
        values: Mapping[str, object],
        variables: Mapping[str, str],
        component: Mapping[str, str | None] | None = None,
    ) -> None:
        self.context: Mapping[str, object] = {"inputs": dict(values), "component": dict(component or {})}
        self.variables = variables
        self.blocks: dict[str, _Block] = {}
        self.nodes = 0
        self.produced = 0  # characters of the strings interpolation built

    def error(self, message: str, pos: Pos) -> PipelineError:
        return PipelineError(message, file=pos[0], line=pos[1], column=pos[2], key="inputs")

    def walk(self, value: object, pos: Pos) -> object:
        self.nodes += 1
        if self.nodes > _MAX_NODES:
            raise self.error("config too large", pos)
        if isinstance(value, str):
            if len(value) * 4 > _MAX_NODE_SIZE and len(value.encode()) > _MAX_NODE_SIZE:
                raise self.error("config node too large", pos)
            return self.string(value, pos) if "$[[" in value else value
        if isinstance(value, dict):
            return self.mapping(value, pos)
        if isinstance(value, list):
            return self.sequence(value, pos)
        return value

    def mapping(self, value: dict[Any, Any], pos: Pos) -> dict[Any, Any]:
        positions = getattr(value, "key_pos", {})
        own = getattr(value, "pos", pos)
        changed = False
        out: list[tuple[object, object, Pos]] = []
        for key, item in value.items():
            where = positions.get(key, own)
            new_key = self.walk(key, where)
            new_item = self.walk(item, where)
            changed = changed or new_key is not key or new_item is not item
            out.append((new_key, new_item, where))
        if not changed:
            return value
        result = new_dict(own)
        for key, item, where in out:
            result[key] = item
            result.key_pos.setdefault(key, where)
        return result

    def sequence(self, value: list[Any], pos: Pos) -> list[Any]:
        positions = getattr(value, "item_pos", None) or []
        own = getattr(value, "pos", pos)
        return replaced_items(
            value, lambda index, item: self.walk(item, positions[index] if index < len(positions) else own), own
        )

    def string(self, node: str, pos: Pos) -> object:
        matches = _BLOCK.findall(node)
        if not matches:
            return node
        blocks: list[_Block] = []
        for text, data in matches:
            block = self.blocks.get(text)
            if block is None:
                block = _Block(text, data, self.context, self.variables)
                self.blocks[text] = block
            if len(self.blocks) > _MAX_BLOCKS:
                raise self.error("too many interpolation blocks", pos)
            if block.errors:
                raise self.error(", ".join(block.errors[:3]), pos)
            blocks.append(block)
        if len(blocks) == 1 and len(node) == len(blocks[0].text):
            return _positioned(blocks[0].value, pos)
        # Ruby's gsub(block, value.to_s), block by block; the substitution here is literal. Each
        # result's size is known before it is built: a block repeated in a string, or a big value
        # in many strings, stops at the limits (Config::MAX_NODE_SIZE, the total size).
        out = node
        for block in blocks:
            value = ruby_to_s(block.value)
            size = len(out) + out.count(block.text) * (len(value) - len(block.text))
            if size > _MAX_NODE_SIZE:
                raise self.error("config node too large", pos)
            out = out.replace(block.text, value)
        self.produced += len(out)
        if self.produced > DEFAULT_LIMITS.max_total_yaml_size_bytes:
            raise PipelineError(TOTAL_TOO_BIG, file=pos[0], line=pos[1], column=pos[2], key="inputs")
        return out


def _positioned(value: object, pos: Pos) -> object:
    """A typed input value placed in the configuration (containers carry the block's position)."""
    if isinstance(value, (PosDict, PosList)):
        return value
    if isinstance(value, dict):
        return new_dict(pos, {k: _positioned(v, pos) for k, v in value.items()})
    if isinstance(value, list):
        return new_list(pos, [_positioned(v, pos) for v in value])
    return value


def interpolate_body(
    body: PosDict,
    values: Mapping[str, object],
    *,
    variables: Mapping[str, str] | None = None,
    component: Mapping[str, str | None] | None = None,
) -> PosDict:
    """Replace every ``$[[ inputs.NAME | fn ]]`` block of ``body`` (keys too) with ``values``,
    and every ``$[[ component.FIELD ]]`` with ``component`` (the fields the file may see:
    ``interpolate_file`` passes only those its ``spec:component`` declares).

    Unchanged parts are shared with ``body``; ``body`` itself is not modified. Raises
    ``PipelineError`` at the string holding the first bad block (GitLab's message).
    """
    template = _Template(values, variables or {}, component)
    result = template.walk(body, getattr(body, "pos", _UNKNOWN))
    assert isinstance(result, PosDict)
    return result


def interpolate_file(
    header: Mapping[str, object] | None,
    given: Mapping[str, object] | None,
    body: PosDict,
    file: str,
    *,
    variables: Mapping[str, str] | None = None,
    where: Location | None = None,
    component: Mapping[str, str | None] | None = None,
) -> PosDict:
    """``Interpolator#interpolate!`` on one file: header, given inputs, then the body.

    ``given`` are the ``include:inputs`` (or the run's inputs for the main file); ``where``
    locates errors about given values that carry no position of their own. ``component`` is
    the context of a file read by ``include:component`` (``component_context``), None for any
    other file; only the fields the header's ``spec:component`` lists are visible.
    """
    if given and header is None:
        at = _location_of(given, where or Location(file, 1, 1))
        raise PipelineError(_NO_SPEC_FOR_INPUTS, file=at.file, line=at.line, column=at.column, key="inputs")
    if header is None:
        return body
    specs = header_input_specs(header, file)
    values = resolve_inputs(specs, given, where=where)
    declared = header_component_fields(header)
    visible = {k: v for k, v in (component or {}).items() if k in declared}
    return interpolate_body(body, values, variables=variables, component=visible)


class Interpolate(Protocol):
    """``interpolate(header, given, body, file, component=None) -> body`` (see ``interpolate_file``)."""

    def __call__(
        self,
        header: PosDict | None,
        given: Mapping[str, object] | None,
        body: PosDict,
        file: str,
        component: Mapping[str, str | None] | None = None,
    ) -> PosDict: ...


def interpolator(variables: Mapping[str, str] | None = None) -> Interpolate:
    """The ``interpolate`` hook of ``load_config``; ``variables`` are what ``expand_vars`` sees
    (GitLab: the variables ``include`` can use)."""
    seen = dict(variables or {})

    def interpolate(
        header: PosDict | None,
        given: Mapping[str, object] | None,
        body: PosDict,
        file: str,
        component: Mapping[str, str | None] | None = None,
    ) -> PosDict:
        return interpolate_file(header, given, body, file, variables=seen, component=component)

    return interpolate
