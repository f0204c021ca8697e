"""YAML as GitLab reads it (Ruby Psych semantics), on PyYAML's C parser, with a position for everything.

GitLab loads a ``.gitlab-ci.yml`` with ``Psych.safe_load`` (R: ``lib/gitlab/config/loader/yaml.rb``,
``multi_doc_yaml.rb``, ``lib/gitlab/ci/config/yaml/loader.rb``, ``yaml/result.rb``). What that means,
and what this module reproduces:

- The text is split on ``/^---\\s+/`` into at most three pieces *before* YAML parsing; blank pieces
  are dropped; every remaining piece must be a mapping (``Invalid configuration format``). A first
  piece with a ``spec:`` key followed by another piece is the header (``spec:inputs``); the body is
  then the last piece, otherwise the first one. Only the first YAML document of a piece is read.
- Plain scalars are typed by Psych's ``ScalarScanner``, not by YAML 1.1 resolvers: booleans are
  ``true/yes/on`` and ``false/no/off`` in any case, ``null``/``~``/empty is null, integers accept
  ``_`` and ``,`` (``1,000``), ``012`` is octal, ``1:30`` is sexagesimal (Psych's formula), floats
  need a dot. Quoted and block scalars are strings. A date or time is refused (``safe_load``
  does not permit ``Date``/``Time``): ``Tried to load unspecified class: Date``.
- ``<<`` merge keys are applied in key order (``Hash#merge!``): a merge *overrides* keys written
  before it and is overridden by keys written after it; in a list of merges the first one wins.
  Duplicate keys keep the last value at the first key's place. Anchors may be redefined (a later
  alias sees the latest definition), unlike PyYAML's composer, so events are read directly.
- ``!reference [a, b]`` becomes a ``Reference`` (resolved later, after ``extends``).
- GitLab's ``max_yaml_size_bytes`` and ``max_yaml_depth`` (``The parsed YAML is too big``) hold for
  the text and for the document with every alias and merge key expanded (``pipeline.limits``).
  Both are counted as the document is built: an alias adds the size and height remembered for
  its anchor, a merge key is counted before its entries are copied, so an alias bomb stops at
  the alias that crosses the limit, after reading the file once.

Every mapping is a ``PosDict`` and every sequence a ``PosList``: plain ``dict``/``list`` subclasses
that also carry the ``(file, line, column)`` (1-based) of themselves and of each key or item, so
that every later error can say ``file:line:col``. Scalars stay plain ``str``/``int``/``float``/
``bool``/``None``. Containers reached through an alias are the same object: treat them as
read-only.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import yaml
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

from airflow_ci_vars.errors import PipelineError
from airflow_ci_vars.pipeline.limits import DEFAULT_LIMITS, TOO_BIG, ConfigLimits, scalar_size
from airflow_ci_vars.variables.yaml_values import ruby_float_to_s

try:  # libyaml, as Psych uses; the pure-Python parser gives the same events, only slower.
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

__all__ = [
    "MAX_DEPTH",
    "Location",
    "Pos",
    "PosDict",
    "PosList",
    "PositionalLoader",
    "Reference",
    "YamlDocument",
    "is_blank",
    "load_yaml",
    "load_yaml_file",
    "key_location",
    "utf8_size",
    "psych_scalar",
    "replaced_items",
    "ruby_inspect",
    "ruby_to_s",
]

#: GitLab's ``max_yaml_depth`` application setting (default 100): deeper nesting is refused.
MAX_DEPTH = DEFAULT_LIMITS.max_yaml_depth

#: (file, line, column), 1-based.
Pos = tuple[str, int, int]


@dataclass(frozen=True, slots=True)
class Location:
    """Where something is written: ``file:line:column`` (1-based)."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class PosDict(dict[Any, Any]):
    """A YAML mapping that remembers where it and each of its keys are written."""

    __slots__ = ("key_pos", "pos")

    pos: Pos
    key_pos: dict[Any, Pos]

    @property
    def location(self) -> Location:
        """Where the mapping starts."""
        return Location(*getattr(self, "pos", ("<unknown>", 1, 1)))

    def key_location(self, key: object) -> Location:
        """Where ``key`` is written (the mapping's own location if the key has none)."""
        pos = getattr(self, "key_pos", {}).get(key)
        return Location(*pos) if pos is not None else self.location

    def copy(self) -> PosDict:
        """A shallow copy that keeps the positions."""
        out = PosDict(self)
        out.pos = getattr(self, "pos", ("<unknown>", 1, 1))
        out.key_pos = dict(getattr(self, "key_pos", {}))
        return out


