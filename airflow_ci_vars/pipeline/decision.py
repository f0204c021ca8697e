"""GitLab's run-time decision for one job: run, skip or fail, and with what. Pure: no Airflow import.

Owns, in this order: ``workflow:rules`` (does the pipeline exist, and its variables), the job's
``rules`` (is the job in the pipeline; its ``when``, ``allow_failure``, ``variables``, ``needs``,
``start_in``), which earlier jobs count (``needs`` or every job of an earlier stage; a needed
job left out by ``rules``), a blocking manual job holding the pipeline, ``when`` against the
earlier jobs' composite status, ``dependencies`` on a job left out, and the variable layers each
step sees. The operator (Airflow glue), ``explain`` and the UI call :func:`decide`; none of them
decides anything itself. What a decision needs from a run (task states, XComs, files) is passed in
as plain data or callables (:class:`Earlier`, ``exists``), so the same code runs without Airflow.

Sources (R = gitlabhq): ``lib/gitlab/ci/pipeline/chain/evaluate_workflow_rules.rb`` and
``lib/gitlab/ci/variables/builder.rb`` (``workflow:rules`` see no job variables);
``lib/gitlab/ci/build/rules.rb`` (``Rules#evaluate``, ``Result#build_attributes``: a rule's
non-empty ``needs`` replaces the job's and makes it a DAG job, its ``start_in`` replaces the
job's); ``lib/gitlab/ci/config/entry/rules/rule.rb`` (``rules:needs`` takes job needs only;
``start_in`` only with ``when: delayed``, at most one week); ``lib/gitlab/ci/pipeline/seed/build.rb``
(the rule's attributes merged over the job's); ``app/services/ci/process_build_service.rb``
and ``lib/gitlab/ci/status/composite.rb`` (``when`` against the previous jobs, in ``status``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from airflow_ci_vars.errors import CIVarsError
from airflow_ci_vars.jobs import JobSpec, Need
from airflow_ci_vars.parameters import run_ref
from airflow_ci_vars.permissions import ProjectAccess
from airflow_ci_vars.pipeline.expressions import RuleOutcome, evaluate_rules
from airflow_ci_vars.pipeline.manual import may_block
from airflow_ci_vars.pipeline.rule_entry import (
    MAX_START_IN,
    any_rule_needs,
    needed_instances,
    rule_needs,
    rule_start_in,
)
from airflow_ci_vars.pipeline.seed import paths_exist
from airflow_ci_vars.pipeline.status import composite_status, should_run
from airflow_ci_vars.variables.model import Layer, Variable
from airflow_ci_vars.variables.predefined import RunContext
from airflow_ci_vars.variables.resolve import VariableLayers, expanded_environment, rules_context, workflow_context
from airflow_ci_vars.variables.yaml_values import yaml_variables

__all__ = [
    "MAX_START_IN",
    "NULL_SHA",
    "Earlier",
    "JobDecision",
    "PipelineRun",
    "decide",
    "files_exist",
    "job_layers",
    "needed_instances",
    "pipeline_run",
    "rules_needs",
]

NULL_SHA = "0" * 40
#: GitLab's limit on ``start_in`` (``duration: { limit: '1 week' }``).
Action = Literal["run", "skip", "fail"]


@dataclass(frozen=True)
class PipelineRun:
    """What a pipeline run knows about itself, the same for each of its jobs: the base of every
    job's ``RunContext`` (:meth:`context`). Build it with :func:`pipeline_run`."""

    project: str
    ref: str
    default_branch: str
    ref_protected: bool
    pipeline_source: str = "api"
    ref_type: Literal["branch", "tag"] = "branch"
    sha: str = NULL_SHA

    def context(self, job: JobSpec | None = None, **extra: Any) -> RunContext:
        """``job``'s predefined-variable context in this run (None: the pipeline's own, as
        ``include:rules`` see it); ``extra`` adds what only a running job knows (ids,
        directories, environment details)."""
        return RunContext(
            job_name=job.name if job is not None else "",
            stage=job.stage if job is not None else "test",
            project_path=self.project,
            ref=self.ref,
            ref_type=self.ref_type,
            sha=self.sha,
            default_branch=self.default_branch,
            ref_protected=self.ref_protected,
            pipeline_source=self.pipeline_source,
            node_index=job.node_index if job is not None else None,
            node_total=job.node_total if job is not None else 1,
            **extra,
        )


