"""The ``airflow-ci-vars`` command line.

Commands are registered in ``COMMANDS``: each entry adds its own argparse sub-parser and
sets ``handler`` to a function ``(args) -> exit code``. Adding a command (``lint``,
``explain``, ``run``, ``variables list|set|unset``) means one ``_add_<name>`` function and one
entry. Nothing here imports Airflow at module import time; a command that needs it imports it
inside its handler.

``variables list|set|unset`` and ``explain`` work on the configured store (``stores.configured``,
which reads Airflow's configuration, imported inside the handler). ``lint`` and ``graph`` are pure:
they never import Airflow. Masked and hidden values are never printed (see docs/cli.md).

Exit codes: 0 success, 1 the input is invalid (errors on stderr), 2 usage error (argparse).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import itertools
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from airflow_ci_vars.airflow_config import AirflowOptions
from airflow_ci_vars.dotenv import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_VARIABLES,
    read_dotenv_file,
)
from airflow_ci_vars.errors import (
    CIVarsError,
    DotenvError,
    ExpansionError,
    ParameterError,
    SettingsError,
    VariableValidationError,
)
from airflow_ci_vars.isolation import CONTAINER_MODE
from airflow_ci_vars.masking import MASK
from airflow_ci_vars.pipeline.loader import MAX_LISTED_JOBS, Loaded, check_pipeline
from airflow_ci_vars.pipeline.model import Pipeline, PipelineJob, PipelineProblem
from airflow_ci_vars.pipeline.seed import PARSE_REF, parse_seed
from airflow_ci_vars.stores.base import LayerRef
from airflow_ci_vars.variables.keys import ruby_strip
from airflow_ci_vars.variables.model import ENV_VAR, FILE, Layer, Variable, VariableSource
from airflow_ci_vars.variables.validation import (
    DESCRIPTION_LIMIT,
    FLAGS,
    check_save,
    json_raw,
    read_variable,
    variable_label,
)

__all__ = ["COMMANDS", "build_parser", "container_mode_configured", "main"]

if TYPE_CHECKING:
    from typing import TypeAlias

    from airflow_ci_vars.pipeline.external.sources import IncludeSources

    SubParsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

    from airflow_ci_vars.jobs import JobSpec
    from airflow_ci_vars.pipeline.decision import JobDecision
    from airflow_ci_vars.stores.base import VariableStore
    from airflow_ci_vars.variables.resolve import Definition, JobEnvironment

Handler = Callable[[argparse.Namespace], int]


def _non_negative_int(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (0 disables the limit), got {number}")
    return number


def _write_lines(stream: TextIO, lines: Sequence[str]) -> None:
    stream.writelines(line + "\n" for line in lines)


# --- dotenv -----------------------------------------------------------------------------


def _dotenv_check(args: argparse.Namespace) -> int:
    """Print the variables of a valid dotenv report, or its first error as ``FILE:LINE: msg``."""
    try:
        parsed = read_dotenv_file(args.file, max_bytes=args.max_bytes, max_variables=args.max_variables)
    except DotenvError as exc:
        # str(DotenvError) renders "FILE:LINE: message" / "FILE: message".
        print(str(exc), file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    _write_lines(sys.stdout, [f"{key}={value}" for key, value in parsed.items()])
    return 0


def _add_dotenv(subparsers: SubParsers) -> None:
    dotenv = subparsers.add_parser(
        "dotenv",
        help="dotenv report tools",
        description="Work with dotenv reports (artifacts:reports:dotenv), using GitLab's rules.",
    )
    actions = dotenv.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check",
        help="validate a dotenv report and print its variables",
        description=(
            "Validate FILE with GitLab's dotenv rules. On success print KEY=VALUE lines in "
            "file order and exit 0; otherwise print FILE:LINE: message and exit 1."
        ),
    )
    check.add_argument("file", metavar="FILE", help="the dotenv file")
    check.add_argument(
        "--max-bytes",
        type=_non_negative_int,
        default=DEFAULT_MAX_BYTES,
        metavar="N",
        help=f"maximum file size in bytes (default {DEFAULT_MAX_BYTES}; 0 = no limit)",
    )
    check.add_argument(
        "--max-variables",
        type=_non_negative_int,
        default=DEFAULT_MAX_VARIABLES,
        metavar="N",
        help=f"maximum number of variables (default {DEFAULT_MAX_VARIABLES}; 0 = no limit)",
    )
    check.set_defaults(handler=_dotenv_check)


# --- variables --------------------------------------------------------------------------

VALUE_PREVIEW = 60
"""Longest value shown by ``variables list --format text`` (``--format json`` shows all)."""
_COLUMNS = ("KEY", "VALUE", "TYPE", "SCOPE", "FLAGS", "DESCRIPTION")


def _layer(text: str) -> LayerRef:
    try:
        return LayerRef.parse(text)
    except VariableValidationError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def _open_store(args: argparse.Namespace) -> VariableStore:
    """The configured store (Vault or the settings file); reads Airflow's configuration."""
    from airflow_ci_vars.stores.configured import configured_store
    from airflow_ci_vars.stores.file import FileStore

    store = configured_store(args.settings)
    if args.settings and not isinstance(store, FileStore):
        print("warning: --settings is ignored: the configured secrets backend is CIVaultBackend", file=sys.stderr)
    return store