class PosList(list[Any]):
    """A YAML sequence that remembers where it and each of its items are written."""

    __slots__ = ("item_pos", "pos")

    pos: Pos
    item_pos: list[Pos]

    @property
    def location(self) -> Location:
        """Where the sequence starts."""
        return Location(*getattr(self, "pos", ("<unknown>", 1, 1)))

    def item_location(self, index: int) -> Location:
        """Where item ``index`` is written (the sequence's own location if unknown)."""
        positions = getattr(self, "item_pos", [])
        try:
            return Location(*positions[index])
        except IndexError:
            return self.location


def new_dict(pos: Pos, items: Mapping[Any, Any] | None = None, key_pos: dict[Any, Pos] | None = None) -> PosDict:
    """A ``PosDict`` at ``pos`` (keys without a position get ``pos``)."""
    out = PosDict(items or ())
    out.pos = pos
    positions = dict(key_pos) if key_pos is not None else {}
    if len(positions) != len(out) or any(key not in positions for key in out):
        for key in out:
            positions.setdefault(key, pos)
    out.key_pos = positions
    return out


def replaced_items(value: list[Any], new_item: Callable[[int, Any], Any], pos: Pos) -> list[Any]:
    """``value`` with item ``i`` replaced by ``new_item(i, item)``: ``value`` itself when no item
    changes, else a ``PosList`` with its positions (``pos`` where it has none)."""
    items: list[Any] | None = None
    for index, item in enumerate(value):
        new = new_item(index, item)
        if new is not item:
            if items is None:
                items = list(value)
            items[index] = new
    if items is None:
        return value
    positions = getattr(value, "item_pos", None)
    return new_list(getattr(value, "pos", pos), items, list(positions) if positions else None)


def new_list(pos: Pos, items: list[Any] | None = None, item_pos: list[Pos] | None = None) -> PosList:
    """A ``PosList`` at ``pos`` (items without a position get ``pos``)."""
    out = PosList(items or ())
    out.pos = pos
    positions = list(item_pos or [])
    positions += [pos] * (len(out) - len(positions))
    out.item_pos = positions
    return out


@dataclass(frozen=True, slots=True, eq=False)
class Reference:
    """A ``!reference [key, subkey, ...]`` tag, resolved after ``extends``.

    ``raw`` holds what was tagged when it is not a non-empty sequence of strings; such a
    reference is not ``valid`` and fails when resolved (GitLab: ``!reference "x" is not valid``).
    Compared by identity: every tag in the file is its own reference.
    """

    path: tuple[str, ...]
    location: Location
    raw: object = None

    @property
    def valid(self) -> bool:
        """Whether the tag holds a non-empty sequence of strings."""
        return self.raw is None

    def __str__(self) -> str:
        return f"!reference {ruby_inspect(list(self.path) if self.valid else self.raw)}"


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """One loaded file: its ``spec:`` header (or None) and its configuration body.

    ``body_text`` is the raw text of the body piece and ``body_line`` its first line in the file
    (for an interpolation step that works on text). ``has_references`` says whether any
    ``!reference`` tag was read (so resolving can be skipped when there is none).
    """

    file: str
    header: PosDict | None
    body: PosDict
    body_text: str
    body_line: int
    has_references: bool


# --- Ruby's view of values (messages copy Ruby's ``inspect``) ------------------------------------

_RUBY_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\x1b": "\\e", "#": "#"}


