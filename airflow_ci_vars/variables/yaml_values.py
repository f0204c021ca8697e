"""``variables:`` of a ``.gitlab-ci.yml``: value stringification and default/job merging.

R: ``lib/gitlab/ci/config/entry/variable.rb`` (``SimpleVariable``: any scalar, ``to_s``),
``lib/gitlab/config/entry/validators.rb`` (``ScalarValidator``), ``lib/gitlab/ci/variables/helpers.rb``,
``lib/gitlab/ci/pipeline/seed/build.rb``. Seed 001 wins over GitLab's code for ``variables: {}``:
an explicitly empty job ``variables`` drops the default (top-level) variables.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Union

from airflow_ci_vars.errors import VariableValidationError
from airflow_ci_vars.variables.model import Layer, Variable, VariableSource

__all__ = [
    "Inherit",
    "merge_yaml_variables",
    "ruby_float_to_s",
    "yaml_value_to_string",
    "yaml_variables",
]

Inherit = Union[bool, Sequence[str]]

_NOT_STRING_OR_HASH = "variable definition must be either a string or a hash"


def ruby_float_to_s(value: float) -> str:
    """Ruby's ``Float#to_s``: ``1.5``, ``1.0``, ``1.0e+20``, ``1.0e-05``, ``Infinity``, ``NaN``.

    Python's shortest ``repr`` switches to an exponent at the same places (below ``1e-4``, from
    ``1e16``); Ruby always writes a fraction (``1e+20`` -> ``1.0e+20``).
    """
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "Infinity" if value > 0 else "-Infinity"
    mantissa, exponent, power = repr(value).partition("e")
    if exponent and "." not in mantissa:
        mantissa += ".0"
    return mantissa + exponent + power


def yaml_value_to_string(value: object, *, key: str = "") -> str:
    """Stringify one YAML variable value like GitLab (``SimpleVariable#value``: Ruby ``to_s``).

    GitLab takes any scalar (``ScalarValidator``: string, integer, float, boolean): strings stay
    as they are, integers become their decimal text (YAML 1.1 reads ``012345`` as octal, so it
    becomes ``5349``, as in GitLab), booleans ``true``/``false``, floats Ruby's text
    (``1.5``, ``1.0``, ``1.0e+20``; ``1e3`` has no dot, so Psych already read it as a string).
    ``null`` becomes ``""`` (a deviation: GitLab refuses it). Lists and mappings are refused
    with GitLab's message.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int)):
        return str(value)
    if isinstance(value, float):
        return ruby_float_to_s(value)
    raise VariableValidationError(f"variables:{key} {_NOT_STRING_OR_HASH}", key=key, field="value")


def yaml_variables(
    definitions: Mapping[str, object] | None,
    *,
    layer: Layer = Layer.JOB,
    name: str | None = None,
    allowed_keys: Iterable[str] = ("value", "expand", "description", "options"),
) -> list[Variable]:
    """Turn a YAML ``variables:`` mapping into ``Variable`` records.

    Accepts plain values and the hash form (``value``, ``description``, ``expand``,
    ``options``); ``expand: false`` makes the variable raw. Unknown hash keys are refused with
    GitLab's ``uses invalid data keys: <k>``.
    """
    if not definitions:
        return []
    allowed = set(allowed_keys)
    source = VariableSource(layer, name)
    out: list[Variable] = []
    for raw_key, spec in definitions.items():
        key = str(raw_key)
        if isinstance(spec, Mapping):
            unknown = sorted(str(k) for k in spec if k not in allowed)
            if unknown:
                raise VariableValidationError(
                    f"variables:{key} config uses invalid data keys: {', '.join(unknown)}", key=key, field="value"
                )
            expand = spec.get("expand", True)
            if not isinstance(expand, bool):
                raise VariableValidationError(
                    f"variables:{key} expand should be a boolean value", key=key, field="expand"
                )
            description = spec.get("description")
            out.append(
                Variable(
                    key,
                    yaml_value_to_string(spec.get("value"), key=key),
                    raw=not expand,
                    description=None if description is None else str(description),
                    source=source,
                )
            )
        else:
            out.append(Variable(key, yaml_value_to_string(spec, key=key), source=source))
    return out


def _inherited(defaults: Sequence[Variable], inherit: Inherit) -> list[Variable]:
    if inherit is True:
        return list(defaults)
    if inherit is False:
        return []
    if isinstance(inherit, str) or not all(isinstance(k, str) for k in inherit):
        raise VariableValidationError("inherit:variables config should be a bool or array of strings", field="inherit")
    wanted = set(inherit)
    return [v for v in defaults if v.key in wanted]


def merge_yaml_variables(
    defaults: Iterable[Variable],
    job: Iterable[Variable] | None,
    *,
    inherit: Inherit = True,
    rules: Iterable[Variable] = (),
) -> list[Variable]:
    """A job's YAML variables: inherited defaults, overridden by the job, then by ``rules:variables``.

    ``job=None`` means the job has no ``variables:`` keyword; an explicitly empty job mapping
    drops every default (seed 001). Follows ``Helpers.merge_variables``: the newer list comes
    first and each key appears once.
    """
    current = _inherited(list(defaults), inherit)
    if job is not None:
        job_list = list(job)
        current = _merge(current, job_list) if job_list else []
    return _merge(current, list(rules))


def _merge(current: list[Variable], new: list[Variable]) -> list[Variable]:
    if not new:
        return current
    seen: set[str] = set()
    out: list[Variable] = []
    for v in new + current:
        if v.key not in seen:
            seen.add(v.key)
            out.append(v)
    return out