def _shown_value(variable: Variable) -> str:
    """The value as ``list`` may show it: masked and hidden values never appear."""
    return MASK if variable.masked or variable.hidden else variable.value


def _cell(text: str, limit: int | None = None) -> str:
    """One table cell on one line: control characters escaped, optionally shortened."""
    if limit is not None and len(text) > limit:
        text = text[: limit - 3] + "..."
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _variables_list(args: argparse.Namespace, store: VariableStore) -> int:
    ref: LayerRef = args.layer
    variables = store.list_variables(ref)
    if args.scope is not None:
        scope = ruby_strip(args.scope)
        variables = tuple(v for v in variables if v.environment_scope == scope)
    if args.format == "json":
        records: list[dict[str, Any]] = [
            {
                "key": v.key,
                "value": _shown_value(v),
                "variable_type": v.variable_type,
                **{flag: getattr(v, flag) for flag in FLAGS},
                "environment_scope": v.environment_scope,
                "description": v.description,
            }
            for v in variables
        ]
        print(json.dumps(records, indent=2, ensure_ascii=False))
        return 0
    rows = [_COLUMNS] + [
        (
            _cell(v.key),
            _cell(_shown_value(v), VALUE_PREVIEW),
            v.variable_type,
            _cell(v.environment_scope),
            ",".join(f for f in FLAGS if getattr(v, f)) or "-",
            _cell(v.description or ""),
        )
        for v in variables
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    _write_lines(sys.stdout, ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows])
    return 0


def _read_value(args: argparse.Namespace) -> str:
    """VALUE, or stdin for ``-`` (one trailing line break dropped, unless ``--file``)."""
    if args.value != "-":
        return str(args.value)
    value = sys.stdin.read()
    if not args.file:
        value = value.removesuffix("\n").removesuffix("\r")
    return value


def _variables_set(args: argparse.Namespace, store: VariableStore) -> int:
    ref: LayerRef = args.layer
    variable: Variable = args.variable
    store.set_variable(ref, variable)
    key, scope = ruby_strip(variable.key), ruby_strip(variable.environment_scope)
    print(f"Set variable '{key}' (environment scope '{scope}') in {ref}.")
    return 0


def _variables_unset(args: argparse.Namespace, store: VariableStore) -> int:
    ref: LayerRef = args.layer
    key, scope = ruby_strip(args.key), ruby_strip(args.scope)
    if not store.unset_variable(ref, key, scope):
        print(f"{ref}: no variable '{key}' with environment scope '{scope}'", file=sys.stderr)
        return 1
    print(f"Removed variable '{key}' (environment scope '{scope}') from {ref}.")
    return 0


def _prepare_set(args: argparse.Namespace) -> None:
    """Build the variable of ``set`` (a JSON record of the arguments, read by the save rules' JSON
    adapter) and check it with the save rules before any store is opened.

    The rules that depend on the stored layer (create or update, the layer's limit) are the
    store's, which runs the same ``check_save`` with the layer.
    """
    ref: LayerRef = args.layer
    record = {
        "key": args.key,
        "value": _read_value(args),
        "variable_type": FILE if args.file else ENV_VAR,
        **{flag: bool(getattr(args, flag)) for flag in FLAGS},
        "environment_scope": args.scope,
        "description": args.description,
    }
    source = VariableSource(ref.layer, ref.path)
    variable, problems = read_variable(
        {k: json_raw(v) for k, v in record.items()}, source=source, where="", index=1, check=False
    )
    if variable is None:  # pragma: no cover - the arguments are always strings and booleans
        raise VariableValidationError(problems[0].message, key=args.key, field=problems[0].field)
    args.variable = variable
    check_save(variable, layer=ref.layer, current=None)


def _redact(message: str, args: argparse.Namespace) -> str:
    """Belt and braces: no error text ever carries the masked or hidden value being set."""
    variable: Variable | None = getattr(args, "variable", None)
    if variable is not None and variable.is_secret and variable.value.strip():
        message = message.replace(variable.value, MASK)
    return message


def _variables(args: argparse.Namespace) -> int:
    """Run ``variables list|set|unset``; errors go to stderr (exit 1), never with a value."""
    ref: LayerRef = args.layer
    action: Callable[[argparse.Namespace, VariableStore], int] = args.action_handler
    try:
        if args.action == "set":
            _prepare_set(args)
        return action(args, _open_store(args))
    except VariableValidationError as exc:
        key = exc.key or getattr(args, "key", None)
        where = variable_label(str(ref), ruby_strip(key), 1) if key else str(ref)
        print(_redact(f"{where}: {exc.message}", args), file=sys.stderr)
    except CIVarsError as exc:
        print(_redact(str(exc), args), file=sys.stderr)
    except Exception as exc:  # the store's own errors (OS, Vault, Airflow configuration)
        text = str(exc).strip()
        detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        print(_redact(f"{ref}: {detail}", args), file=sys.stderr)
    return 1


