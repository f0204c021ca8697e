"""GitLab's save rules for stored variables (instance, group, project): every rule and its message.

R: ``app/models/concerns/ci/has_variable.rb`` (key; ``key=`` strips ``to_s``), ``ci/maskable.rb``
(masked values), ``ci/hidable_variable.rb`` (hidden requires masked on create; ``hidden``, and
``masked`` of a hidden variable, cannot change on update), ``ci/raw_variable.rb``,
``has_environment_scope.rb`` + ``lib/gitlab/regex.rb`` (environment scope),
``app/models/ci/instance_variable.rb`` (10,000-character values, description of 255),
``app/models/ci/pipeline_variable_item.rb`` (500,000,000-character values) and the plan limits of
``instance_limits.md`` (variables per project and group).

The one place these rules live. Three readers feed it, through two thin adapters that only say
what kind of scalar each field holds (:class:`Raw`): :func:`yaml_raw` for the settings file's YAML
nodes (``settings.py``, which locates each problem at its node's line) and :func:`json_raw` for
JSON records (the Vault store's records, the CLI's ``variables set``). :func:`read_variable` turns
one record's fields into a checked ``Variable`` or its problems; :func:`check_save` is what both
stores (and, before opening one, the CLI) run when a variable is saved: the same record rules,
plus GitLab's update rules and the layer's limit. Decisions of ours: instance variables cannot be
scoped (GitLab's have no scope), and the first problem of a variable is reported (GitLab lists all).

Messages name keys and fields, never a value. Pure: no Airflow import.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, TypeVar

from yaml.constructor import SafeConstructor
from yaml.nodes import Node, ScalarNode, SequenceNode

from airflow_ci_vars.errors import VariableValidationError
from airflow_ci_vars.masking import validate_maskable
from airflow_ci_vars.variables.keys import ruby_strip, validate_environment_scope, validate_key
from airflow_ci_vars.variables.model import Layer, Variable, VariableSource

__all__ = [
    "DESCRIPTION_LIMIT",
    "FIELDS",
    "FLAGS",
    "HIDDEN_UPDATE_MESSAGE",
    "INSTANCE_SCOPE_MESSAGE",
    "INSTANCE_VALUE_LIMIT",
    "LAYER_LIMITS",
    "MASKED_UPDATE_MESSAGE",
    "VALUE_LIMIT",
    "Problem",
    "Raw",
    "check_save",
    "check_update",
    "json_raw",
    "key_text",
    "layer_limit_problem",
    "read_variable",
    "record_identity",
    "short_key",
    "unique_in_layer",
    "validate_variable",
    "variable_label",
    "yaml_raw",
]

T = TypeVar("T")

# -- the rules' figures ---------------------------------------------------------------------------

INSTANCE_VALUE_LIMIT = 10_000
VALUE_LIMIT = 500_000_000
DESCRIPTION_LIMIT = 255
# Plan limits (GitLab docs, ``instance_limits.md``): variables per project and per group.
LAYER_LIMITS = {Layer.PROJECT: 8000, Layer.GROUP: 30000}
_LIMIT_NAMES = {Layer.PROJECT: "project ci variables", Layer.GROUP: "group ci variables"}
_VARIABLE_TYPES = ("env_var", "file")

FIELDS = ("key", "value", "variable_type", "masked", "hidden", "protected", "raw", "environment_scope", "description")
"""The fields of a stored variable, in the settings file and in Vault records."""
FLAGS = ("masked", "hidden", "protected", "raw")
_FIELD_SET = frozenset(FIELDS)
_CONVERTED_FIELDS = FIELDS[1:]

INSTANCE_SCOPE_MESSAGE = "instance variables cannot have an environment scope (GitLab's are not scoped)"
HIDDEN_UPDATE_MESSAGE = "Updating hidden attribute is not allowed on updates."
MASKED_UPDATE_MESSAGE = "Updating masked attribute is not allowed on updates for hidden variables."

# -- one variable ---------------------------------------------------------------------------------


def validate_variable(variable: Variable, *, layer: Layer | None = None) -> Variable:
    """Check a variable as GitLab does when it is created; return it with key and scope stripped.

    In order: the key, the environment scope (none for an instance variable), the type, the value
    (a string within the layer's size bound), hidden requires masked, maskability, UTF-8 text and
    the description's length. Raises ``VariableValidationError`` (or its subclasses
    ``KeyValidationError``, ``MaskabilityError``) naming the key and the field, never the value.
    """
    return _check_record(variable, layer if layer is not None else _layer(variable), hidden_on_create=True)


def _identity(variable: Variable, layer: Layer | None) -> Variable:
    """Key and environment scope checked and stripped: what tells one stored variable from another."""
    key = validate_key(variable.key)
    scope = variable.environment_scope
    if layer is Layer.INSTANCE and not (isinstance(scope, str) and ruby_strip(scope) == "*"):
        raise VariableValidationError(INSTANCE_SCOPE_MESSAGE, key=key, field="environment_scope")
    scope = validate_environment_scope(variable.environment_scope, key=key)
    if key != variable.key or scope != variable.environment_scope:
        return dataclasses.replace(variable, key=key, environment_scope=scope)
    return variable


def _check_record(variable: Variable, layer: Layer | None, *, hidden_on_create: bool) -> Variable:
    variable = _identity(variable, layer)
    key = variable.key
    if not isinstance(variable.value, str):
        raise VariableValidationError(f"Validation failed: Value of '{key}' must be a string", key=key, field="value")
    if variable.variable_type not in _VARIABLE_TYPES:
        raise VariableValidationError(
            f"Validation failed: Variable type of '{key}' is not included in the list (env_var, file)",
            key=key,
            field="variable_type",
        )
    limit = INSTANCE_VALUE_LIMIT if layer is Layer.INSTANCE else VALUE_LIMIT
    if len(variable.value) > limit:
        raise VariableValidationError(
            f"Validation failed: Value of '{key}' is too long (maximum is {limit} characters)", key=key, field="value"
        )
    if hidden_on_create and variable.hidden and not variable.masked:
        raise VariableValidationError(
            f"Validation failed: Masked of '{key}' should be true when variable is hidden", key=key, field="hidden"
        )
    if variable.masked:
        validate_maskable(variable.value, raw=variable.raw, key=key)
    for name, text in (("value", variable.value), ("description", variable.description or "")):
        if not _is_utf8(text):  # lone surrogates (undecodable bytes from a command line)
            raise VariableValidationError(
                f"Validation failed: {name.capitalize()} of '{key}' is not valid UTF-8 text", key=key, field=name
            )
    if variable.description is not None and len(variable.description) > DESCRIPTION_LIMIT:
        raise VariableValidationError(
            f"Validation failed: Description is too long (maximum is {DESCRIPTION_LIMIT} characters)",
            key=key,
            field="description",
        )
    return variable


def _is_utf8(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _layer(variable: Variable) -> Layer | None:
    return variable.source.layer if variable.source is not None else None


# -- saving into a layer --------------------------------------------------------------------------


def check_update(old: Variable, new: Variable) -> None:
    """GitLab's update rules (``Ci::HidableVariable``, ``on: :update``): ``hidden`` cannot change;
    ``masked`` of a hidden variable cannot change. Raises ``VariableValidationError``."""
    if old.hidden != new.hidden:
        raise VariableValidationError(HIDDEN_UPDATE_MESSAGE, key=new.key, field="hidden")
    if old.hidden and old.masked != new.masked:
        raise VariableValidationError(MASKED_UPDATE_MESSAGE, key=new.key, field="masked")


def layer_limit_problem(layer: Layer, count: int) -> str | None:
    """GitLab's message when a layer would hold ``count`` variables, over its plan limit; else None."""
    limit = LAYER_LIMITS.get(layer)
    if limit is None or count <= limit:
        return None
    return f"Maximum number of {_LIMIT_NAMES[layer]} ({limit}) exceeded"


