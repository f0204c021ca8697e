"""Pipeline variables from a REST ``conf`` (``dag_run.conf``): GitLab and CircleCI forms.

Pure: no Airflow import. :func:`pipeline_variables` reads two keys of ``conf`` and ignores the
others (``ref``, ``sha``...):

``variables`` -- GitLab's pipeline-creation API, as a mapping ``{"KEY": "value"}`` or a list
``[{"key": "KEY", "value": "v", "variable_type": "env_var" | "file", "raw": false}]``
(``variable_type`` and ``raw`` optional; ``key`` and ``value`` required; no other fields).

- Keys follow GitLab's key rules: letters, digits and ``_`` (a leading digit is allowed),
  1 to 255 characters, stripped of ASCII whitespace first (Ruby ``strip``). Duplicates --
  compared after stripping -- are refused with GitLab's wording ``Duplicate variable name: K``
  / ``Duplicate variable names: A, B`` and no variable is created.
- Values: GitLab's API declares them as strings. Strings are taken as-is; integers and finite
  floats are accepted as their text (``5`` -> ``5``, ``1.5`` -> ``1.5``; floats use Python's
  shortest repr, so ``1e20`` -> ``1e+20`` where Ruby would write ``1.0e+20``). Booleans, null,
  lists and objects are refused, naming the key: in ``.gitlab-ci.yml`` they are config errors
  too, and silently turning ``{"a": 1}`` into some text is never what a GitLab user meant.
  Values are at most 500,000,000 characters.

``build_parameters`` -- CircleCI API v1.1 parameterized builds, a mapping ``{name: value}``.

- Names: ASCII letters, digits and ``_``, not starting with a digit, at least one character
  (CircleCI), and at most 255 characters (GitLab's key limit, since they become pipeline
  variables here).
- Values are "all just treated as simple strings": strings as-is, numbers as JSON text
  (``5`` -> ``5``), objects and lists as JSON with ``", "`` and ``": "`` separators
  (``{"quux": 1}`` -> ``{"quux": 1}``); we also choose: non-ASCII characters kept as they are
  (``ensure_ascii=False``), booleans in JSON spelling (``true``/``false``), null -> empty
  string. NaN/Infinity and non-JSON objects are refused.
- Build parameters are created ``raw=True``: CircleCI never interpolates one build parameter
  into another.

Both keys may be present; a name defined in both is a duplicate (``Duplicate variable name``)
and refused rather than silently shadowed -- it is one request, as in GitLab. The result lists
the ``variables`` first, then the ``build_parameters``, each in the given order.

A value containing a NUL character is refused in both forms (neither GitLab nor a process
environment can hold it).

Every problem is collected and reported at once in one
:class:`~airflow_ci_vars.errors.ParameterError` whose ``names`` lists every offending name
(or ``variables[i]`` for a list item without a usable key). Messages never echo a value.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence

from airflow_ci_vars.errors import KeyValidationError, ParameterError
from airflow_ci_vars.variables.keys import MAX_KEY_LENGTH, parameter_name_problem, validate_key
from airflow_ci_vars.variables.model import (
    ENV_VAR,
    FILE,
    Layer,
    Variable,
    VariableSource,
    VariableType,
)

__all__ = [
    "BUILD_PARAMETERS_SOURCE",
    "MAX_VALUE_LENGTH",
    "PIPELINE_SOURCES",
    "RESTRICTED_CONF_KEYS",
    "SERVER_CONF_KEYS",
    "VARIABLES_SOURCE",
    "build_parameter_text",
    "conf_schemas",
    "pipeline_variables",
    "restricted_conf",
    "run_ref",
]

MAX_VALUE_LENGTH = 500_000_000  # R: app/models/ci/pipeline_variable_item.rb
VARIABLES_SOURCE = VariableSource(Layer.PIPELINE, "conf:variables")
BUILD_PARAMETERS_SOURCE = VariableSource(Layer.PIPELINE, "conf:build_parameters")

_ITEM_FIELDS = ("key", "value", "variable_type", "raw")
_VARIABLE_TYPES: tuple[VariableType, ...] = (ENV_VAR, FILE)
_VALIDATION_PREFIX = "Validation failed: "


class _Problems:
    """Collects every problem so that one error can name all bad keys.

    ``keys`` records every well-formed key seen (even of an item refused for another reason),
    so that duplicates are found across both forms.
    """

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.names: list[str] = []
        self.keys: list[str] = []

    def add(self, name: str, message: str) -> None:
        self.messages.append(message)
        if name not in self.names:
            self.names.append(name)


def _label(name: object) -> str:
    text = repr(name)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__}"


def _gitlab_value_text(value: object) -> str | None:
    """GitLab API value -> text, or None when the type is refused."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    return None