def _add_variables(subparsers: SubParsers) -> None:
    variables = subparsers.add_parser(
        "variables",
        help="list, set and unset instance, group and project variables",
        description=(
            "Manage the stored CI/CD variables of a layer in the configured store: Vault when "
            "Airflow's [secrets] backend is CIVaultBackend, otherwise the settings file "
            "(--settings, else [ci_vars] settings_file). Masked and hidden values are never printed."
        ),
    )
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument(
        "--layer",
        required=True,
        type=_layer,
        metavar="LAYER",
        help="instance, group:PATH or project:PATH (full paths: group:acme/data, project:acme/data/etl)",
    )
    store.add_argument(
        "--settings",
        metavar="FILE",
        help="the settings file (default: [ci_vars] settings_file); ignored when the store is Vault",
    )
    actions = variables.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser(
        "list",
        parents=[store],
        help="list a layer's variables",
        description=(
            "Print the variables of a layer. Masked and hidden values show as [MASKED]; in the text "
            f"table, values longer than {VALUE_PREVIEW} characters are shortened (use --format json)."
        ),
    )
    listing.add_argument("--scope", metavar="ENV", help="only variables with this environment scope")
    listing.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    listing.set_defaults(action_handler=_variables_list)

    setting = actions.add_parser(
        "set",
        parents=[store],
        help="create or update a variable",
        description=(
            "Create a variable, or replace the one with the same key and environment scope, checked "
            "with GitLab's rules (key, value size, maskability, hidden requires masked, scope, and "
            "hidden/masked cannot change on update). VALUE '-' reads the value from stdin, so it "
            "stays out of the shell history; one trailing line break is dropped unless --file."
        ),
    )
    setting.add_argument("key", metavar="KEY", help="the variable key (letters, digits and '_')")
    setting.add_argument("value", metavar="VALUE", help="the value, or '-' to read it from stdin")
    setting.add_argument("--masked", action="store_true", help="mask the value in job logs")
    setting.add_argument("--hidden", action="store_true", help="masked and never shown again (needs --masked)")
    setting.add_argument("--protected", action="store_true", help="only for pipelines on protected refs")
    setting.add_argument("--file", action="store_true", help="a file-type variable (VALUE is the content)")
    setting.add_argument("--raw", action="store_true", help="do not expand variable references in the value")
    setting.add_argument("--scope", default="*", metavar="ENV", help="environment scope (default '*')")
    setting.add_argument(
        "--description", metavar="TEXT", help=f"a description (at most {DESCRIPTION_LIMIT} characters)"
    )
    setting.set_defaults(action_handler=_variables_set)

    unsetting = actions.add_parser(
        "unset",
        parents=[store],
        help="delete a variable",
        description="Delete the variable with KEY and environment scope (default '*'); exit 1 if there is none.",
    )
    unsetting.add_argument("key", metavar="KEY", help="the variable key")
    unsetting.add_argument("--scope", default="*", metavar="ENV", help="environment scope (default '*')")
    unsetting.set_defaults(action_handler=_variables_unset)
    variables.set_defaults(handler=_variables)


# --- pipelines: lint, graph, explain -------------------------------------------------------


def _show_problem(problem: PipelineProblem) -> str:
    label = "warning: " if problem.severity == "warning" else ""
    return f"{problem.where}: {label}{problem.message}" if problem.where else f"{label}{problem.message}"


def _report(loaded: Loaded, *, warnings: bool = True) -> None:
    """The loader's problems on stderr, once each, in file order (errors and warnings interleaved)."""
    shown = [p for p in loaded.problems() if warnings or p.severity != "warning"]
    _write_lines(sys.stderr, [_show_problem(p) for p in shown])


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _used_stages(pipeline: Pipeline) -> list[tuple[str, list[PipelineJob]]]:
    """Stages in order with their job instances; stages without jobs (``.pre``, ``.post``...) left out."""
    by_stage: dict[int, list[PipelineJob]] = {}
    for job in pipeline.jobs:
        by_stage.setdefault(job.stage_index, []).append(job)
    return [(pipeline.stages[i], by_stage[i]) for i in sorted(by_stage)]


def _sources(offline: bool = False) -> Callable[[], IncludeSources]:
    """The deployment's include sources, read (with Airflow's configuration) only when an include needs them."""

    def read() -> IncludeSources:
        from airflow_ci_vars.include_settings import include_sources

        return include_sources(offline=offline)

    return read