def check_save(variable: Variable, *, layer: Layer, current: Sequence[Variable] | None) -> tuple[Variable, int | None]:
    """Check the save of ``variable`` into a layer holding ``current``; return it stripped, and the
    index of the variable it replaces (same key and scope: an update) or None (a create).

    The identity (key, scope), then on update GitLab's update rules, then the record rules of
    :func:`validate_variable` (hidden requires masked only on create), then the layer's limit.
    ``current=None`` (the layer is not known yet: the CLI before it opens a store) leaves out the
    rules that depend on it: create or update, and the limit. Raises ``VariableValidationError``.
    """
    candidate = _identity(variable, layer)
    if current is None:
        return _check_record(candidate, layer, hidden_on_create=False), None
    ident = (candidate.key, candidate.environment_scope)
    index = next((i for i, v in enumerate(current) if (v.key, v.environment_scope) == ident), None)
    if index is not None:
        check_update(current[index], candidate)
    checked = _check_record(candidate, layer, hidden_on_create=True)
    if index is None and (problem := layer_limit_problem(layer, len(current) + 1)):
        raise VariableValidationError(problem, key=checked.key)
    return checked, index


def unique_in_layer(
    parsed: Iterable[tuple[Variable, T]], report: Callable[[Variable, str, T, T], None]
) -> tuple[Variable, ...]:
    """The variables of a layer read from a store, the first of each key and scope kept.

    Each later one is reported as ``report(variable, message, where, first_where)`` (GitLab's
    uniqueness of the key per environment scope); ``where`` locates a variable for the reader.
    """
    seen: dict[tuple[str, str], T] = {}
    kept: list[Variable] = []
    for variable, where in parsed:
        ident = (variable.key, variable.environment_scope)
        if ident in seen:
            message = (
                f"Validation failed: Key ({variable.key}) has already been taken "
                f"for environment scope '{variable.environment_scope}'"
            )
            report(variable, message, where, seen[ident])
            continue
        seen[ident] = where
        kept.append(variable)
    return tuple(kept)


