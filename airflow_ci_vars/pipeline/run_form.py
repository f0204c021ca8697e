"""GitLab's "Run pipeline" form as Airflow's trigger form: ``spec:inputs`` and prefilled variables.

GitLab shows two things when a pipeline is run by hand: the main file's ``spec:inputs`` and the
*prefilled variables*, the top-level ``variables:`` that have a ``description`` (prefilled with
``value``, a dropdown when ``options`` is given; R: ``config/entry/variable.rb``
``value_with_prefill_data``, docs ``ci/variables`` "Prefill variables in manual pipelines").
On Airflow both become DAG params, each with a JSON schema that Airflow's trigger form renders
and that Airflow validates when a run is created (``section`` groups them as "Inputs" and
"Variables" in the form). Airflow does not check a param's default when the DAG is parsed, so
this module does: a bad default is an error located at ``file:line:col`` when the DAG loads.

The param names are the input names and the variable keys as written. An input and a prefilled
variable of the same name, or a name that is one of the run ``conf`` keys this provider reads
(``RESERVED_CONF_KEYS``), is an error: the trigger form puts every param at the top of ``conf``.

At run time (``RunForm.run_inputs``, ``RunForm.prefilled_variables``): the trigger form submits
every param into ``conf``; a REST call only what it sends, as GitLab's form and API differ. A
prefilled variable found in ``conf`` becomes a *pipeline* variable; inputs come from their
top-level names and from ``conf["inputs"]`` (GitLab's API form, winning on a clash).

Nothing here imports Airflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_ci_vars.errors import ParameterError, PipelineError
from airflow_ci_vars.parameters import pipeline_variables
from airflow_ci_vars.pipeline.config import PipelineConfig
from airflow_ci_vars.pipeline.inputs import (
    InputSpec,
    compile_input_regex,
    input_specs,
    resolve_inputs,
    same_inputs,
)
from airflow_ci_vars.pipeline.yaml_loader import Location, key_location
from airflow_ci_vars.variables.model import Layer, Variable, VariableSource

__all__ = [
    "FORM_SOURCE",
    "INPUTS_SECTION",
    "RESERVED_CONF_KEYS",
    "VARIABLES_SECTION",
    "FormField",
    "RunForm",
    "run_form",
    "run_pipeline_variables",
]

#: ``conf`` keys with a meaning of their own here (docs/pipelines.md): never a param name.
RESERVED_CONF_KEYS: tuple[str, ...] = (
    "variables", "build_parameters", "ref", "sha", "ref_type", "environment", "manual", "pipeline_source", "inputs",
    "ci_trigger",
)  # fmt: skip
INPUTS_SECTION = "Inputs"
VARIABLES_SECTION = "Variables"
#: Where a prefilled variable given in a run's ``conf`` comes from (a pipeline variable).
FORM_SOURCE = VariableSource(Layer.PIPELINE, "conf:prefilled")

_JSON_TYPES = {"string": "string", "number": "number", "boolean": "boolean", "array": "array"}


@dataclass(frozen=True, slots=True)
class FormField:
    """One field of the trigger form (one DAG param).

    ``kind`` is ``input`` or ``variable``; ``schema`` the JSON schema without the default;
    ``default`` the value the pipeline was built with (a variable's ``value``, an input's value);
    ``location`` where it is declared.
    """

    name: str
    kind: str
    schema: Mapping[str, Any]
    default: object = None
    location: Location = field(default=Location("<unknown>", 1, 1), compare=False)


@dataclass(frozen=True, slots=True)
class RunForm:
    """The main file's inputs and prefilled variables, and the input values its pipeline was built with.

    ``file`` and ``seed`` are what the pipeline was loaded from, so that a run with other inputs
    can load it again.
    """

    file: str = ""
    seed: Mapping[str, str] = field(default_factory=dict)
    inputs: tuple[InputSpec, ...] = ()
    values: Mapping[str, object] = field(default_factory=dict)
    fields: tuple[FormField, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.fields)

    @property
    def variable_names(self) -> tuple[str, ...]:
        """The prefilled variables' keys (their param names)."""
        return tuple(f.name for f in self.fields if f.kind == "variable")

    @property
    def prefilled_defaults(self) -> dict[str, object]:
        """Each prefilled variable's key and the value the form is prefilled with."""
        return {f.name: f.default for f in self.fields if f.kind == "variable"}

    def run_inputs(self, conf: Mapping[str, Any] | None) -> dict[str, object]:
        """The inputs of a run: the build values, then ``conf[NAME]``, then ``conf["inputs"]``.

        Raises ``PipelineError`` as GitLab refuses given inputs (unknown name, wrong type...),
        ``ParameterError`` when ``conf["inputs"]`` is not an object.
        """
        conf = conf or {}
        given: dict[str, object] = {}
        for spec in self.inputs:
            if spec.name in conf and conf[spec.name] is not None:
                given[spec.name] = conf[spec.name]
        explicit = conf.get("inputs")
        if explicit is not None:
            if not isinstance(explicit, Mapping):
                raise ParameterError('conf["inputs"] must be an object of input values', names=["inputs"])
            given.update({str(k): v for k, v in explicit.items()})
        if not given:
            return dict(self.values)
        # A required input has no default: the value the DAG was built with stands in for it.
        merged = {**{k: v for k, v in self.values.items() if k not in given}, **given}
        return resolve_inputs(self.inputs, merged, where=Location(self.file, 1, 1))

    def inputs_differ(self, values: Mapping[str, object]) -> bool:
        """Whether ``values`` would interpolate the file differently from the build values."""
        return not same_inputs(values, self.values)

    def prefilled_variables(self, conf: Mapping[str, Any] | None) -> list[Variable]:
        """The prefilled variables a run's ``conf`` gives (pipeline variables, in form order).

        Raises ``ParameterError`` for a value that is not a string (Airflow's validation of the
        params normally refused it already).
        """
        conf = conf or {}
        out: list[Variable] = []
        bad: list[str] = []
        for name in self.variable_names:
            if name not in conf or conf[name] is None:
                continue
            value = conf[name]
            if not isinstance(value, str):
                bad.append(name)
                continue
            out.append(Variable(name, value, source=FORM_SOURCE))
        if bad:
            raise ParameterError(f"prefilled variables must be strings: {', '.join(bad)}", names=bad)
        return out