def container_mode_configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the deployment runs jobs in containers (``[ci_vars] isolation = docker``), read
    without importing Airflow (``airflow_config.AirflowOptions``): ``AIRFLOW__CI_VARS__ISOLATION``,
    else the Airflow config file; a missing file or key is the default mode (not containers).
    ``environ`` defaults to ``os.environ``. Raises ``SettingsError`` naming the config file when it
    cannot be parsed.
    """
    value = AirflowOptions(environ).get("ci_vars", "isolation", fallback="") or ""
    return value.strip().lower() == CONTAINER_MODE


def _containers() -> bool:
    """``container_mode_configured()`` for a command; an unreadable config file is reported on
    stderr and taken as jobs outside containers (``image``/``services`` are then warned about)."""
    try:
        return container_mode_configured()
    except SettingsError as err:
        print(f"warning: {err}; taking jobs to run outside containers", file=sys.stderr)
        return False


def _report_unchecked(loaded: Loaded) -> None:
    """``lint --offline``: the includes it did not read, on stderr."""
    lines = [f"{u.where}: warning: not checked offline: {u.include} ({u.reason})" for u in loaded.unchecked]
    if lines and loaded.pipeline is None:
        lines.append("errors above may come from the includes not checked offline")
    _write_lines(sys.stderr, lines)


def _lint(args: argparse.Namespace) -> int:
    loaded = check_pipeline(
        args.file, seed=parse_seed(args.project), sources=_sources(args.offline), containers=_containers()
    )
    _report(loaded)
    _report_unchecked(loaded)
    if loaded.pipeline is None:
        return 1
    pipeline = loaded.pipeline
    stages = _used_stages(pipeline)
    # include:rules decided which files make up the pipeline: say on what.
    seen = f"; include:rules evaluated for a pipeline on {PARSE_REF}, as the DAG factory does" * loaded.include_rules
    unchecked = f"; {_plural(len(loaded.unchecked), 'include')} not checked offline" * bool(loaded.unchecked)
    counts = f"{_plural(len(pipeline.jobs), 'job')} in {_plural(len(stages), 'stage')}"
    print(f"{args.file}: valid ({counts}{seen}{unchecked})")
    return 0


def _add_project(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--project",
        metavar="PATH",
        help="the GitLab project path the DAG factory is given (project=); include:rules see it as CI_PROJECT_PATH",
    )


def _add_lint(subparsers: SubParsers) -> None:
    lint = subparsers.add_parser(
        "lint",
        help="validate a .gitlab-ci.yml",
        description=(
            "Load FILE as the DAG factory loads it (the same loader): its include:local files, "
            "extends, !reference, default:, child pipelines and spec:inputs defaults, validated with "
            "GitLab's rules, every rules:if parsed. include:rules are evaluated as the factory "
            f"evaluates them: 'if' on the predefined variables of a pipeline on {PARSE_REF} "
            "(--project sets CI_PROJECT_PATH), 'exists' on the files next to FILE. Print every "
            "error (what the factory refuses) as FILE:LINE:COL: message and every warning (keywords "
            "only a GitLab runner uses: cache, tags..., and image and services unless jobs run in "
            "containers: [ci_vars] isolation = docker, read from AIRFLOW__CI_VARS__ISOLATION or the "
            "Airflow config file) as FILE:LINE:COL: warning: "
            "message on stderr; exit 1 if there is any error. A valid file prints 'FILE: valid (N "
            "jobs in M stages)' (job instances; stages that have jobs), noting when include:rules "
            "were evaluated. include:project, component, template and remote read the deployment's "
            "sources ([ci_vars] include_*, docs/pipelines.md); --offline reads only what their "
            "caches hold and names each include it could not check."
        ),
    )
    lint.add_argument("file", metavar="FILE", help="the .gitlab-ci.yml")
    _add_project(lint)
    lint.add_argument(
        "--offline",
        action="store_true",
        help="never reach the network or a git remote: includes not in the cache are listed, not checked",
    )
    lint.set_defaults(handler=_lint)


def _dot_quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def _job_notes(job: PipelineJob, main_file: str = "") -> str:
    notes = []
    origin = job.where.rsplit(":", 2)[0] if job.where.count(":") >= 2 else job.where
    if main_file and origin and origin != main_file:
        notes.append(f"from {origin}")
    if job.spec.trigger is not None:
        notes.append("trigger")
    if job.spec.when != "on_success":
        notes.append(f"when: {job.spec.when}")
    if job.spec.rules is not None:
        notes.append("rules")
    return f"  ({', '.join(notes)})" if notes else ""


def _graph_text(pipeline: Pipeline, indent: str = "") -> list[str]:
    lines: list[str] = []
    for stage, jobs in _used_stages(pipeline):
        lines.append(f"{indent}{stage}:")
        for job in jobs:
            needs = job.spec.needs
            edge = "" if needs is None else " <- " + (", ".join(n.job for n in needs) if needs else "(none)")
            main_file = "" if indent else pipeline.file  # a child pipeline's jobs all come from its files
            lines.append(f"{indent}  {_cell(job.name)}{_cell(edge)}{_job_notes(job, main_file)}")
            if job.name in pipeline.children:
                lines.append(f"{indent}    child pipeline:")
                lines += _graph_text(pipeline.children[job.name], indent + "      ")
    return lines


def _graph_dot(pipeline: Pipeline) -> list[str]:
    lines = [f"digraph {_dot_quote(pipeline.file)} {{", "  rankdir=LR;", "  node [shape=box, style=rounded];"]
    lines += _dot_body(pipeline, prefix="", clusters=itertools.count())
    lines.append("}")
    return lines


def _dot_body(pipeline: Pipeline, *, prefix: str, clusters: Iterator[int]) -> list[str]:
    """One cluster per stage, one edge per need; a child pipeline is a cluster after its trigger job."""
    ids = {job.name: _dot_quote(prefix + job.task_id) for job in pipeline.jobs}
    lines: list[str] = []
    firsts: list[str] = []
    for stage, jobs in _used_stages(pipeline):
        lines.append(f"  subgraph cluster_{next(clusters)} {{")
        lines.append(f"    label={_dot_quote(stage)};")
        lines += [f"    {ids[job.name]} [label={_dot_quote(job.name + _job_notes(job))}];" for job in jobs]
        lines.append("  }")
        firsts.append(ids[jobs[0].name])
    # Invisible edges keep the stage clusters in order; jobs without needs wait for the previous stage.
    lines += [f"  {a} -> {b} [style=invis];" for a, b in itertools.pairwise(firsts)]
    for job in pipeline.jobs:
        lines += [f"  {ids[need.job]} -> {ids[job.name]};" for need in job.spec.needs or ()]
        child = pipeline.children.get(job.name)
        if child is not None:
            inner = f"{prefix}{job.task_id}/"
            lines.append(f"  subgraph cluster_{next(clusters)} {{")
            lines.append(f"    label={_dot_quote('child pipeline of ' + job.name)};")
            lines += ["  " + line for line in _dot_body(child, prefix=inner, clusters=clusters)]
            lines.append("  }")
            lines += [f"  {ids[job.name]} -> {_dot_quote(inner + c.task_id)} [style=dashed];" for c in child.jobs[:1]]
    return lines


def _origins_text(loaded: Loaded) -> list[str]:
    """Each included file and the include that brought it (follow the lines up to the main file)."""
    if not loaded.origins:
        return []
    return ["included files:", *(f"    {_cell(file)}  <- {_cell(origin)}" for file, origin in loaded.origins.items())]


def _graph(args: argparse.Namespace) -> int:
    loaded = check_pipeline(args.file, seed=parse_seed(args.project), sources=_sources(), containers=_containers())
    if loaded.pipeline is None:
        _report(loaded, warnings=False)
        return 1
    if args.format == "dot":
        _write_lines(sys.stdout, _graph_dot(loaded.pipeline))
    else:
        _write_lines(sys.stdout, [*_graph_text(loaded.pipeline), *_origins_text(loaded)])
    return 0


def _add_graph(subparsers: SubParsers) -> None:
    graph = subparsers.add_parser(
        "graph",
        help="show a pipeline's stages, jobs and needs",
        description=(
            "Print the stages of FILE in order, each with its jobs (parallel and matrix instances "
            "named as GitLab names them) and their needs ('job <- needed, needed'; '<- (none)' for "
            "needs: []; no arrow: the job waits for the previous stages). --format dot prints a "
            "Graphviz digraph: one cluster per stage, one edge per need. FILE is loaded as lint and "
            "the DAG factory load it (include:rules included); an invalid FILE prints its errors "
            "(as lint does) and exits 1."
        ),
    )
    graph.add_argument("file", metavar="FILE", help="the .gitlab-ci.yml")
    _add_project(graph)
    graph.add_argument("--format", choices=("text", "dot"), default="text", help="output format (default text)")
    graph.set_defaults(handler=_graph)


class _ExplainError(Exception):
    """A problem ``explain`` reports on stderr before exiting 1 (one or more lines)."""


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {_cell(key, 60)!r}")
    return key, value


def _select_job(pipeline: Pipeline, name: str) -> PipelineJob:
    """The job instance called ``name`` (or with that task id). A parallel job's plain name is an error."""
    for job in pipeline.jobs:
        if job.name == name:
            return job
    for job in pipeline.jobs:
        if job.task_id == name:
            return job
    instances = pipeline.instances(name)
    if instances:
        listed = [f"  {_cell(job.name)}" for job in instances]
        raise _ExplainError(
            "\n".join(
                [
                    f"{pipeline.file}: {name!r} is a parallel job with {len(instances)} instances; "
                    "pass one of them to --job:",
                    *listed,
                ]
            )
        )
    bases = list(dict.fromkeys(job.base_name for job in pipeline.jobs))
    close = difflib.get_close_matches(name, bases, n=3)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    shown = ", ".join(bases[:MAX_LISTED_JOBS]) + (", ..." if len(bases) > MAX_LISTED_JOBS else "")
    raise _ExplainError(f"{pipeline.file}: no job {name!r}{hint}; jobs: {shown}")