def _ruby_str_inspect(value: str) -> str:
    out = []
    for i, ch in enumerate(value):
        if ch == "#" and value[i + 1 : i + 2] in ("{", "$", "@"):
            out.append("\\#")
        elif ch in _RUBY_ESCAPES:
            out.append(_RUBY_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(f"\\u{ord(ch):04X}" if ord(ch) > 0xFF else f"\\x{ord(ch):02X}")
    return '"' + "".join(out) + '"'


def ruby_to_s(value: object) -> str:
    """Ruby's ``to_s`` of a YAML value (what ``"#{value}"`` prints)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, (bool, list, dict, float)):
        return ruby_inspect(value)
    return str(value)


def key_location(mapping: object, key: object, fallback: Location) -> Location:
    """Where ``key`` is written in a ``PosDict`` (``fallback`` for any other mapping or key)."""
    positions = getattr(mapping, "key_pos", None)
    if positions is not None and key in positions:
        return Location(*positions[key])
    return fallback


def ruby_inspect(value: object) -> str:
    """Ruby's ``inspect`` of a YAML value (``["a", "b"]``, ``{"k"=>1}``, ``nil``...)."""
    if isinstance(value, str):
        return _ruby_str_inspect(value)
    if value is None:
        return "nil"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        return ruby_float_to_s(value)
    if isinstance(value, list):
        return "[" + ", ".join(ruby_inspect(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{ruby_inspect(k)}=>{ruby_inspect(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Reference):
        return str(value)
    return str(value)


def is_blank(value: object) -> bool:
    """Ruby's ``blank?``: nil, false, empty or whitespace-only strings, empty arrays and hashes."""
    if value is None or value is False:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, dict)):
        return not value
    return False


# --- Psych's ScalarScanner#tokenize (psych/scalar_scanner.rb) -----------------------------------

# A "word": Psych returns it as a string unless it is a short bool/null spelling.
_WORDISH = re.compile(r"[^0-9.:\-]?(?:[^\W0-9]|[_\s!@#$%^&*(){}<>|/\\~;=])+")
_TIME = re.compile(
    r"-?(\d{4})-(\d{1,2})-(\d{1,2})(?:[Tt]|\s+)(\d{1,2}):(\d\d):(\d\d)(?:\.\d*)?(?:\s*(?:Z|[-+]\d{1,2}:?(?:\d\d)?))?"
)
_DATE = re.compile(r"(\d{4})-(1[012]|0\d|\d)-([12]\d|3[01]|0\d|\d)")
_SEXAGESIMAL_INT = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9]){1,2}")
_SEXAGESIMAL_FLOAT = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9]){1,2}\.[0-9_]*")
_FLOAT = re.compile(r"[-+]?(?:[0-9][0-9_,]*)?\.[0-9]*(?:[eE][-+][0-9]+)?")
_INTEGER = re.compile(r"[-+]?0b[0-1_,]+|[-+]?0[0-7_,]+|[-+]?(?:0|[1-9](?:[0-9]|,[0-9]|_[0-9])*)|[-+]?0x[0-9a-fA-F_,]+")
_TRUE = frozenset({"yes", "true", "on"})
_FALSE = frozenset({"no", "false", "off"})
_SCALAR_CACHE: dict[str, object] = {}


class _DisallowedClassError(Exception):
    """Psych::DisallowedClass: ``safe_load`` refuses dates and times."""


def _ruby_to_i(text: str) -> int:
    """Ruby ``String#to_i`` on a sexagesimal part: leading sign and digits, ``_`` ignored."""
    m = re.match(r"[-+]?[0-9][0-9_]*", text)
    return int(m.group(0).replace("_", "")) if m else 0


def _ruby_to_f(text: str) -> float:
    m = re.match(r"[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?", text)
    return float(m.group(0).replace("_", "").rstrip(".")) if m else 0.0


