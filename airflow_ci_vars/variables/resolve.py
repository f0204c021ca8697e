"""One job's variables, exactly as GitLab and gitlab-runner compute them.

``resolve()`` is the single entry point: it takes every layer plus the run context and returns an
immutable ``JobEnvironment`` -- the final environment, the files to write for file variables, the
values to mask and, for each key, where its value came from and what it overrode.

The precedence order is written once, in ``precedence.PRECEDENCE`` (R: ``Ci::Build#variables``,
``Gitlab::Ci::Variables::Builder#scoped_variables``; GR ``common/build.go`` ``GetAllVariables``);
every function here takes its layers from that table, filtered by the step it serves:
``resolve`` (the job, then the runner's appendix), ``rules_context`` (``rules:if``),
``expanded_environment`` (``environment:name``), ``keyword_context`` (a keyword expanded once
the job exists), ``workflow_context`` (``workflow:rules``) and
``include_context`` (``include:rules``). ``resolve`` then follows Rails' ``sort_and_expand_all``
(runner payload mode) and the runner's ``os.Expand`` pass (``$$`` -> ``$``, file references -> paths).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from airflow_ci_vars.errors import VariableValidationError
from airflow_ci_vars.variables.expansion import (
    VariablesInput,
    expand_value,
    file_variable_path,
    runner_expand,
    sort_and_expand,
    to_variable_list,
)
from airflow_ci_vars.variables.model import FILE, Layer, Variable, VariableSource
from airflow_ci_vars.variables.precedence import (
    RULES_HIDDEN_PREDEFINED,
    Step,
    View,
    collect,
    layer_rank,
    view_of,
)
from airflow_ci_vars.variables.predefined import RunContext
from airflow_ci_vars.variables.yaml_values import Inherit

__all__ = [
    "RULES_HIDDEN_PREDEFINED",
    "expanded_environment",
    "rules_context",
    "Definition",
    "JobEnvironment",
    "Provenance",
    "VariableFile",
    "VariableLayers",
    "group_chain",
    "include_context",
    "keyword_context",
    "resolve",
    "workflow_context",
]

DEFAULT_TEMP_DIR = "/tmp/airflow-ci-vars"


def group_chain(project_path: str) -> list[str]:
    """The groups above a project, root first: ``acme/data/etl`` -> ``['acme', 'acme/data']``."""
    parts = project_path.strip("/").split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _tuple(variables: VariablesInput | None, layer: Layer, name: str | None = None) -> tuple[Variable, ...]:
    if variables is None:
        return ()
    out = []
    for v in to_variable_list(variables):
        out.append(v if v.source is not None else v.with_source(VariableSource(layer, name)))
    return tuple(out)


@dataclass(frozen=True, slots=True, init=False)
class VariableLayers:
    """Every place a job's variables come from. Each layer accepts a mapping or ``Variable``s.

    ``groups`` maps group paths to their variables, root group first (see ``group_chain``).
    ``job=None`` means the job has no ``variables:`` keyword; ``{}`` drops the defaults.
    """

    predefined: tuple[Variable, ...]
    deployment: tuple[Variable, ...]
    default: tuple[Variable, ...]
    job: tuple[Variable, ...] | None
    inherit: Inherit
    rules: tuple[Variable, ...]
    dotenv: tuple[Variable, ...]
    instance: tuple[Variable, ...]
    groups: tuple[tuple[str, tuple[Variable, ...]], ...]
    project: tuple[Variable, ...]
    pipeline: tuple[Variable, ...]
    schedule: tuple[Variable, ...]
    manual: tuple[Variable, ...]
    secrets: tuple[Variable, ...]
    project_path: str | None

    def __init__(
        self,
        *,
        predefined: VariablesInput = (),
        deployment: VariablesInput = (),
        default: VariablesInput = (),
        job: VariablesInput | None = None,
        inherit: Inherit = True,
        rules: VariablesInput = (),
        dotenv: VariablesInput = (),
        instance: VariablesInput = (),
        groups: Mapping[str, VariablesInput] | Sequence[tuple[str, VariablesInput]] = (),
        project: VariablesInput = (),
        project_path: str | None = None,
        pipeline: VariablesInput = (),
        schedule: VariablesInput = (),
        manual: VariablesInput = (),
        secrets: VariablesInput = (),
    ) -> None:
        s = object.__setattr__
        s(self, "predefined", _tuple(predefined, Layer.PREDEFINED))
        s(self, "deployment", _tuple(deployment, Layer.DEPLOYMENT))
        s(self, "default", _tuple(default, Layer.DEFAULT))
        s(self, "job", None if job is None else _tuple(job, Layer.JOB))
        if isinstance(inherit, str):
            raise VariableValidationError(
                "inherit:variables config should be a bool or array of strings", field="inherit"
            )
        s(self, "inherit", inherit if isinstance(inherit, bool) else tuple(inherit))
        s(self, "rules", _tuple(rules, Layer.JOB, "rules"))
        s(self, "dotenv", _tuple(dotenv, Layer.DOTENV))
        s(self, "instance", _tuple(instance, Layer.INSTANCE))
        items = groups.items() if isinstance(groups, Mapping) else groups
        s(self, "groups", tuple((path, _tuple(vs, Layer.GROUP, path)) for path, vs in items))
        s(self, "project", _tuple(project, Layer.PROJECT, project_path))
        s(self, "project_path", project_path)
        s(self, "pipeline", _tuple(pipeline, Layer.PIPELINE))
        s(self, "schedule", _tuple(schedule, Layer.SCHEDULE))
        s(self, "manual", _tuple(manual, Layer.MANUAL))
        secret_list = _tuple(secrets, Layer.SECRETS)
        # gitlab-runner creates resolved secrets Raw and Masked (GR common/secrets.go).
        s(self, "secrets", tuple(dataclasses.replace(v, raw=True, masked=True) for v in secret_list))


@dataclass(frozen=True, slots=True)
class Definition:
    """One definition of a key and what became of it.

    ``status`` is ``applied`` (the value in force), ``overridden`` (a higher layer won) or
    ``excluded`` (never applied; ``reason`` says why: scope, protection, YAML inheritance).
    """

    variable: Variable
    status: Literal["applied", "overridden", "excluded"]
    reason: str = ""

    def describe(self, mask: Callable[[str], str] | None = None) -> str:
        """One line for ``explain``; secret values are shown as ``[MASKED]``.

        ``mask`` is applied to a value *before* it is quoted, so a secret inside it is hidden
        whatever characters it holds.
        """
        v = self.variable
        shown = "[MASKED]" if v.is_secret else repr(mask(v.value) if mask else v.value)
        scope = "" if v.environment_scope == "*" else f" [scope {v.environment_scope}]"
        flags = "".join(f" [{f}]" for f in ("protected", "raw") if getattr(v, f))
        ftype = " [file]" if v.is_file else ""
        text = f"{v.source or 'unknown'}: {shown}{scope}{flags}{ftype}"
        return f"{text} -- {self.reason}" if self.reason else text


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a key's final value came from: the winning definition and every other one."""

    key: str
    value: Variable | None
    definitions: tuple[Definition, ...]

    @property
    def source(self) -> VariableSource | None:
        """The winning layer (and group, project or job); None when the key is not set."""
        return self.value.source if self.value is not None else None

    @property
    def overridden(self) -> tuple[Variable, ...]:
        """Definitions this value overrode, lowest precedence first."""
        return tuple(d.variable for d in self.definitions if d.status == "overridden")

    def explain(self, mask: Callable[[str], str] | None = None) -> str:
        """A human answer to "where did this value come from?"; secrets stay ``[MASKED]``.

        ``mask`` (e.g. ``JobEnvironment.mask``) hides secrets inside other values.
        """
        v = self.value
        if v is None:
            lines = [f"{self.key} is not set"]
        else:
            shown = "[MASKED]" if v.is_secret else repr(mask(v.value) if mask else v.value)
            lines = [f"{self.key} = {shown}  (from {v.source or 'unknown'})"]
        for d in reversed(self.definitions):
            lines.append(f"  {d.status:<10} {d.describe(mask)}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class VariableFile:
    """A file to write for a file-type variable: the variable holds ``path``; never log ``content``."""

    key: str
    path: str
    content: str = field(repr=False)
    masked: bool = False


@dataclass(frozen=True, slots=True)
class JobEnvironment:
    """The resolved variables of one job. Immutable.

    - ``environment``: the final ``KEY -> value`` mapping the job process gets (a file variable
      holds its path), in GitLab's order;
    - ``variables``: the runner's full list after expansion, duplicates kept;
    - ``files``: the files to write before the job starts;
    - ``masked_values``: every value to mask, longest first;
    - ``provenance``: for each key, the winning definition and every value it overrode (also
      for keys defined but never applied, whose ``value`` is None).
    """

    environment: Mapping[str, str]
    variables: tuple[Variable, ...]
    files: tuple[VariableFile, ...]
    masked_values: tuple[str, ...]
    provenance: Mapping[str, Provenance]
    environment_name: str | None
    temp_dir: str

    def explain(self, key: str) -> str:
        """Explain one key, also one that was defined but not applied (scope, protection).

        Every masked value (also inside a value derived from it, such as a URL holding a
        password) is shown as ``[MASKED]``.
        """
        found = self.provenance.get(key)
        if found is None:
            return f"{key} is not defined in any layer"
        return found.explain(self.mask)

    def mask(self, text: str) -> str:
        """Mask this job's secrets in ``text`` (same rules as the job log)."""
        from airflow_ci_vars.masking import Masker

        return Masker(self.masked_values).mask(text)

    def __repr__(self) -> str:
        return (
            f"JobEnvironment(<{len(self.environment)} variables>, <{len(self.files)} files>, "
            f"<{len(self.masked_values)} masked values>, environment_name={self.environment_name!r})"
        )


def resolve(
    layers: VariableLayers,
    run: RunContext,
    *,
    environment: str | None = None,
    temp_dir: str | None = None,
) -> JobEnvironment:
    """Compute a job's variables as GitLab would give them to the job.

    ``environment`` is the job's ``environment:name`` as written (it is expanded here, against
    ``*``-scoped variables only, as GitLab does); when omitted, ``run.environment_name`` is used
    as already expanded. ``run.ref_protected`` decides whether protected variables apply.
    ``temp_dir`` is where file variables will be written (``RUNNER_TEMP_PROJECT_DIR``).
    Raises ``ExpansionError`` on a circular reference.
    """
    temp = temp_dir or DEFAULT_TEMP_DIR
    if environment is not None:
        run = dataclasses.replace(run, environment_name=expanded_environment(layers, run, environment))
    env_name = run.environment_name

    excluded: list[tuple[Variable, str]] = []
    job = view_of(Step.JOB, layers, run, scope=env_name, excluded=excluded)
    collection = collect(layers, job)
    # Runner payload mode (R: BuildRunnerPresenter#runner_variables).
    payload = sort_and_expand(collection, keep_undefined=True, expand_file_refs=False, expand_raw_refs=False)
    appended = collect(layers, View(Step.RUNNER, run, env_name, temp_dir=temp))
    final = runner_expand(payload + appended, temp_dir=temp)

    environment_map: dict[str, str] = {}
    last: dict[str, Variable] = {}
    for v in final:
        environment_map[v.key] = file_variable_path(temp, v.key) if v.is_file else v.value
        last[v.key] = v
    files = tuple(
        VariableFile(v.key, file_variable_path(temp, v.key), v.value, v.is_secret)
        for v in last.values()
        if v.variable_type == FILE
    )

    masks: set[str] = set()
    for v in final:
        if v.is_secret:
            masks.add(v.value.strip())
    for v in collection + appended:
        if v.is_secret:  # the value as defined, in case expansion changed it
            masks.add(v.value.strip())
    masks.discard("")

    yaml = job.yaml
    provenance = _LazyProvenance(lambda: _provenance(layers, yaml, final, last, excluded))
    return JobEnvironment(
        environment=MappingProxyType(environment_map),
        variables=tuple(final),
        files=files,
        masked_values=tuple(sorted(masks, key=lambda s: (-len(s), s))),
        provenance=provenance,
        environment_name=env_name,
        temp_dir=temp,
    )


class _LazyProvenance(Mapping[str, Provenance]):
    """Read-only mapping computed on first access: most jobs never ask where a value came from."""

    __slots__ = ("_build", "_data")

    def __init__(self, build: Callable[[], dict[str, Provenance]]) -> None:
        self._build: Callable[[], dict[str, Provenance]] | None = build
        self._data: dict[str, Provenance] | None = None

    def _get(self) -> dict[str, Provenance]:
        if self._data is None:
            assert self._build is not None
            self._data = self._build()
            self._build = None
        return self._data

    def __getitem__(self, key: str) -> Provenance:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __repr__(self) -> str:
        return f"<provenance of {len(self)} keys>"


def expanded_environment(layers: VariableLayers, run: RunContext, environment: str) -> str | None:
    """A job's ``environment:name`` as GitLab expands it (None when it expands to nothing).

    R: ``Context::Build`` -- at pipeline creation, with the variables built for environment nil
    (only ``*`` scopes): no dotenv, no manual-job variables.
    """
    simple = collect(layers, view_of(Step.ENVIRONMENT, layers, _without_environment(run), scope=None))
    return expand_value(environment, sort_and_expand(simple)).strip() or None


def rules_context(
    layers: VariableLayers, run: RunContext, *, environment: str | None = None, scoped: bool = True
) -> dict[str, str]:
    """The variables ``rules:if`` sees, as GitLab builds them at pipeline creation (spec §8.3).

    Unexpanded values (last definition wins), the job's environment scope, no dotenv, no
    ``rules:variables``, no persisted or runner variables (``CI_PIPELINE_ID``, ``CI_JOB_ID``,
    ``CI_PROJECT_DIR``...), no resolved ``secrets:``; a file variable gives its content.
    ``scoped=False`` leaves out every stored variable scoped to an environment (only ``*``
    scopes): the variables of a protected environment the run's user may not deploy to.
    """
    if environment is not None:
        run = dataclasses.replace(run, environment_name=expanded_environment(layers, run, environment))
    scope = run.environment_name if scoped else None
    return {v.key: v.value for v in collect(layers, view_of(Step.RULES, layers, run, scope=scope))}


def keyword_context(layers: VariableLayers, run: RunContext, *, environment: str | None = None) -> dict[str, str]:
    """The variables a keyword's ``$VAR`` sees once the job exists (``trigger:forward`` values,
    ``trigger:branch``, ``needs:project``/``needs:pipeline`` entries): those ``rules:if`` sees
    (``rules_context``) plus the persisted ``CI_PIPELINE_ID`` (``run.pipeline_id``).

    R: ``Ci::Bridge#variables`` / ``Ci::Processable#scoped_variables`` of a persisted job, without
    the runner's variables; ``environment`` is the job's ``environment:name`` as written.
    """
    if environment is not None:
        run = dataclasses.replace(run, environment_name=expanded_environment(layers, run, environment))
    scope = run.environment_name
    return {v.key: v.value for v in collect(layers, view_of(Step.KEYWORD, layers, run, scope=scope))}


def workflow_context(layers: VariableLayers, run: RunContext) -> dict[str, str]:
    """The variables ``workflow:rules`` see: those of a job without its ``CI_JOB_*``/``CI_NODE_*``
    variables, with the top-level YAML variables (``layers.default``) and only ``*`` scopes.

    R: ``context/global.rb`` (a stub build's ``scoped_variables``, ``CI_JOB_*`` rejected).
    """
    pipeline_run = _without_environment(run)
    return {v.key: v.value for v in collect(layers, view_of(Step.WORKFLOW, layers, pipeline_run, scope=None))}


def include_context(layers: VariableLayers, run: RunContext) -> dict[str, str]:
    """The variables ``include:rules`` and include locations see, before any YAML is read:
    predefined project and pipeline variables, ``*``-scoped stored variables, pipeline and schedule
    variables (R: ``Builder#config_variables``)."""
    pipeline_run = _without_environment(run)
    return {v.key: v.value for v in collect(layers, view_of(Step.INCLUDE, layers, pipeline_run, scope=None))}


def _without_environment(run: RunContext) -> RunContext:
    return run if run.environment_name is None else dataclasses.replace(run, environment_name=None)


def _provenance(
    layers: VariableLayers,
    yaml: Sequence[Variable],
    final: list[Variable],
    last: dict[str, Variable],
    excluded: list[tuple[Variable, str]],
) -> dict[str, Provenance]:
    defs: dict[str, list[Definition]] = {}
    # YAML definitions that the merge dropped (overridden by the job, or not inherited).
    kept_yaml = {id(v) for v in yaml}
    yaml_keys = {v.key for v in yaml}
    for v in list(layers.default) + list(layers.job or ()) + list(layers.rules):
        if id(v) in kept_yaml:
            continue
        if v.key in yaml_keys:
            defs.setdefault(v.key, []).append(Definition(v, "overridden", "replaced in the job's YAML variables"))
        else:
            reason = "not inherited by the job (inherit:variables or variables: {})"
            defs.setdefault(v.key, []).append(Definition(v, "excluded", reason))
    for v, reason in excluded:
        defs.setdefault(v.key, []).append(Definition(v, "excluded", reason))
    for v in final:
        status: Literal["applied", "overridden"] = "applied" if last[v.key] is v else "overridden"
        defs.setdefault(v.key, []).append(Definition(v, status))
    out: dict[str, Provenance] = {}
    for key, key_defs in defs.items():
        ordered = sorted(key_defs, key=lambda d: _layer_of(d.variable))
        out[key] = Provenance(key, last.get(key), tuple(ordered))
    return out


def _layer_of(v: Variable) -> int:
    return layer_rank(v.source.layer) if v.source is not None else -1
