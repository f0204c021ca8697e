"""The one loader: a ``.gitlab-ci.yml`` becomes a ``Pipeline``, or every located problem at once.

GitLab validates a configuration in one place (R: ``lib/gitlab/ci/yaml_processor.rb``,
``lib/gitlab/ci/config.rb``); here too: the pipeline the DAG factory builds, the parse cache stores
and ``lint``, ``graph``, ``explain`` and ``run`` show is loaded by ``check_pipeline`` and by
nothing else. Steps, in GitLab's order:

1. compose the file (``load_config``): includes, with ``include:rules`` evaluated on the seed
   variables (``pipeline.seed``) and ``exists`` searched next to the file, ``extends``,
   ``!reference``, ``default:``; its first error stops the load;
2. validate the jobs (``build_pipeline``) and every rule (``pipeline.rule_syntax``: ``if``,
   ``allow_failure``, ``start_in``, ``needs``; a ``needs`` cycle through ``rules:needs`` too):
   every error at once;
3. the Run pipeline form (``spec:inputs``, prefilled variables) of the main file;
4. the child pipelines (``trigger:include``), each loaded by steps 1-2, sharing the size limits.

Warnings (keywords only a GitLab runner uses, extra tags...) never refuse a pipeline; they are
collapsed to one per written keyword (``collapse_warnings``). Nothing here imports Airflow.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_ci_vars.errors import CIVarsError, PipelineError
from airflow_ci_vars.pipeline.config import load_config
from airflow_ci_vars.pipeline.external.processor import Unchecked
from airflow_ci_vars.pipeline.limits import DEFAULT_LIMITS, ConfigLimits, SizeBudget
from airflow_ci_vars.pipeline.model import Pipeline, PipelineInvalidError, PipelineProblem, build_pipeline
from airflow_ci_vars.pipeline.rule_syntax import rule_problems, rules_needs_problems
from airflow_ci_vars.pipeline.seed import include_rule_matcher

if TYPE_CHECKING:
    from airflow_ci_vars.pipeline.external.sources import IncludeSources
    from airflow_ci_vars.pipeline.sources import SourceLog

__all__ = ["MAX_LISTED_JOBS", "Loaded", "check_pipeline", "collapse_warnings", "load_pipeline", "pipeline_warnings"]

#: The most job names a collapsed warning lists.
MAX_LISTED_JOBS = 20

_LOCATION = re.compile(r"(?P<file>.*):(?P<line>\d+):(?P<column>\d+)\Z", re.DOTALL)
_RUNNER_WARNING = re.compile(r"jobs:(?P<job>.+):(?P<keyword>\w+) (?P<rest>is ignored: .*)\Z", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Loaded:
    """What ``check_pipeline`` found: the pipeline when it is valid, else every error; warnings either way."""

    file: str
    pipeline: Pipeline | None
    errors: tuple[PipelineProblem, ...] = ()
    #: collapsed (``collapse_warnings``), the child pipelines' after their parent's
    warnings: tuple[PipelineProblem, ...] = ()
    #: every file composed, each root file first, in load order (``problems`` follows it)
    files: tuple[str, ...] = ()
    #: whether an ``include:rules`` rule was evaluated (on the seed variables)
    include_rules: bool = False
    #: the error that stopped the load, raised again by ``unwrap``
    failure: CIVarsError | None = field(default=None, repr=False, compare=False)
    #: each included file -> the include that brought it (``file:line:col (include:kind location)``)
    origins: Mapping[str, str] = field(default_factory=dict, compare=False)
    #: includes an offline load did not read (their sources are not in the cache)
    unchecked: tuple[Unchecked, ...] = ()

    def unwrap(self) -> Pipeline:
        """The pipeline; else raise ``PipelineError`` (composing) or ``PipelineInvalidError`` (validation)."""
        if self.pipeline is not None:
            return self.pipeline
        raise self.failure if self.failure is not None else PipelineInvalidError(self.errors, self.warnings)

    def problems(self) -> list[PipelineProblem]:
        """Every error and warning once, in file order (by file in load order, then line and column)."""
        files = {name: index for index, name in enumerate(self.files)}

        def key(problem: PipelineProblem) -> tuple[int, int, int]:
            found = _LOCATION.match(problem.where)
            if found is None:
                return (files.get(problem.where, len(files)), 0, 0)
            return (files.get(found["file"], len(files)), int(found["line"]), int(found["column"]))

        return sorted(dict.fromkeys([*self.errors, *self.warnings]), key=key)


@dataclass(slots=True)
class _Progress:
    """What a load saw so far (mutable, private to one ``check_pipeline``)."""

    files: list[str] = field(default_factory=list)
    include_rules: bool = False
    origins: dict[str, str] = field(default_factory=dict)
    unchecked: list[Unchecked] = field(default_factory=list)


def check_pipeline(
    path: str | os.PathLike[str],
    *,
    seed: Mapping[str, str] | None = None,
    log: SourceLog | None = None,
    inputs: Mapping[str, object] | None = None,
    limits: ConfigLimits = DEFAULT_LIMITS,
    sources: IncludeSources | Callable[[], IncludeSources] | None = None,
    containers: bool = False,
) -> Loaded:
    """Load, compose and validate a ``.gitlab-ci.yml`` and its child pipelines (module docstring).

    ``seed`` are the variables its ``include:rules`` and include locations see (``seed_variables``);
    ``inputs`` the values of the file's own ``spec:inputs`` (defaults fill the others); ``log``
    records every file read and search run, child pipelines' too (``pipeline.cache``); ``limits``
    are GitLab's size limits, shared by the file and its child pipelines; ``sources`` where
    includes other than ``local`` read (``external.sources``; default: none); ``containers`` that
    the deployment runs jobs in containers (``[ci_vars] isolation = docker``): ``image:`` and
    ``services:`` are then used, not warned about. Never raises for a problem of the
    configuration: ``Loaded.errors`` holds every one found, located.
    """
    from airflow_ci_vars.pipeline.children import attach_children, include_document

    file = Path(path)
    variables = dict(seed or {})
    budget = SizeBudget(limits)
    progress = _Progress()
    load = functools.partial(
        _load_file, log=log, budget=budget, progress=progress, sources=sources, containers=containers
    )

    def failed(err: CIVarsError, warnings: Sequence[PipelineProblem] = ()) -> Loaded:
        if isinstance(err, PipelineInvalidError):
            problems, warnings = err.problems, (*warnings, *err.warnings)
        elif isinstance(err, PipelineError):
            problems = (PipelineProblem(err.message, err.location),)
        else:  # e.g. a variable of an include location that does not expand
            problems = (PipelineProblem(str(err), str(file)),)
        return Loaded(
            str(file),
            None,
            tuple(problems),
            tuple(collapse_warnings(warnings)),
            tuple(progress.files),
            progress.include_rules,
            err,
            progress.origins,
            tuple(progress.unchecked),
        )

    try:
        main = load(file, None, variables, inputs=inputs)
    except CIVarsError as err:
        return failed(err)
    try:
        # A child pipeline is a pipeline whose root document only includes files.
        pipeline = attach_children(
            main,
            lambda include, seen, where: load(file, include_document(include), seen, inputs=None, trigger=where),
            seed=variables,
        )
    except CIVarsError as err:
        return failed(err, main.warnings)
    return Loaded(
        str(file),
        pipeline,
        (),
        tuple(pipeline_warnings(pipeline)),
        tuple(progress.files),
        progress.include_rules,
        origins=progress.origins,
        unchecked=tuple(progress.unchecked),
    )


def load_pipeline(
    path: str | os.PathLike[str],
    *,
    seed: Mapping[str, str] | None = None,
    log: SourceLog | None = None,
    inputs: Mapping[str, object] | None = None,
    limits: ConfigLimits = DEFAULT_LIMITS,
    sources: IncludeSources | Callable[[], IncludeSources] | None = None,
    containers: bool = False,
) -> Pipeline:
    """``check_pipeline(...).unwrap()``: the pipeline, or raise ``PipelineError`` (composing) or
    ``PipelineInvalidError`` (validation: every error), with locations."""
    return check_pipeline(
        path, seed=seed, log=log, inputs=inputs, limits=limits, sources=sources, containers=containers
    ).unwrap()


def _load_file(
    file: Path,
    text: str | None,
    seen: Mapping[str, str],
    *,
    log: SourceLog | None,
    inputs: Mapping[str, object] | None,
    budget: SizeBudget,
    progress: _Progress,
    sources: IncludeSources | Callable[[], IncludeSources] | None,
    containers: bool = False,
    trigger: str | None = None,
) -> Pipeline:
    """Load and validate ``file`` (or, for a child pipeline, the root document ``text`` next to it,
    made of the ``trigger:include`` of the job at ``trigger``)."""
    matcher = include_rule_matcher(seen, file.parent, log=log)

    def matches(rule: Mapping[str, object]) -> bool:
        progress.include_rules = True
        return matcher(rule)

    main = text is None
    config = load_config(
        file,
        variables=seen,
        rule_matches=matches,
        text=text,
        log=log,
        inputs=inputs if main else None,
        limits=budget.limits,
        budget=budget,
        sources=sources,
        project=seen.get("CI_PROJECT_PATH") or None,
    )
    progress.files += [f for f in config.included_files if f not in progress.files]
    for included, origin in config.origins.items():
        if trigger is not None and origin.startswith(f"{file}:"):  # the child's root document is synthetic:
            origin = f"{trigger} ({origin.split(' (', 1)[1]}" if " (" in origin else trigger  # its trigger job
        progress.origins.setdefault(included, origin)
    progress.unchecked += config.unchecked
    source_warnings = tuple(PipelineProblem(message, where, "warning") for message, where in config.source_warnings)
    rule_errors = rule_problems(config)
    try:
        pipeline = build_pipeline(
            file=str(file),
            stages=config.stages,
            variables=config.variables,
            jobs=config.jobs,
            workflow=config.workflow,
            locate=lambda *keys: str(config.location(*keys)),
            max_jobs=budget.limits.max_jobs,
            counted=budget.jobs,
            containers=containers,
        )
    except PipelineInvalidError as err:
        raise PipelineInvalidError((*err.problems, *rule_errors), (*source_warnings, *err.warnings)) from None
    if source_warnings:
        pipeline = dataclasses.replace(pipeline, warnings=(*source_warnings, *pipeline.warnings))
    rule_errors += rules_needs_problems(config, pipeline)
    if rule_errors:
        raise PipelineInvalidError(rule_errors, pipeline.warnings)
    budget.jobs += len(pipeline.jobs)
    if main:
        from airflow_ci_vars.pipeline.run_form import run_form

        form = run_form(config, inputs=inputs, seed=seen)
        pipeline = dataclasses.replace(pipeline, form=form) if form else pipeline
    return pipeline


def pipeline_warnings(pipeline: Pipeline) -> list[PipelineProblem]:
    """The warnings of ``pipeline`` and of its child pipelines (depth first), collapsed."""

    def every(found: Pipeline) -> list[PipelineProblem]:
        out = list(found.warnings)
        for child in found.children.values():
            out += every(child)
        return out

    return collapse_warnings(every(pipeline))


def collapse_warnings(warnings: Sequence[PipelineProblem]) -> list[PipelineProblem]:
    """One warning per written keyword: a ``default:`` or ``extends`` template shared by many jobs
    gives one line naming the jobs (at most ``MAX_LISTED_JOBS``), not one line per job."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    out: list[PipelineProblem | tuple[str, str, str]] = []
    for warning in dict.fromkeys(warnings):
        found = _RUNNER_WARNING.match(warning.message)
        if found is None:
            out.append(warning)
            continue
        ident = (warning.where, found["keyword"], found["rest"])
        if ident not in groups:
            groups[ident] = []
            out.append(ident)
        groups[ident].append(found["job"])
    return [item if isinstance(item, PipelineProblem) else _collapsed(item, groups[item]) for item in out]


def _collapsed(ident: tuple[str, str, str], jobs: Sequence[str]) -> PipelineProblem:
    where, keyword, rest = ident
    if len(jobs) == 1:
        return PipelineProblem(f"jobs:{jobs[0]}:{keyword} {rest}", where, "warning")
    shown = ", ".join(jobs[:MAX_LISTED_JOBS])
    more = f" and {len(jobs) - MAX_LISTED_JOBS} more" if len(jobs) > MAX_LISTED_JOBS else ""
    return PipelineProblem(f"{keyword} {rest} (jobs {shown}{more})", where, "warning")