def _parse_int(text: str) -> int | str:
    digits = text.replace(",", "").replace("_", "")
    sign = -1 if digits.startswith("-") else 1
    body = digits.lstrip("+-")
    try:
        if body[:2] in ("0b", "0B"):
            return sign * int(body[2:], 2)
        if body[:2] in ("0x", "0X"):
            return sign * int(body[2:], 16)
        if len(body) > 1 and body[0] == "0":
            return sign * int(body[1:], 8)
        return sign * int(body, 10)
    except ValueError:
        return text


def _tokenize(text: str) -> object:
    if not text:
        return None
    if _WORDISH.match(text) or "\n" in text:
        if len(text) > 5:
            return text
        lower = text.lower()
        if lower[0] not in "ytonf~":
            return text
        if text == "~" or lower == "null":
            return None
        if lower in _TRUE:
            return True
        if lower in _FALSE:
            return False
        return text
    m = _TIME.fullmatch(text)
    if m:
        year, month, day, hour, minute, second = (int(g) for g in m.groups())
        try:
            datetime.datetime(year, month, day, hour, minute, second)
        except ValueError:
            return text
        raise _DisallowedClassError("Time")
    m = _DATE.fullmatch(text)
    if m:
        year, month, day = (int(g) for g in m.groups())
        try:
            datetime.date(year, month, day)
        except ValueError:
            return text
        raise _DisallowedClassError("Date")
    lower = text.lower()
    if lower in (".inf", "+.inf"):
        return float("inf")
    if lower == "-.inf":
        return float("-inf")
    if lower == ".nan":
        return float("nan")
    if text[0] == ":" and len(text) > 1:
        return text  # a Ruby Symbol; kept as the text written
    if _SEXAGESIMAL_INT.fullmatch(text):
        # Psych multiplies part e by 60 ** |e - 2| (so "1:30" is 5400, not 90).
        return sum(_ruby_to_i(n) * 60 ** abs(e - 2) for e, n in enumerate(text.split(":")))
    if _SEXAGESIMAL_FLOAT.fullmatch(text):
        return sum(_ruby_to_f(n) * 60 ** abs(e - 2) for e, n in enumerate(text.split(":")))
    if _FLOAT.fullmatch(text):
        if text.lstrip("+-") == ".":
            return text
        cleaned = re.sub(r"\.([Ee]|$)", r"\1", text.replace(",", "").replace("_", ""))
        try:
            return float(cleaned)
        except ValueError:
            return text
    if _INTEGER.fullmatch(text):
        return _parse_int(text)
    return text


def psych_scalar(text: str) -> object:
    """The Ruby value Psych gives a *plain* scalar (dates and times raise ``PipelineError``)."""
    try:
        return _SCALAR_CACHE[text]
    except KeyError:
        pass
    try:
        value = _tokenize(text)
    except _DisallowedClassError as err:
        raise PipelineError(f"Tried to load unspecified class: {err}") from None
    if len(_SCALAR_CACHE) > 50_000:
        _SCALAR_CACHE.clear()
    _SCALAR_CACHE[text] = value
    return value


# --- The loader ------------------------------------------------------------------------------------

_STR_TAGS = frozenset({"tag:yaml.org,2002:str", "!str"})
_FLOAT_TAGS = frozenset({"tag:yaml.org,2002:float", "!float"})
_BINARY_TAGS = frozenset({"tag:yaml.org,2002:binary", "!binary"})
_REFERENCE_TAG = "!reference"
_IN_PROGRESS = object()
_MISSING = object()