def build_parameter_text(value: object) -> str:
    """Render a CircleCI build parameter value as the text its environment variable holds.

    Strings as-is; ``None`` -> ``""``; everything else as JSON with ``", "``/``": "``
    separators and non-ASCII kept (``5`` -> ``5``, ``True`` -> ``true``,
    ``{"quux": 1}`` -> ``{"quux": 1}``). Raises ``ValueError``/``TypeError`` for NaN,
    Infinity or values that are not JSON data.
    """
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _check_value_text(problems: _Problems, name: str, label: str, text: str) -> bool:
    if len(text) > MAX_VALUE_LENGTH:
        problems.add(name, f"{label}: value is too long (maximum is {MAX_VALUE_LENGTH} characters)")
        return False
    if "\x00" in text:
        problems.add(name, f"{label}: value cannot contain a NUL character")
        return False
    return True


def _gitlab_key(problems: _Problems, raw_key: object, label: str, name: str) -> str | None:
    if not isinstance(raw_key, str):
        problems.add(name, f"{label}: key must be a string, not {_type_name(raw_key)}")
        return None
    try:
        key = validate_key(raw_key)
    except KeyValidationError as exc:
        reason = exc.message.removeprefix(_VALIDATION_PREFIX)
        problems.add(raw_key, f"{label}: {reason}")
        return None
    problems.keys.append(key)
    return key


def _gitlab_variable(
    problems: _Problems,
    raw_key: object,
    value: object,
    *,
    label: str,
    name: str,
    variable_type: VariableType = ENV_VAR,
    raw: bool = False,
) -> Variable | None:
    key = _gitlab_key(problems, raw_key, label, name)
    text = _gitlab_value_text(value)
    if text is None:
        problems.add(key or name, f"{label}: value must be a string or a number, not {_type_name(value)}")
        return None
    if key is None or not _check_value_text(problems, key, label, text):
        return None
    return Variable(key, text, variable_type=variable_type, raw=raw, source=VARIABLES_SOURCE)


def _from_mapping(problems: _Problems, variables: Mapping[object, object]) -> list[Variable]:
    out = []
    for raw_key, value in variables.items():
        variable = _gitlab_variable(problems, raw_key, value, label=f"variable {_label(raw_key)}", name=str(raw_key))
        if variable is not None:
            out.append(variable)
    return out


def _from_item(problems: _Problems, index: int, item: object) -> Variable | None:
    where = f"variables[{index}]"
    if not isinstance(item, Mapping):
        problems.add(where, f"{where}: must be an object with 'key' and 'value', not {_type_name(item)}")
        return None
    raw_key = item.get("key")
    name = raw_key if isinstance(raw_key, str) else where
    label = f"{where} ({_label(raw_key)})" if isinstance(raw_key, str) else where
    ok = True
    unknown = [field for field in item if field not in _ITEM_FIELDS]
    if unknown:
        fields = ", ".join(_label(field) for field in unknown)
        problems.add(name, f"{label}: unknown field(s) {fields} (allowed: {', '.join(_ITEM_FIELDS)})")
        ok = False
    for required in ("key", "value"):
        if required not in item:
            problems.add(name, f"{label}: missing '{required}'")
            ok = False
    variable_type = item.get("variable_type", ENV_VAR)
    if variable_type not in _VARIABLE_TYPES:
        problems.add(name, f"{label}: variable_type must be 'env_var' or 'file', not {_label(variable_type)}")
        ok = False
    raw = item.get("raw", False)
    if not isinstance(raw, bool):
        problems.add(name, f"{label}: raw must be true or false, not {_type_name(raw)}")
        ok = False
    if "key" not in item:
        return None
    variable = _gitlab_variable(
        problems,
        raw_key,
        item.get("value", ""),
        label=label,
        name=name,
        variable_type=ENV_VAR if variable_type not in _VARIABLE_TYPES else variable_type,
        raw=raw is True,
    )
    return variable if ok else None