@dataclasses.dataclass(frozen=True)
class _Explained:
    job: PipelineJob
    project: str
    ref: str
    protected: bool
    environment: JobEnvironment
    notes: tuple[str, ...]
    decision: JobDecision


def _explain_job(args: argparse.Namespace) -> _Explained:
    """Resolve one job's variables as the operator would at run time (see docs/cli.md): the same
    run context (``pipeline_run``) and the same decision (``decide``); earlier jobs are assumed
    to succeed, and a needed job is left out when its own rules leave it out."""
    from airflow_ci_vars.jobs import dotenv_sources
    from airflow_ci_vars.parameters import pipeline_variables
    from airflow_ci_vars.pipeline.decision import Earlier, decide, files_exist, job_layers, pipeline_run
    from airflow_ci_vars.pipeline.environment import environment_variables
    from airflow_ci_vars.variables.resolve import VariableLayers, include_context, resolve

    items = [{"key": key, "value": value} for key, value in args.variable]
    source = VariableSource(Layer.PIPELINE, "--variable")
    try:
        pipeline_vars = [v.with_source(source) for v in pipeline_variables({"variables": items})]
    except ParameterError as err:
        # parameters.py names a list item ``variables[i]``; here it is the i+1-th --variable.
        message = re.sub(r"variables\[(\d+)\]", lambda m: f"#{int(m[1]) + 1}", err.message)
        raise _ExplainError(f"--variable: {message}") from None

    store = _open_store(args)
    settings = store.load(args.project)
    notes: list[str] = []
    project = args.project or settings.project
    if not project:
        project = os.path.basename(os.path.dirname(os.path.abspath(args.file))) or "project"
        notes.append(f"no --project and the settings name none: the project path is {project!r} (FILE's directory)")
    access = settings.access(project)
    conf = {"ref": args.ref, "ref_type": args.ref_type, "sha": args.sha}
    run = pipeline_run(conf, access, project=project, source=args.pipeline_source)
    stored = settings.layers_for(project)

    level = include_context(VariableLayers(**stored, pipeline=pipeline_vars), run.context())
    loaded = check_pipeline(args.file, seed=level, sources=_sources(), containers=_containers())
    if loaded.pipeline is None:
        _report(loaded, warnings=False)
        raise _ExplainError("")
    pipeline = loaded.pipeline
    job = _select_job(pipeline, args.job)
    specs = {j.name: j.spec for j in pipeline.jobs}
    exists = files_exist(os.path.dirname(os.path.abspath(args.file)))

    def decided(spec: JobSpec, earlier: Earlier | None = None) -> JobDecision:
        return decide(
            spec,
            run,
            stored=stored,
            pipeline=pipeline_vars,
            workflow_rules=pipeline.workflow_rules,
            earlier=earlier,
            exists=exists,
        )

    earlier = Earlier(
        jobs=specs,
        stages=pipeline.stages,
        states=lambda names: ["success"] * len(names),
        excluded=lambda name: decided(specs[name]).excluded_by_rules,
    )
    decision = decided(job.spec, earlier)
    if not decision.in_pipeline and not decision.excluded_by_rules:
        notes.append(f"workflow:rules: GitLab would not create this pipeline on ref {run.ref!r}")
    elif decision.excluded_by_rules:
        notes.append(f"rules: GitLab would not add {job.name!r} to a pipeline on ref {run.ref!r}; shown as if it ran")
    elif decision.action != "run":
        notes.append(f"{decision.action}: {decision.reason}")
    spec = decision.job

    dotenv = [
        name for name in dotenv_sources(spec, specs.values(), stages=pipeline.stages) if specs[name].artifacts.dotenv
    ]
    if dotenv:
        notes.append(f"dotenv variables from {', '.join(dotenv)} are only known at run time: not shown")
    secrets = [
        Variable(
            s.name, "", variable_type=FILE if s.file else ENV_VAR, source=VariableSource(Layer.SECRETS, s.location)
        )
        for s in spec.secrets
    ]
    if secrets:
        notes.append("secrets: are read from Vault at run time: shown as [MASKED], not read")
    context = run.context(spec, job_timeout=spec.timeout, **environment_variables(spec))
    environment = spec.environment.name if spec.environment else None
    try:
        resolved = resolve(job_layers(spec, stored, pipeline_vars, secrets=secrets), context, environment=environment)
    except ExpansionError as err:  # a circular variable reference
        raise _ExplainError(f"{pipeline.file}: jobs:{job.name}: {err.message}") from None
    return _Explained(job, project, run.ref, run.ref_protected, resolved, tuple(notes), decision)