class PositionalLoader(_BaseLoader):
    """PyYAML's (C) safe loader, building Psych's values from the event stream, with positions.

    ``line_offset``/``column_offset`` place the text inside its file (GitLab parses pieces of
    the file). Use ``read_document()``; the loader is single-use.
    """

    def __init__(
        self,
        text: str,
        file: str,
        *,
        line_offset: int = 0,
        column_offset: int = 0,
        limits: ConfigLimits = DEFAULT_LIMITS,
    ) -> None:
        super().__init__(text)
        self._text = text
        self.file = file
        self._line1 = line_offset + 1
        self._col1 = column_offset + 1
        self._anchors: dict[str, object] = {}
        self.has_references = False
        self._max_size = limits.max_yaml_size_bytes
        self._max_depth = limits.max_yaml_depth
        # Expanded size and height of every container built (the container is kept, so that its
        # id is not reused by a later object).
        self._shapes: dict[int, tuple[object, int, int]] = {}

    # positions ------------------------------------------------------------------------------
    def _pos(self, mark: Any) -> Pos:
        line = mark.line
        return (self.file, line + self._line1, mark.column + (self._col1 if line == 0 else 1))

    def _fail(self, message: str, mark: Any) -> NoReturn:
        _, line, column = self._pos(mark)
        raise PipelineError(message, file=self.file, line=line, column=column)

    def _syntax_error(self, err: yaml.YAMLError) -> PipelineError:
        if isinstance(err, yaml.MarkedYAMLError):
            mark = err.context_mark if err.context is not None and err.context_mark is not None else err.problem_mark
            problem = " ".join(str(p) for p in (err.problem, err.context) if p)
            if mark is None:
                return PipelineError(f"(<unknown>): {problem}", file=self.file)
            _, line, column = self._pos(mark)
            return PipelineError(
                f"(<unknown>): {problem} at line {line} column {column}", file=self.file, line=line, column=column
            )
        # A ReaderError (a character YAML does not allow) knows its offset, not its line.
        position = getattr(err, "position", None)
        reason = getattr(err, "reason", None) or str(err).split("\n", 1)[0]
        if not isinstance(position, int):
            return PipelineError(f"(<unknown>): {reason}", file=self.file)
        before = self._text[:position]
        reader_line = before.count("\n")
        column = position - (before.rfind("\n") + 1) + (self._col1 if reader_line == 0 else 1)
        return PipelineError(f"(<unknown>): {reason}", file=self.file, line=reader_line + self._line1, column=column)

    # documents ------------------------------------------------------------------------------
    def read_document(self) -> object:
        """The first document of the text (None for none), as Psych's ``safe_load`` gives it."""
        get: Callable[[], Any] = self.get_event
        try:
            get()  # StreamStart
            event = get()
            if event.__class__ is StreamEndEvent:
                return None
            if event.__class__ is not DocumentStartEvent:  # pragma: no cover - parser guarantees it
                self._fail("expected a document", event.start_mark)
            value = self._node(get(), 1)
            get()  # DocumentEnd: Psych hands the document over once it is complete
        except yaml.YAMLError as err:
            raise self._syntax_error(err) from None
        finally:
            self.dispose()
        return value

    # sizes ----------------------------------------------------------------------------------
    def _shape(self, value: object) -> tuple[int, int]:
        """(expanded size, height) of a value this loader built (a scalar: its size, 0)."""
        shape = self._shapes.get(id(value))
        if shape is not None and shape[0] is value:
            return shape[1], shape[2]
        return scalar_size(value), 0

    def _grow(self, size: int, height: int, value: object, event: Any) -> tuple[int, int]:
        """A container's (size, height) with ``value`` added; past the size limit, fail at ``event``."""
        value_size, value_height = self._shape(value)
        size += value_size
        if size > self._max_size:
            self._fail(TOO_BIG, event.start_mark)
        return size, max(height, value_height)

    def _built(self, result: object, size: int, height: int, event: Any) -> None:
        """Remember a finished container's shape; refuse it if it is over the size limit."""
        if size > self._max_size:
            self._fail(TOO_BIG, event.start_mark)
        self._shapes[id(result)] = (result, size, height)

    # nodes ----------------------------------------------------------------------------------
    def _scalar(self, event: Any) -> object:
        tag = event.tag
        text = event.value
        if tag is None:
            if not event.implicit[0]:
                return text
        elif tag in _STR_TAGS:
            return text
        elif tag == _REFERENCE_TAG:
            self.has_references = True
            return Reference((), Location(*self._pos(event.start_mark)), raw=text)
        elif tag in _BINARY_TAGS:
            try:
                return base64.b64decode(text).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                return text
        try:
            value = psych_scalar(text)
        except PipelineError as err:
            self._fail(err.message, event.start_mark)
        if tag in _FLOAT_TAGS and not isinstance(value, float):
            try:
                return float(str(value))
            except ValueError:
                return value
        return value

    def _node(self, event: Any, depth: int) -> object:
        cls = event.__class__
        if cls is ScalarEvent:
            value = self._scalar(event)
            if event.anchor is not None:
                self._anchors[event.anchor] = value
            return value
        if cls is AliasEvent:
            value = self._anchors.get(event.anchor, _MISSING)
            if value is _MISSING:
                self._fail(f"An alias referenced an unknown anchor: {event.anchor}", event.start_mark)
            if value is _IN_PROGRESS:
                self._fail(f"recursive YAML alias *{event.anchor} is not supported", event.start_mark)
            if depth + self._shape(value)[1] - 1 > self._max_depth:
                self._fail(TOO_BIG, event.start_mark)  # max_yaml_depth counts what the alias expands to
            return value
        if depth > self._max_depth:
            self._fail(TOO_BIG, event.start_mark)
        if cls is MappingStartEvent:
            return self._mapping(event, depth)
        if cls is SequenceStartEvent:
            return self._sequence(event, depth)
        self._fail(f"unexpected YAML event {cls.__name__}", event.start_mark)  # pragma: no cover

    def _plain(self, text: str, event: Any) -> object:
        try:
            return psych_scalar(text)
        except PipelineError as err:
            self._fail(err.message, event.start_mark)

    def _mapping(self, event: Any, depth: int) -> object:
        anchor = event.anchor
        if anchor is not None:
            self._anchors[anchor] = _IN_PROGRESS
        out = PosDict()
        out.pos = self._pos(event.start_mark)
        key_pos: dict[Any, Pos] = {}
        out.key_pos = key_pos
        get: Callable[[], Any] = self.get_event
        node = self._node
        cached = _SCALAR_CACHE.get
        file, line1, col1 = self.file, self._line1, self._col1
        child = depth + 1
        shape = self._shape
        grow = self._grow
        size, height = 1, 0
        # The loop is the hot path of a big pipeline: untagged, unanchored scalars are inlined.
        while True:
            key_event = get()
            cls = key_event.__class__
            if cls is MappingEndEvent:
                break
            if cls is ScalarEvent and key_event.tag is None and key_event.anchor is None:
                text = key_event.value
                size += len(text) + 1
                key = cached(text, _MISSING) if key_event.implicit[0] else text
                if key is _MISSING:
                    key = self._plain(text, key_event)
            else:
                key = node(key_event, child)
                size += shape(key)[0]
            value_event = get()
            if key == "<<" and cls is ScalarEvent and key_event.tag not in _STR_TAGS:
                size, merged_height = self._merge(out, key_event, value_event, depth, size)
                height = max(height, merged_height)
                continue
            if value_event.__class__ is ScalarEvent and value_event.tag is None and value_event.anchor is None:
                text = value_event.value
                size += len(text) + 1
                value = cached(text, _MISSING) if value_event.implicit[0] else text
                if value is _MISSING:
                    value = self._plain(text, value_event)
            else:
                value = node(value_event, child)
                size, height = grow(size, height, value, value_event)
            try:
                out[key] = value
            except TypeError:
                self._fail(f"found unhashable key {ruby_inspect(key)}", key_event.start_mark)
            mark = key_event.start_mark
            line = mark.line
            key_pos[key] = (file, line + line1, mark.column + (col1 if line == 0 else 1))
        result: object = out
        if event.tag == _REFERENCE_TAG:
            self.has_references = True
            result = Reference((), Location(*out.pos), raw=dict(out))
        self._built(result, size, height + 1, event)
        if anchor is not None:
            self._anchors[anchor] = result
        return result

    def _merge(self, out: PosDict, key_event: Any, value_event: Any, depth: int, size: int) -> tuple[int, int]:
        """Psych's ``revive_hash`` for ``<<``: ``Hash#merge!`` in key order, else a plain key.

        ``size`` is the mapping's size so far; returns it with what was merged, and the height
        of the merged values. The merged entries are counted before they are copied.
        """
        cls = value_event.__class__
        value = self._node(value_event, depth + 1)
        merged_size, merged_height = self._shape(value)
        size += merged_size
        if size > self._max_size:
            self._fail(TOO_BIG, value_event.start_mark)
        if cls in (AliasEvent, MappingStartEvent) and isinstance(value, PosDict):
            for k, v in value.items():
                out[k] = v
                out.key_pos[k] = value.key_pos.get(k, value.pos)
            return size, merged_height - 1
        if cls is SequenceStartEvent and isinstance(value, list) and all(isinstance(v, PosDict) for v in value):
            merged: dict[Any, Any] = {}
            merged_pos: dict[Any, Pos] = {}
            for item in reversed(value):  # the first mapping of the list wins
                for k, v in item.items():
                    merged[k] = v
                    merged_pos[k] = item.key_pos.get(k, item.pos)
            for k, v in merged.items():
                out[k] = v
                out.key_pos[k] = merged_pos[k]
            return size, merged_height - 2
        out["<<"] = value  # Psych: a TypeError in merge! keeps "<<" as an ordinary key
        out.key_pos["<<"] = self._pos(key_event.start_mark)
        return size, merged_height

    def _sequence(self, event: Any, depth: int) -> object:
        anchor = event.anchor
        if anchor is not None:
            self._anchors[anchor] = _IN_PROGRESS
        out = PosList()
        out.pos = self._pos(event.start_mark)
        item_pos: list[Pos] = []
        out.item_pos = item_pos
        get: Callable[[], Any] = self.get_event
        node = self._node
        cached = _SCALAR_CACHE.get
        append = out.append
        append_pos = item_pos.append
        file, line1, col1 = self.file, self._line1, self._col1
        child = depth + 1
        grow = self._grow
        size, height = 1, 0
        while True:
            item_event = get()
            cls = item_event.__class__
            if cls is SequenceEndEvent:
                break
            if cls is ScalarEvent and item_event.tag is None and item_event.anchor is None:
                text = item_event.value
                size += len(text) + 1
                value = cached(text, _MISSING) if item_event.implicit[0] else text
                if value is _MISSING:
                    value = self._plain(text, item_event)
                append(value)
            else:
                value = node(item_event, child)
                append(value)
                size, height = grow(size, height, value, item_event)
            mark = item_event.start_mark
            line = mark.line
            append_pos((file, line + line1, mark.column + (col1 if line == 0 else 1)))
        result: object = out
        if event.tag == _REFERENCE_TAG:
            self.has_references = True
            location = Location(*out.pos)
            if out and all(isinstance(item, str) for item in out):
                result = Reference(tuple(out), location)
            else:
                result = Reference((), location, raw=list(out))
        self._built(result, size, height + 1, event)
        if anchor is not None:
            self._anchors[anchor] = result
        return result