# -- records: what a reader found in each field ---------------------------------------------------

Kind = Literal["str", "int", "float", "bool", "null", "other", "list", "mapping"]
_SCALAR_KINDS = frozenset({"str", "int", "float", "bool", "null", "other"})
_TEXT_KINDS = frozenset({"str", "int", "float"})


class Raw(NamedTuple):
    """One field as a reader found it, whatever the format (a tuple: one is built per field read).

    ``kind`` is the scalar's type (or ``list``/``mapping``), ``text`` the scalar as written (YAML)
    or as JSON spells it, ``value`` the integer of an ``int`` and the truth of a ``bool``, ``what``
    how a message names its type (``a float``, ``a date``...).
    """

    kind: Kind
    text: str = ""
    value: int | bool | None = None
    what: str = ""


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem of a record: the variable's ``label``, the ``message``, the ``key`` and ``field``
    it concerns, and ``at``: the field whose value (``on_name``: whose name) a reader points at,
    None for the whole record. ``str()`` gives ``LABEL: MESSAGE``."""

    label: str
    message: str
    key: str | None = None
    field: str | None = None
    at: str | None = None
    on_name: bool = False

    def __str__(self) -> str:
        return f"{self.label}: {self.message}"


def short_key(key: str | None) -> str:
    """A variable key shortened for error messages (long keys are cut at 40 characters)."""
    text = key or ""
    return text if len(text) <= 60 else text[:40] + "..."


def variable_label(where: str, key: str | None, index: int) -> str:
    """How messages name a variable: ``WHERE variable 'KEY'``, or ``WHERE variable #N`` without a key."""
    prefix = f"{where} " if where else ""
    return f"{prefix}variable '{short_key(key)}'" if key is not None else f"{prefix}variable #{index}"


def key_text(raw: Raw | None) -> str | None:
    """The key a record's ``key`` field gives (any scalar's text, Ruby's ``to_s``); None if it has none."""
    if raw is None or raw.kind not in _SCALAR_KINDS or raw.kind == "null":
        return None
    return raw.text


# Where a rule's problem points: a masked or too-long value at the value, not at the flag.
_PROBLEM_AT = {"masked": "value"}
_EXPECTED = {
    "key": "'key' must be a string",
    "variable_type": "'variable_type' must be a string (env_var or file)",
    "environment_scope": "'environment_scope' must be a string",
    "description": "'description' must be a string",
    **{flag: f"'{flag}' must be true or false" for flag in FLAGS},
}
_INVALID = object()


def _field_value(name: str, raw: Raw) -> object:
    """A field's value from what the reader found; ``_INVALID`` when its type is wrong."""
    if name == "value":
        if raw.kind == "str":
            return raw.text
        if raw.kind == "null":
            return ""
        if raw.kind == "int":
            return str(raw.value)
        return _INVALID
    if name in FLAGS:
        return raw.value if raw.kind == "bool" else _INVALID
    if name == "description" and raw.kind == "null":
        return None
    return raw.text if raw.kind in _TEXT_KINDS else _INVALID


def _type_message(name: str, raw: Raw) -> str:
    if name != "value":
        return _EXPECTED[name]
    quote = " (quote it)" if raw.kind in _SCALAR_KINDS else ""
    return f"'value' must be a string, not {raw.what}{quote}"