def pipeline_run(conf: Mapping[str, Any], access: ProjectAccess, *, project: str, source: str) -> PipelineRun:
    """The run's context from its ``conf`` (``ref``, ``ref_type``, ``sha``), the project's access
    settings and how it started (``source``: ``CI_PIPELINE_SOURCE``). The operator and ``explain``
    both build it here, so a rule sees the same values in both."""
    ref = str(run_ref(conf, access.default_branch))
    return PipelineRun(
        project=project,
        ref=ref,
        default_branch=access.default_branch,
        ref_protected=access.is_protected(ref),
        pipeline_source=source,
        ref_type="tag" if conf.get("ref_type") == "tag" else "branch",
        sha=str(conf.get("sha") or NULL_SHA),
    )


def job_layers(
    job: JobSpec, stored: Mapping[str, Any], pipeline: Sequence[Variable] = (), **more: Any
) -> VariableLayers:
    """``job``'s variable layers: the stored ones (``Settings.layers_for``), its YAML variables
    (defaults, its own, ``inherit``), its rules' variables, the pipeline variables, and ``more``
    (``VariableLayers`` keywords: ``secrets``, ``dotenv``, ``manual``...)."""
    more.setdefault("rules", job.rules_variables)
    return VariableLayers(
        **stored,
        default=job.default_variables,
        job=job.variables,
        inherit=job.inherit_variables,
        pipeline=pipeline,
        **more,
    )


def files_exist(project_dir: str | os.PathLike[str] | None) -> Callable[[Sequence[str]], bool]:
    """``rules:exists`` in ``project_dir``: ``seed.paths_exist`` there (never outside it;
    without a directory, no file exists)."""

    def exists(patterns: Sequence[str]) -> bool:
        return project_dir is not None and paths_exist(Path(project_dir), patterns)

    return exists


def _always_false(name: str) -> bool:
    return False


@dataclass(frozen=True)
class Earlier:
    """The pipeline's jobs and what is known of them when a job starts.

    ``jobs``: every job of the pipeline by name; ``stages``: the pipeline's stages in order;
    ``states(names)``: their states (Airflow's ``success``, ``failed``, ``skipped``...; None: not
    finished); ``excluded(name)``: ``rules`` left that job out of the pipeline; ``blocked(name)``:
    that blocking manual job was not played (the pipeline is blocked at its stage).
    """

    jobs: Mapping[str, JobSpec]
    stages: Sequence[str]
    states: Callable[[Sequence[str]], Sequence[str | None]]
    excluded: Callable[[str], bool] = _always_false
    blocked: Callable[[str], bool] = _always_false


@dataclass(frozen=True)
class JobDecision:
    """GitLab's decision on one job in one run.

    ``action``: ``run`` (``when: manual`` still waits to be played, ``when: delayed`` waits
    ``start_in`` seconds), ``skip`` or ``fail``; ``reason`` says why in a sentence (GitLab's
    message for a failure). ``job`` is the job as decided (the rule's ``when``, ``allow_failure``,
    ``variables``, ``needs`` and ``start_in`` applied; ``workflow:rules`` variables among its
    defaults); ``layers`` the variable layers it runs with (before secrets, dotenv and manual
    variables); ``environment`` its expanded environment name. ``in_pipeline`` is False when
    ``workflow:rules`` or ``rules`` leave the job out (``excluded_by_rules``: ``rules`` did, which
    is what ``needs`` and ``dependencies`` of other jobs look at); ``rule`` is the matching rule's
    index.
    """

    action: Action
    reason: str
    job: JobSpec
    layers: VariableLayers
    environment: str | None = None
    in_pipeline: bool = True
    excluded_by_rules: bool = False
    rule: int | None = None
    rule_variables: tuple[Variable, ...] = ()
    rule_needs: tuple[Need, ...] | None = None

    @property
    def when(self) -> str:
        """The decided ``when``."""
        return self.job.when

    @property
    def start_in(self) -> int | None:
        """Seconds a ``when: delayed`` job waits (None otherwise)."""
        return self.job.start_in if self.job.when == "delayed" else None

    @property
    def allow_failure(self) -> bool | tuple[int, ...]:
        """The decided ``allow_failure`` (``True``/``False`` or exit codes)."""
        return self.job.allow_failure

    @property
    def needs(self) -> tuple[Need, ...] | None:
        """The needs that count (the rule's when it has some, else the job's; None: stage order)."""
        return self.job.needs