# --- Files: GitLab's multi-document split ----------------------------------------------------------

# MultiDocYaml::MULTI_DOC_DIVIDER = /^---\s+/ (Ruby's \s), split into at most MAX_DOCUMENTS + 1 pieces.
_DOC_DIVIDER = re.compile(r"^---[ \t\r\n\f\v]+", re.MULTILINE)
_MAX_PIECES = 3


def _pieces(text: str) -> list[tuple[str, int, int]]:
    """``text.split(/^---\\s+/, 3)``: (piece, line offset, column offset of its first line)."""
    bounds: list[tuple[int, int]] = []
    start = 0
    for match in _DOC_DIVIDER.finditer(text):
        if len(bounds) == _MAX_PIECES - 1:
            break
        bounds.append((start, match.start()))
        start = match.end()
    bounds.append((start, len(text)))
    out = []
    for begin, end in bounds:
        line_offset = text.count("\n", 0, begin)
        column_offset = begin - (text.rfind("\n", 0, begin) + 1)
        out.append((text[begin:end], line_offset, column_offset))
    return out


def utf8_size(text: str) -> int:
    """The size of ``text`` in UTF-8 bytes."""
    return len(text) if text.isascii() else len(text.encode())


def _check_text_size(data: bytes | str, file: str, limit: int) -> None:
    """``The parsed YAML is too big`` at the line where a text passes ``limit`` bytes."""
    if len(data) * (4 if isinstance(data, str) else 1) <= limit:
        return  # no need to encode: even four bytes a character fit
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) <= limit:
        return
    raise PipelineError(TOO_BIG, file=file, line=raw.count(b"\n", 0, limit) + 1, column=1)