def _shown(variable: Variable, env: JobEnvironment) -> str:
    """A value as ``explain`` shows it: secrets as ``[MASKED]``, other values with every secret masked.

    Masking comes before any quoting or escaping, so an escaped secret cannot slip through.
    """
    return MASK if variable.is_secret else env.mask(variable.value)


def _keys(explained: _Explained, wanted: Sequence[str]) -> list[str]:
    env = explained.environment
    if wanted:
        return list(dict.fromkeys(wanted))
    unset = sorted(k for k, p in env.provenance.items() if p.value is None)
    return [*env.environment, *unset]


def _quoted(variable: Variable, env: JobEnvironment) -> str:
    """A value for the text output: ``[MASKED]`` bare, other values quoted on one line (masked first)."""
    return MASK if variable.is_secret else _cell(repr(env.mask(variable.value)))


def _definition_record(definition: Definition, env: JobEnvironment) -> dict[str, Any]:
    record: dict[str, Any] = {
        "source": str(definition.variable.source or "unknown"),
        "value": _shown(definition.variable, env),
    }
    if definition.reason:
        record["reason"] = env.mask(definition.reason)
    return record


def _explain_records(explained: _Explained, keys: Sequence[str]) -> list[dict[str, Any]]:
    env = explained.environment
    records: list[dict[str, Any]] = []
    for key in keys:
        found = env.provenance.get(key)
        value = found.value if found is not None else None
        # Highest precedence first, as the text output.
        definitions = list(reversed(found.definitions)) if found is not None else []
        records.append(
            {
                "key": key,
                "value": None if value is None else _shown(value, env),
                "source": None if value is None else str(value.source or "unknown"),
                "variable_type": None if value is None else value.variable_type,
                "overridden": [_definition_record(d, env) for d in definitions if d.status == "overridden"],
                "excluded": [_definition_record(d, env) for d in definitions if d.status == "excluded"],
            }
        )
    return records