def _workflow(
    job: JobSpec,
    run: PipelineRun,
    stored: Mapping[str, Any],
    pipeline: Sequence[Variable],
    workflow_rules: Sequence[Mapping[str, object]],
) -> tuple[JobSpec, str | None]:
    """``workflow:rules``: (the job with the rule's variables among its defaults, None), or
    (``job``, why no pipeline is created)."""
    layers = VariableLayers(**stored, default=job.default_variables, pipeline=pipeline)
    seen = workflow_context(layers, run.context(job))
    outcome = evaluate_rules(workflow_rules, seen, job_when="always")
    if outcome is None or not outcome.created:
        return job, "workflow:rules create no pipeline"
    if not outcome.variables:
        return job, None
    extra = yaml_variables(dict(outcome.variables), layer=Layer.DEFAULT, name="workflow:rules")
    keys = {v.key for v in extra}
    kept = tuple(v for v in job.default_variables if v.key not in keys)
    return dataclasses.replace(job, default_variables=(*kept, *extra)), None


def _apply_rules(job: JobSpec, outcome: RuleOutcome) -> tuple[JobSpec, tuple[Variable, ...], tuple[Need, ...] | None]:
    """``job`` with the matching rule's attributes merged over its own (``Seed::Build``): its
    ``needs`` and ``start_in`` through ``rule_entry``, the loader's check of them (a rule's
    non-empty ``needs`` replaces the job's; without ``start_in`` a delayed job keeps its own)."""
    rule = (job.rules or ())[outcome.rule_index or 0]
    variables = tuple(yaml_variables(dict(outcome.variables), layer=Layer.JOB, name="rules"))
    needs = rule_needs(job.name, rule)
    start_in = rule_start_in(job.name, rule)
    if start_in is None:
        start_in = job.start_in if outcome.when == "delayed" else None
    decided = dataclasses.replace(
        job,
        when=outcome.when,
        allow_failure=outcome.allow_failure,
        rules_variables=variables,
        needs=job.needs if needs is None else needs,
        start_in=start_in,
    )
    return decided, variables, needs


def rules_needs(job: JobSpec) -> tuple[str, ...]:
    """The jobs any of ``job``'s rules may need (``rule_entry.any_rule_needs``)."""
    return any_rule_needs(job.rules)


def _expanded(needs: tuple[Need, ...], known: Collection[str]) -> tuple[Need, ...]:
    """``needs`` with each entry on a parallel job replaced by one per instance."""
    out: list[Need] = []
    for need in needs:
        found = needed_instances(need.job, known)
        out += [dataclasses.replace(need, job=n) for n in found] if found else [need]
    return tuple(out)


def _not_in_pipeline_message(job: str, need: str) -> str:
    return (
        f"'{job}' job needs '{need}' job, but '{need}' does not exist in the pipeline. This might be because of "
        "the only, except, or rules keywords. To need a job that sometimes does not exist in the pipeline, "
        "use needs:optional."
    )


def _earlier_jobs(job: JobSpec, earlier: Earlier, rule_needs: bool) -> tuple[list[str], str | None]:
    """The names of the jobs whose states count (or why the pipeline is invalid).

    ``needs``: the needed jobs; a needed job ``rules`` left out is dropped when the need is
    ``optional``, else the pipeline is invalid. A job-level need on a job outside this run's
    jobs (``run --job`` without ``--needs``) is dropped; a rule's is invalid. Without
    ``needs``: every job of an earlier stage. (What the configuration alone shows -- a need on
    an undefined job or one of a later stage -- the loader refuses: ``rule_entry``.)
    """
    if job.needs is None:
        index = {s: i for i, s in enumerate(earlier.stages)}
        mine = index.get(job.stage, len(index))
        return [n for n, j in earlier.jobs.items() if n != job.name and index.get(j.stage, len(index)) < mine], None
    names = []
    for need in job.needs:
        known = need.job in earlier.jobs
        if known and not earlier.excluded(need.job):
            names.append(need.job)
        elif not need.optional and (known or rule_needs):
            return [], _not_in_pipeline_message(job.name, need.job)
    return names, None


def _blocking(names: Sequence[str], states: Sequence[str | None], earlier: Earlier) -> str | None:
    """The blocking manual job of an earlier stage nobody played, if any (GitLab: the pipeline
    is "blocked" there, and no later stage starts whatever its ``when``)."""
    for name, state in zip(names, states, strict=True):
        if state == "skipped" and may_block(earlier.jobs[name]) and earlier.blocked(name):
            return name
    return None