def load_yaml(text: str, file: str, *, limits: ConfigLimits = DEFAULT_LIMITS) -> YamlDocument:
    """Load a ``.gitlab-ci.yml`` text as GitLab does (header split off, body a mapping).

    Raises ``PipelineError`` with ``file:line:col`` for YAML syntax errors, a document that is
    not a mapping (``Invalid configuration format``), dates/times, and a text or a document over
    ``limits`` (``The parsed YAML is too big``: ``max_yaml_size_bytes``, ``max_yaml_depth``).
    """
    _check_text_size(text, file, limits.max_yaml_size_bytes)
    documents: list[tuple[object, str, int, int]] = []
    references = False
    for piece, line_offset, column_offset in _pieces(text):
        loader = PositionalLoader(piece, file, line_offset=line_offset, column_offset=column_offset, limits=limits)
        value = loader.read_document()
        references = references or loader.has_references
        if not is_blank(value):
            documents.append((value, piece, line_offset, column_offset))
    for value, _piece, line_offset, column_offset in documents:
        if not isinstance(value, PosDict):
            line, column = line_offset + 1, column_offset + 1
            if isinstance(value, (PosList, Reference)):
                line, column = value.location.line, value.location.column
            raise PipelineError("Invalid configuration format", file=file, line=line, column=column)
    header: PosDict | None = None
    if len(documents) > 1 and "spec" in documents[0][0]:  # type: ignore[operator]
        header = documents[0][0]  # type: ignore[assignment]
        body_value, body_text, body_offset, _ = documents[-1]
    elif documents:
        body_value, body_text, body_offset, _ = documents[0]
    else:
        body_value, body_text, body_offset = new_dict((file, 1, 1)), "", 0
    return YamlDocument(
        file=file,
        header=header,
        body=body_value,  # type: ignore[arg-type]
        body_text=body_text,
        body_line=body_offset + 1,
        has_references=references,
    )