def _flags(variable: Variable) -> str:
    scope = "" if variable.environment_scope == "*" else f" [scope {variable.environment_scope}]"
    flags = "".join(f" [{f}]" for f in ("protected", "raw") if getattr(variable, f))
    return scope + flags + (" [file]" if variable.is_file else "")


def _decision_line(decision: JobDecision) -> str:
    """What GitLab decides for the job in this run, as the operator would (earlier jobs succeeded)."""
    line = f"decision: {decision.action} ({decision.reason})"
    if decision.start_in:
        line += f", starts {decision.start_in}s later"
    if decision.rule_needs is not None:
        line += f", needs (rules) {', '.join(n.job for n in decision.rule_needs)}"
    return line


def _explain_text(explained: _Explained, keys: Sequence[str]) -> list[str]:
    env = explained.environment
    job = explained.job
    where = f", environment {env.environment_name}" if env.environment_name else ""
    protection = "protected" if explained.protected else "not protected"
    lines = [
        env.mask(
            f"job {job.name!r} (stage {job.stage}) of project {explained.project}, ref {explained.ref} "
            f"({protection}){where}"
        ),
        _decision_line(explained.decision),
        "",
    ]
    for key in keys:
        found = env.provenance.get(key)
        if found is None:
            lines.append(f"{key} is not defined in any layer")
            continue
        value = found.value
        if value is None:
            lines.append(f"{key} is not set")
        else:
            lines.append(f"{key} = {_quoted(value, env)}  ({value.source or 'unknown'}){_flags(value)}")
        for d in reversed(found.definitions):
            if d.status == "applied":
                continue
            reason = f" -- {env.mask(d.reason)}" if d.reason else ""
            shown = _quoted(d.variable, env)
            lines.append(f"    {d.status} {d.variable.source or 'unknown'}: {shown}{_flags(d.variable)}{reason}")
    return lines


def _explain_environment(explained: _Explained, keys: Sequence[str], fmt: str) -> list[str]:
    """``--environment-only``: the final environment (a file variable holds its path)."""
    env = explained.environment
    values: dict[str, str] = {}
    for key in keys:
        if key not in env.environment:
            continue
        found = env.provenance.get(key)
        variable = found.value if found is not None else None
        secret = variable is None or (variable.is_secret and not variable.is_file)
        values[key] = MASK if secret else env.mask(env.environment[key])
    if fmt == "json":
        return [json.dumps(values, indent=2, ensure_ascii=False)]
    return [f"{key}={_cell(value)}" for key, value in values.items()]


def _explain(args: argparse.Namespace) -> int:
    try:
        explained = _explain_job(args)
    except _ExplainError as exc:
        if str(exc):
            print(str(exc), file=sys.stderr)
        return 1
    except VariableValidationError as exc:
        print(f"{args.file}: {exc.message}", file=sys.stderr)
        return 1
    except CIVarsError as exc:  # settings file, Vault, a circular variable reference
        print(str(exc), file=sys.stderr)
        return 1
    except Exception as exc:  # the store's own errors (OS, Vault, Airflow configuration)
        text = str(exc).strip()
        print(f"{type(exc).__name__}: {text}" if text else type(exc).__name__, file=sys.stderr)
        return 1
    env = explained.environment
    _write_lines(sys.stderr, [f"note: {env.mask(note)}" for note in explained.notes])
    keys = _keys(explained, args.key or ())
    if args.environment_only:
        lines = _explain_environment(explained, keys, args.format)
    elif args.format == "json":
        lines = [json.dumps(_explain_records(explained, keys), indent=2, ensure_ascii=False)]
    else:
        lines = _explain_text(explained, keys)
    # Belt and braces: every line passes the job's masker once more before it is printed.
    _write_lines(sys.stdout, [env.mask(line) for line in lines])
    return 0