def _gitlab_variables(problems: _Problems, variables: object) -> list[Variable]:
    if isinstance(variables, Mapping):
        return _from_mapping(problems, variables)
    if isinstance(variables, Sequence) and not isinstance(variables, (str, bytes, bytearray)):
        out = []
        for index, item in enumerate(variables):
            variable = _from_item(problems, index, item)
            if variable is not None:
                out.append(variable)
        return out
    problems.add(
        "variables",
        'conf[\'variables\'] must be an object {"KEY": "value"} or a list of '
        '{"key": ..., "value": ..., "variable_type": ..., "raw": ...} objects, '
        f"not {_type_name(variables)}",
    )
    return []


def _build_parameters(problems: _Problems, parameters: object) -> list[Variable]:
    if not isinstance(parameters, Mapping):
        problems.add(
            "build_parameters",
            f"conf['build_parameters'] must be an object {{\"name\": value}}, not {_type_name(parameters)}",
        )
        return []
    out = []
    for name, value in parameters.items():
        label = f"build parameter {_label(name)}"
        problem = parameter_name_problem(name)
        if problem is None and len(name) > MAX_KEY_LENGTH:
            problem = f"is too long (maximum is {MAX_KEY_LENGTH} characters)"
        if problem is not None:
            problems.add(str(name), f"{label}: name {problem}")
            continue
        assert isinstance(name, str)  # parameter_name_problem refuses non-strings
        problems.keys.append(name)
        try:
            text = build_parameter_text(value)
        except (TypeError, ValueError):
            problems.add(name, f"{label}: value must be JSON data (string, number, boolean, null, list, object)")
            continue
        if _check_value_text(problems, name, label, text):
            out.append(Variable(name, text, raw=True, source=BUILD_PARAMETERS_SOURCE))
    return out


def _duplicates(keys: Sequence[str]) -> list[str]:
    counts: dict[str, int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    return [key for key, count in counts.items() if count > 1]


def _duplicate_message(duplicates: Sequence[str]) -> str:
    # R: lib/gitlab/ci/pipeline/chain/build/associations.rb -- "name".pluralize(count)
    noun = "name" if len(duplicates) == 1 else "names"
    return f"Duplicate variable {noun}: {', '.join(duplicates)}"


def pipeline_variables(conf: Mapping[str, object] | None) -> list[Variable]:
    """Turn ``conf["variables"]`` (GitLab) and ``conf["build_parameters"]`` (CircleCI) into variables.

    Returns pipeline-layer ``Variable`` records (``variables`` first, then build parameters);
    ``None``/``{}`` -> ``[]``; other conf keys are ignored. Raises ``ParameterError`` naming
    every bad key at once; on any error no variable is returned.
    """
    if conf is None:
        return []
    if not isinstance(conf, Mapping):
        raise ParameterError(f"conf must be an object, not {_type_name(conf)}", names=["conf"])
    problems = _Problems()
    result: list[Variable] = []
    # JSON null is "not given", as for an optional parameter of GitLab's API.
    if conf.get("variables") is not None:
        result += _gitlab_variables(problems, conf["variables"])
    if conf.get("build_parameters") is not None:
        result += _build_parameters(problems, conf["build_parameters"])
    duplicates = _duplicates(problems.keys)
    if duplicates or problems.messages:
        messages = [_duplicate_message(duplicates)] if duplicates else []
        if problems.messages:
            messages.append("Invalid pipeline variables: " + "; ".join(problems.messages))
        names = list(duplicates) + [n for n in problems.names if n not in duplicates]
        raise ParameterError("; ".join(messages), names=names)
    return result


# GitLab's pipeline sources (R: app/models/concerns/enums/ci/pipeline.rb) a run's conf may name.
PIPELINE_SOURCES = (
    "web",
    "api",
    "trigger",
    "schedule",
    "push",
    "pipeline",
    "parent_pipeline",
    "merge_request_event",
    "external_pull_request_event",
    "chat",
    "webide",
    "external",
)
# JSON Schema patterns of the two name rules above (``\s`` of Ruby's strip: ASCII whitespace and NUL).
_KEY_PATTERN = r"^[\t\n\v\f\r \u0000]*[A-Za-z0-9_]{1,255}[\t\n\v\f\r \u0000]*$"
_PARAMETER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,254}$"