def read_text(path: str | Path, file: str | None = None, *, max_bytes: int | None = None) -> str:
    """A file's text (UTF-8, BOM dropped); ``PipelineError`` if it cannot be read or decoded.

    With ``max_bytes``, a longer file is refused (``The parsed YAML is too big``, at the line where
    it passes the limit) after reading no more than ``max_bytes + 1`` bytes of it.
    """
    shown = file if file is not None else str(path)
    try:
        if max_bytes is None:
            data = Path(path).read_bytes()
        else:
            with open(path, "rb") as stream:
                data = stream.read(max_bytes + 1)
            _check_text_size(data, shown, max_bytes)
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise PipelineError(f"(<unknown>): invalid byte sequence in UTF-8 ({err.reason})", file=shown) from None
    except OSError as err:
        raise PipelineError(f"cannot read the file: {err.strerror or err}", file=shown) from None


def load_yaml_file(path: str | Path, file: str | None = None, *, limits: ConfigLimits = DEFAULT_LIMITS) -> YamlDocument:
    """``load_yaml`` on a file; ``file`` is the name used in positions (default: ``path``)."""
    shown = file if file is not None else str(path)
    return load_yaml(read_text(path, shown, max_bytes=limits.max_yaml_size_bytes), shown, limits=limits)