def read_variable(
    fields: Mapping[str, Raw],
    *,
    source: VariableSource,
    where: str,
    index: int,
    fragments: Collection[str] = (),
    check: bool = True,
) -> tuple[Variable | None, list[Problem]]:
    """One record of a store: the variable, or None and its problems.

    The fields' types first (each wrong one reported), then, with ``check``, the record rules of
    :func:`validate_variable` for the record's layer (its first problem); without, the variable is
    left for :func:`check_save`. ``where`` prefixes the variable's label, ``index`` (1-based) names
    a record without a key, ``fragments`` are unknown names that are bits of an unquoted value
    (never echoed).
    """
    key_raw = fields.get("key")
    key = key_text(key_raw)
    found: list[tuple[str, str | None, str | None, bool]] = []  # message, field, at, on_name
    if key_raw is None:
        found.append(("missing 'key'", "key", None, False))
    elif key_raw.kind not in _SCALAR_KINDS:
        found.append((_EXPECTED["key"], "key", "key", False))
    if not fields.keys() <= _FIELD_SET:
        for name in fields:
            if name not in _FIELD_SET:
                shown = (
                    "an unknown entry (quote values holding ',')" if name in fragments else f"unknown field '{name}'"
                )
                found.append((f"{shown}; allowed: {', '.join(FIELDS)}", name, name, True))
    if "value" not in fields:
        found.append(("missing 'value'", "value", None, False))
    attrs: dict[str, Any] = {}
    for name in _CONVERTED_FIELDS:
        if (raw := fields.get(name)) is not None:
            converted = _field_value(name, raw)
            if converted is _INVALID:
                found.append((_type_message(name, raw), name, name, False))
            else:
                attrs[name] = converted
    if found:
        label = variable_label(where, key, index)
        return None, [Problem(label, message, key, field, at, on_name) for message, field, at, on_name in found]
    variable = Variable(key or "", attrs.pop("value"), source=source, **attrs)
    if not check:
        return variable, []
    try:
        return validate_variable(variable, layer=source.layer), []
    except VariableValidationError as exc:
        at = _PROBLEM_AT.get(exc.field or "", exc.field or "key")
        problem = Problem(variable_label(where, key, index), exc.message, key, exc.field, at if at in fields else None)
        return None, [problem]


# -- the YAML adapter (the settings file) ---------------------------------------------------------

_TAG = "tag:yaml.org,2002:"
_YAML_KINDS: dict[str, tuple[Kind, str]] = {
    _TAG + "str": ("str", "a string"),
    _TAG + "int": ("int", "an integer"),
    _TAG + "float": ("float", "a float"),
    _TAG + "bool": ("bool", "a boolean"),
    _TAG + "null": ("null", "null"),
    _TAG + "timestamp": ("other", "a date"),
    _TAG + "binary": ("other", "binary data"),
}
_CONSTRUCTOR = SafeConstructor()
_YAML_BOOLS: dict[str, bool] = SafeConstructor.bool_values


def yaml_raw(node: Node) -> Raw:
    """What a YAML node holds, for :func:`read_variable`: scalars as written (YAML 1.1 types)."""
    if not isinstance(node, ScalarNode):
        return Raw("list", what="a list") if isinstance(node, SequenceNode) else Raw("mapping", what="a mapping")
    kind, what = _YAML_KINDS.get(node.tag) or ("other", f"of tag {node.tag}")
    text: str = node.value
    if kind == "bool":
        return Raw(kind, text, _YAML_BOOLS[text.lower()], what)
    if kind == "int":  # 012345 is 5349, as YAML 1.1 says
        return Raw(kind, text, _CONSTRUCTOR.construct_yaml_int(node), what)
    return Raw(kind, text, None, what)


# -- the JSON adapter (Vault records, the CLI) ----------------------------------------------------


def json_raw(value: object) -> Raw:
    """What a JSON value holds, for :func:`read_variable` (``true`` reads as ``true``, as Ruby's ``to_s``)."""
    if value is None:
        return Raw("null", "", what="null")
    if isinstance(value, bool):
        return Raw("bool", "true" if value else "false", value, "a boolean")
    if isinstance(value, int):
        return Raw("int", str(value), value, "an integer")
    if isinstance(value, float):
        return Raw("float", repr(value), what="a float")
    if isinstance(value, str):
        return Raw("str", value, what="a string")
    if isinstance(value, list):
        return Raw("list", what="a list")
    if isinstance(value, Mapping):
        return Raw("mapping", what="a mapping")
    return Raw("other", str(value), what=type(value).__name__)


def record_identity(record: Mapping[str, object]) -> tuple[str, str]:
    """The (key, environment scope) a stored JSON record is known by, stripped as GitLab strips them."""
    key = key_text(json_raw(record.get("key")))
    scope = record.get("environment_scope", "*")
    scope_raw = json_raw(scope)
    return ruby_strip(key or ""), ruby_strip(scope_raw.text) if scope_raw.kind in _TEXT_KINDS else "*"