def _add_explain(subparsers: SubParsers) -> None:
    explain = subparsers.add_parser(
        "explain",
        help="show every variable a job would receive, and where each value came from",
        description=(
            "Resolve the variables of one job of FILE as the operator does at run time: predefined "
            "CI_* variables, the top-level and job variables: (and workflow:rules / rules variables), "
            "the instance, group and project variables of the configured store (Vault, or the settings "
            "file), and --variable as pipeline variables. Each key shows its value, the layer that set "
            "it and the values it overrode or that were excluded (scope, protection). Masked and hidden "
            "values, and every value that contains one, show as [MASKED]. A parallel or matrix job is "
            "named by its instance name ('build 1/2', 'build: [linux, amd64]'); its plain name lists them."
        ),
    )
    explain.add_argument("file", metavar="FILE", help="the .gitlab-ci.yml")
    explain.add_argument("--job", required=True, metavar="NAME", help="the job (instance) name")
    explain.add_argument(
        "--variable",
        action="append",
        default=[],
        type=_key_value,
        metavar="KEY=VALUE",
        help="a pipeline variable (repeatable), as if passed when the pipeline is created",
    )
    explain.add_argument(
        "--settings",
        metavar="FILE",
        help="the settings file (default: [ci_vars] settings_file); ignored when the store is Vault",
    )
    explain.add_argument("--project", metavar="PATH", help="the project's full path (default: the settings' project)")
    explain.add_argument("--ref", metavar="REF", help="the branch (default: the settings' default_branch)")
    explain.add_argument(
        "--ref-type",
        choices=("branch", "tag"),
        default="branch",
        help="whether REF is a branch or a tag (CI_COMMIT_REF_TYPE; default branch), as conf['ref_type']",
    )
    explain.add_argument(
        "--sha", metavar="SHA", help="the commit (CI_COMMIT_SHA; default forty zeros, as a run without conf['sha'])"
    )
    explain.add_argument(
        "--pipeline-source",
        metavar="SOURCE",
        default="api",
        help="how the run starts (CI_PIPELINE_SOURCE; default api: a run triggered by hand, or by 'run')",
    )
    explain.add_argument("--key", action="append", default=[], metavar="KEY", help="explain only this key (repeatable)")
    explain.add_argument(
        "--environment-only",
        action="store_true",
        help="print only the final environment (KEY=VALUE; --format json: an object), no provenance",
    )
    explain.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    explain.set_defaults(handler=_explain)


# --- run ---------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    from airflow_ci_vars.local_run import run_pipeline

    return run_pipeline(
        args.file,
        engine=args.engine,
        jobs=args.job,
        needs=args.needs,
        variables=args.variable,
        settings=args.settings,
        project=args.project,
        ref=args.ref,
        manual=args.manual,
        output=args.output,
    )


def _add_run(subparsers: SubParsers) -> None:
    run = subparsers.add_parser(
        "run",
        help="run a pipeline locally, with the operator's code",
        description=(
            "Run FILE's jobs with the operator's code: by default in this process (the direct "
            "engine: no Airflow import, jobs one at a time, output streamed); with --engine airflow, "
            "FILE's DAG from the factory executed by Airflow's own dag.test(), on an embedded SQLite "
            "metadata DB in a private AIRFLOW_HOME when none is configured (trigger jobs and "
            "cross-pipeline needs always run so). Scripts run in a copy of FILE's directory. Exit 0 "
            "if and only if the pipeline succeeded; 130 when interrupted (Ctrl-C)."
        ),
    )
    run.add_argument("file", metavar="FILE", help="the .gitlab-ci.yml")
    run.add_argument("--job", action="append", default=[], metavar="NAME", help="run only this job (repeatable)")
    run.add_argument("--needs", action="store_true", help="also run every job the selected jobs need, first")
    run.add_argument("--variable", action="append", default=[], metavar="K=V", help="a pipeline variable")
    run.add_argument("--settings", metavar="FILE", help="the settings file (variable store)")
    run.add_argument("--project", metavar="PATH", help="GitLab project path (default: the settings' project)")
    run.add_argument("--ref", metavar="REF", help="the branch or tag (default: the default branch)")
    run.add_argument("--manual", action="append", default=[], metavar="NAME", help="play this manual job")
    run.add_argument("--output", choices=("text", "jsonl"), default="text", help="output format (default text)")
    run.add_argument(
        "--engine",
        choices=("direct", "airflow"),
        default="direct",
        help="direct: in this process (default); airflow: Airflow's task runner, dag.test() (docs/cli.md)",
    )
    run.set_defaults(handler=_run)


# --- registry ---------------------------------------------------------------------------

COMMANDS: dict[str, Callable[[SubParsers], None]] = {
    "dotenv": _add_dotenv,
    "variables": _add_variables,
    "lint": _add_lint,
    "graph": _add_graph,
    "explain": _add_explain,
    "run": _add_run,
}


def build_parser() -> argparse.ArgumentParser:
    """Return the ``airflow-ci-vars`` argument parser with every registered command."""
    parser = argparse.ArgumentParser(
        prog="airflow-ci-vars",
        description="GitLab CI / CircleCI variable semantics for Apache Airflow.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add_command in COMMANDS.values():
        add_command(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``airflow-ci-vars`` with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, usage errors: argparse exits; we return the code
        return 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 2
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