def run_pipeline_variables(
    conf: Mapping[str, Any] | None, form: RunForm | None, *, prefilled: bool = True
) -> list[Variable]:
    """A run's pipeline variables: the prefilled variables of ``form`` found in ``conf``, then
    ``conf["variables"]``/``build_parameters`` (``parameters.pipeline_variables``), which win a key
    given both ways.

    ``prefilled=False`` (a user who may not set pipeline variables): the form's untouched
    prefilled values are left to the YAML, as GitLab's form leaves them out for such a user.
    Raises ``ParameterError`` for a refused variable.
    """
    given = pipeline_variables(conf)
    if form is None:
        return given
    keys = {v.key for v in given}
    defaults = form.prefilled_defaults
    chosen = [
        v
        for v in form.prefilled_variables(conf)
        if v.key not in keys and (prefilled or v.value != str(defaults.get(v.key)))
    ]
    return chosen + given


def _error(message: str, where: Location) -> PipelineError:
    return PipelineError(message, file=where.file, line=where.line, column=where.column, key="variables")


def _input_field(spec: InputSpec, value: object) -> FormField:
    schema: dict[str, Any] = {"type": _JSON_TYPES[spec.type], "section": INPUTS_SECTION, "title": spec.name}
    if spec.description:
        schema["description"] = spec.description
    if spec.options is not None:
        schema["enum"] = list(spec.options)
    if spec.regex is not None and spec.type == "string":
        pattern = compile_input_regex(spec.regex)
        if pattern is None:
            raise _error(f"`{spec.name}` input: invalid regular expression", spec.where("regex"))
        # No JSON-schema `pattern`: Airflow would check it with Python's backtracking `re`, with
        # other semantics. The form shows the RE2 pattern; the run checks it with RE2 (run_inputs).
        rule = f"the RE2 pattern {spec.regex}"
        schema["description"] = f"{spec.description} (must match {rule})" if spec.description else f"Must match {rule}"
    # A required input (no `default`) has the value the DAG was built with: GitLab needs one to
    # create the pipeline, and so does the factory to build the DAG.
    return FormField(spec.name, "input", schema, default=value, location=spec.location)


def _variable_fields(variables: Mapping[Any, Any], file: str) -> list[FormField]:
    """Prefilled variables: hash-form top-level variables with a ``description``; ``options`` checked."""
    here = Location(*getattr(variables, "pos", (file, 1, 1)))
    fields: list[FormField] = []
    for raw_key, definition in variables.items():
        if not isinstance(definition, Mapping):
            continue
        key = str(raw_key)
        where = key_location(variables, raw_key, here)
        options = definition.get("options")
        value = definition.get("value")
        text = "" if value is None else str(value)
        if options is not None:
            if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
                raise _error(f"variables:{key} config options should be an array of strings", where)
            if options and text not in options:
                raise _error(f"variables:{key} config value must be present in options", where)
        if definition.get("description") is None:
            continue  # GitLab shows only described variables in the form
        schema: dict[str, Any] = {
            "type": "string",
            "section": VARIABLES_SECTION,
            "title": key,
            "description": str(definition["description"]),
        }
        if options:
            schema["enum"] = list(options)
        fields.append(FormField(key, "variable", schema, default=text, location=where))
    return fields


def run_form(
    config: PipelineConfig, *, inputs: Mapping[str, object] | None = None, seed: Mapping[str, str] | None = None
) -> RunForm:
    """The trigger form of a loaded main file; ``inputs`` are the values its pipeline was built with.

    Raises ``PipelineError`` (``file:line:col``) for a prefilled variable whose ``value`` is not in
    its ``options``, an input default that its type, ``options`` or ``regex`` refuse, an invalid
    ``regex``, a param name that is a reserved ``conf`` key, or an input and a prefilled variable
    sharing a name.
    """
    specs = input_specs(config.spec, config.file)
    values = resolve_inputs(specs, inputs, where=Location(config.file, 1, 1)) if specs else {}
    fields = [_input_field(spec, values.get(spec.name)) for spec in specs]
    fields += _variable_fields(config.variables, config.file)
    seen: dict[str, FormField] = {}
    for form_field in fields:
        where = form_field.location
        if form_field.name in RESERVED_CONF_KEYS:
            kind = "an input" if form_field.kind == "input" else "a prefilled variable"
            raise PipelineError(
                f"`{form_field.name}` cannot be {kind}'s name here: Airflow's trigger form puts every input and "
                f"prefilled variable at the top of the run's conf, where `{form_field.name}` has a meaning of its "
                f"own (reserved: {', '.join(RESERVED_CONF_KEYS)}); rename it",
                file=where.file,
                line=where.line,
                column=where.column,
                key=form_field.kind,
            )
        other = seen.get(form_field.name)
        if other is not None:
            raise PipelineError(
                f"`{form_field.name}` is both a spec:inputs input ({other.location}) and a prefilled variable: both "
                "would be the same field of Airflow's trigger form; rename one",
                file=where.file,
                line=where.line,
                column=where.column,
                key="variables",
            )
        seen[form_field.name] = form_field
    return RunForm(file=config.file, seed=dict(seed or {}), inputs=specs, values=values, fields=tuple(fields))