def conf_schemas() -> dict[str, dict[str, object]]:
    """JSON Schemas of the run ``conf`` keys a pipeline reads, one per key, for Airflow's params.

    Airflow validates a run's ``conf`` against its DAG's params when the run is created, so a
    REST call with a badly named variable or a value of the wrong shape gets HTTP 400 and no run
    exists. The schemas check names and shapes (the rules above); :func:`pipeline_variables`
    still checks everything when a job starts (duplicates after stripping, NUL, lengths).
    """
    value = {"type": ["string", "integer", "number"]}
    item = {
        "type": "object",
        "required": ["key", "value"],
        "additionalProperties": False,
        "properties": {
            "key": {"type": "string", "pattern": _KEY_PATTERN},
            "value": value,
            "variable_type": {"enum": ["env_var", "file"]},
            "raw": {"type": "boolean"},
        },
    }
    return {
        # propertyNames/additionalProperties check objects only, items arrays only: one schema
        # for both forms keeps Airflow's 400 message precise ("'1A-' does not match ...").
        "variables": {
            "type": ["object", "array", "null"],
            "propertyNames": {"pattern": _KEY_PATTERN},
            "additionalProperties": value,
            "items": item,
            "description": 'GitLab pipeline variables: {"KEY": "value"} or [{"key": ..., "value": ...}]',
        },
        "build_parameters": {
            "type": ["object", "null"],
            "propertyNames": {"pattern": _PARAMETER_PATTERN},
            "description": "CircleCI build parameters: {name: value}; values become strings",
        },
        "ref": {
            "type": ["string", "null"],
            "minLength": 1,
            "description": "branch or tag (default: the default branch)",
        },
        "sha": {
            "type": ["string", "null"],
            "pattern": "^([0-9a-fA-F]{40}|[0-9a-fA-F]{64})$",
            "description": "the commit SHA (CI_COMMIT_SHA)",
        },
        "environment": {
            "type": ["string", "null"],
            "minLength": 1,
            "description": "the environment of jobs without an environment: keyword (scoped variables)",
        },
    }


#: ``conf`` keys that change what jobs see or whether they run: GitLab's pipeline-variable
#: restriction (spec §10) covers them (``ref``/``sha`` obey the protected-ref rule instead, and
#: ``inputs`` are open to anyone who may run the pipeline, as in GitLab).
RESTRICTED_CONF_KEYS = ("variables", "build_parameters", "environment", "manual")
#: ``conf`` keys only the deployment writes: ``CI_PIPELINE_SOURCE`` and the trigger stamp come
#: from how the run started (``permissions.actor``); the api-server plugin refuses a caller's.
SERVER_CONF_KEYS = ("pipeline_source", "ci_trigger")


def restricted_conf(conf: Mapping[str, object] | None, prefilled: Mapping[str, object] | None = None) -> list[str]:
    """What a run's ``conf`` sets that the pipeline-variable restriction covers, by name.

    ``variables``/``build_parameters`` when non-empty, ``environment`` when given, ``manual``
    whenever present (it decides which manual jobs run), and each prefilled variable of the trigger
    form (``prefilled``: name -> the value it is prefilled with) whose value differs: Airflow's
    form submits every field, so an untouched field sets nothing, as GitLab's form leaves the
    variables out for a user who may not set them.
    """
    conf = conf or {}
    given = [key for key in ("variables", "build_parameters") if conf.get(key)]
    if conf.get("environment"):
        given.append("environment")
    if "manual" in conf:
        given.append("manual")
    for name, default in (prefilled or {}).items():
        value = conf.get(name)
        if value is not None and str(value) != str(default):
            given.append(f"variable {name}")
    return given


def run_ref(conf: Mapping[str, object] | None, default_branch: str) -> str | None:
    """The ref a run is on: ``conf["ref"]``, else the project's default branch (None when the
    conf's ``ref`` is not a string: Airflow refuses such a conf against the DAG's params)."""
    ref = (conf or {}).get("ref") or default_branch
    return ref if isinstance(ref, str) else None