def _missing_dependency(job: JobSpec, earlier: Earlier) -> str | None:
    """A ``dependencies`` entry naming a job ``rules`` left out of the pipeline."""
    for name in job.dependencies or ():
        if name in earlier.jobs and earlier.excluded(name):
            return (
                f"{job.name} job: dependency {name} does not exist in the pipeline "
                "(left out by rules); a job cannot depend on it"
            )
    return None


def decide(
    job: JobSpec,
    run: PipelineRun,
    *,
    stored: Mapping[str, Any],
    pipeline: Sequence[Variable] = (),
    workflow_rules: Sequence[Mapping[str, object]] | None = None,
    environment: str | None = None,
    earlier: Earlier | None = None,
    exists: Callable[[Sequence[str]], bool] | None = None,
    may_see: Callable[[str | None], bool] | None = None,
) -> JobDecision:
    """GitLab's decision on ``job`` in ``run``.

    ``stored``: the stored variable layers of the run's project (``Settings.layers_for``);
    ``pipeline``: the pipeline variables; ``environment``: the environment of a job without
    ``environment:`` (the run's ``conf["environment"]``); ``earlier``: the pipeline's jobs and
    their states (None: decide on the rules only, as for another job's ``excluded``);
    ``exists(globs)``: ``rules:exists``; ``may_see(environment)``: whether the run's user may
    deploy to that (expanded) environment -- if not, its scoped variables stay out of reach of
    ``rules`` too, which could otherwise tell one bit of a value per run.
    """
    named = job.environment.name if job.environment is not None else environment
    context = run.context(job)

    def decision(action: Action, reason: str, decided: JobSpec, **more: Any) -> JobDecision:
        layers = job_layers(decided, stored, pipeline)
        shown = expanded_environment(layers, context, named) if named else None
        return JobDecision(action, reason, decided, layers, shown, **more)

    try:
        if workflow_rules is not None:
            job, no_pipeline = _workflow(job, run, stored, pipeline, workflow_rules)
            if no_pipeline is not None:
                return decision("skip", no_pipeline, job, in_pipeline=False)
        rule_needs: tuple[Need, ...] | None = None
        rule_variables: tuple[Variable, ...] = ()
        rule: int | None = None
        if job.rules is not None:
            layers = job_layers(job, stored, pipeline)
            scoped = True
            if may_see is not None:
                scoped = may_see(expanded_environment(layers, context, named) if named else None)
            seen = rules_context(layers, context, environment=named, scoped=scoped)
            outcome = evaluate_rules(job.rules, seen, job_when=job.when, exists=exists)
            if outcome is None or not outcome.created:
                why = "excluded by rules: no rule matched, or the rule says when: never"
                return decision("skip", why, job, in_pipeline=False, excluded_by_rules=True)
            job, rule_variables, rule_needs = _apply_rules(job, outcome)
            rule = outcome.rule_index
    except CIVarsError as err:  # a pipeline the loader did not check (the loader refuses bad rules)
        return decision("fail", str(err), job)
    if rule_needs is not None and earlier is not None:
        rule_needs = _expanded(rule_needs, earlier.jobs.keys())
        job = dataclasses.replace(job, needs=rule_needs)
    more: dict[str, Any] = {"rule": rule, "rule_variables": rule_variables, "rule_needs": rule_needs}
    if earlier is None:
        return decision("run", f"when: {job.when}", job, **more)
    names, invalid = _earlier_jobs(job, earlier, rule_needs is not None)
    if invalid is not None:
        return decision("fail", invalid, job, **more)
    states = list(earlier.states(names)) if names else []
    dag = job.needs is not None
    if not dag:
        blocking = _blocking(names, states, earlier)
        if blocking is not None:
            return decision("skip", f"pipeline blocked by manual job {blocking!r}", job, **more)
    previous = composite_status(states, dag=dag)
    if not should_run(job.when, previous, dag=dag):
        return decision("skip", f"when: {job.when}, previous jobs {previous}", job, **more)
    missing = _missing_dependency(job, earlier)
    if missing is not None:
        return decision("fail", missing, job, **more)
    return decision("run", f"when: {job.when}, previous jobs {previous}", job, **more)
