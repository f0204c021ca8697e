"""The pipeline model: jobs (with their parallel and matrix instances), stages, needs, validation.

Input is a merged configuration (includes, ``extends``, ``!reference`` and ``default:`` already
applied): stages, top-level variables and one mapping per job. Output is a ``Pipeline`` whose
jobs carry everything the DAG factory and the operator need. Errors use GitLab's wording
(R: ``lib/gitlab/ci/yaml_processor.rb``, ``yaml_processor/dag.rb``, ``config/entry/job.rb``,
``config/normalizer``) and carry ``file:line:col``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from airflow_ci_vars.errors import CIVarsError, JobConfigError, VariableValidationError
from airflow_ci_vars.jobs import JobSpec, Need
from airflow_ci_vars.pipeline.entries import needs as needs_entry
from airflow_ci_vars.pipeline.entries.job import parse_job
from airflow_ci_vars.pipeline.entries.parallel import instances as job_instances
from airflow_ci_vars.pipeline.entries.parallel import matrix_instances
from airflow_ci_vars.pipeline.entries.stage import DEFAULT_STAGES
from airflow_ci_vars.pipeline.limits import (
    DEFAULT_LIMITS,
    MAX_PARALLEL,
    matrix_size,
    too_many_jobs,
)
from airflow_ci_vars.variables.model import Layer, Variable, VariableSource

if TYPE_CHECKING:
    from airflow_ci_vars.pipeline.run_form import RunForm

__all__ = [
    "DEFAULT_STAGES",
    "MAX_PARALLEL",
    "Pipeline",
    "PipelineJob",
    "PipelineProblem",
    "build_pipeline",
    "matrix_instances",
    "select_jobs",
    "task_id_for",
]

Locate = Callable[..., str]


@dataclass(frozen=True, slots=True)
class PipelineProblem:
    """One error or warning: GitLab's message and where (``file:line:col``)."""

    message: str
    where: str = ""
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class PipelineInvalidError(CIVarsError, ValueError):
    """The pipeline is invalid; ``problems`` lists every error found, ``warnings`` the warnings."""

    def __init__(self, problems: Sequence[PipelineProblem], warnings: Sequence[PipelineProblem] = ()) -> None:
        self.problems = tuple(problems)
        self.warnings = tuple(warnings)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True, slots=True)
class PipelineJob:
    """One job instance's place in the pipeline (a parallel or matrix job gives several).

    The job's keywords live in ``spec``, the one job record (``JobSpec``); this adds only where
    the instance stands: its name, its job's name, its task id, its stage's index, its matrix
    values and where the job is written.
    """

    name: str
    base_name: str
    task_id: str
    stage_index: int
    spec: JobSpec
    matrix: Mapping[str, str] = field(default_factory=dict)
    where: str = ""

    @property
    def stage(self) -> str:
        """The job's stage name."""
        return self.spec.stage


@dataclass(frozen=True, slots=True)
class Pipeline:
    """A validated pipeline: stages in order, job instances in file order, warnings."""

    file: str
    stages: tuple[str, ...]
    variables: tuple[Variable, ...]
    jobs: tuple[PipelineJob, ...]
    workflow_rules: tuple[Mapping[str, object], ...] | None = None
    warnings: tuple[PipelineProblem, ...] = ()
    #: child pipelines (``trigger:include``) by the name of the trigger job that creates them
    children: Mapping[str, Pipeline] = field(default_factory=dict)
    #: the main file's ``spec:inputs`` and prefilled variables (GitLab's Run pipeline form), if any
    form: RunForm | None = None

    def job(self, name: str) -> PipelineJob:
        """The job instance called ``name``; raises KeyError."""
        for job in self.jobs:
            if job.name == name:
                return job
        raise KeyError(name)

    def instances(self, base_name: str) -> tuple[PipelineJob, ...]:
        """Every instance of a (parallel or matrix) job, or the job itself."""
        return tuple(j for j in self.jobs if j.base_name == base_name)


_TASK_ID_BAD = re.compile(r"[^A-Za-z0-9_.-]+")


def task_id_for(name: str) -> str:
    """A stable, valid Airflow task id for a GitLab job name.

    Names that are already valid are kept; others are sanitised and get a short hash of the
    original name, so two names never collide (``build: [linux, amd64]`` ->
    ``build_linux_amd64-5c1f2e``).
    """
    if _TASK_ID_BAD.search(name) is None and name and len(name) <= 200:
        return name
    clean = _TASK_ID_BAD.sub("_", name).strip("_.-")[:180] or "job"
    return f"{clean}-{hashlib.sha256(name.encode()).hexdigest()[:6]}"


_MATRIX_EXPRESSION = re.compile(r"\$\[\[\s*matrix\.([A-Za-z0-9_-]+)\s*\]\]")


def _matrix_expression(value: str, matrix: Mapping[str, str]) -> str:
    """``$[[ matrix.NAME ]]`` in a ``needs:parallel:matrix`` selector: the consumer's own value."""
    return _MATRIX_EXPRESSION.sub(lambda m: matrix.get(m.group(1), m.group(0)), value)


def _keys(err: CIVarsError) -> tuple[str, ...]:
    """Where a job's refused keyword is written: the keyword (and a refused variable's key)."""
    if isinstance(err, JobConfigError):
        return (err.key,) if err.key else ()
    return _variable_keys(err, "variables")


def _variable_keys(err: CIVarsError, keyword: str) -> tuple[str, ...]:
    """Where a refused ``variables:`` entry is written (``keyword``, then its key); ``()`` for other errors."""
    if isinstance(err, VariableValidationError) and err.key and err.field in ("value", "expand"):
        return (keyword, err.key)
    return ()


def build_pipeline(
    *,
    file: str,
    stages: Sequence[str] | None,
    variables: Mapping[str, object] | None,
    jobs: Mapping[str, Mapping[str, object]],
    workflow: Mapping[str, object] | None = None,
    locate: Locate | None = None,
    max_jobs: int = DEFAULT_LIMITS.max_jobs,
    counted: int = 0,
    containers: bool = False,
) -> Pipeline:
    """Validate a merged configuration and build the pipeline; raise ``PipelineInvalidError``.

    ``containers``: the deployment runs jobs in containers (``[ci_vars] isolation = docker``), so
    ``image:`` and ``services:`` are used, not warned about as runner-only keywords.

    More than ``max_jobs`` job instances, with ``counted`` built before (a parent pipeline's), are
    refused before they are built (GitLab's ``ci_pipeline_size``), at the job that passes it.
    """
    where: Locate = locate or (lambda *_args: file)
    errors: list[PipelineProblem] = []
    warnings: list[PipelineProblem] = []
    stage_list = tuple(stages) if stages else DEFAULT_STAGES
    stage_index = {s: i for i, s in enumerate(stage_list)}
    from airflow_ci_vars.variables.yaml_values import yaml_variables

    try:
        top_variables = tuple(yaml_variables(variables or {}, layer=Layer.DEFAULT))
    except CIVarsError as err:
        errors.append(PipelineProblem(str(err), where(*_variable_keys(err, "variables"))))
        top_variables = ()
        variables = None  # reported once, here, not again for every job that inherits it

    built: list[PipelineJob] = []
    base_of: dict[str, list[str]] = {}
    raw_needs: dict[str, list[Mapping[str, object]]] = {}
    instance_count = counted
    for name, job in jobs.items():
        found = parse_job(name, job, default_variables=variables, stages=stage_index, containers=containers)
        for message, keyword in found.warnings:
            warnings.append(PipelineProblem(message, where(name, keyword), "warning"))
        for refused in found.errors:
            errors.append(PipelineProblem(str(refused), where(name, *_keys(refused))))
        try:
            instances = job_instances(name, job.get("parallel"))
        except JobConfigError as bad:
            errors.append(PipelineProblem(str(bad), where(name, *_keys(bad))))
            instances = [(name, None, 1, {})]
        instance_count += len(instances)
        if instance_count > max_jobs:  # lib/gitlab/ci/pipeline/quota/size.rb (Pipeline::Quota::Size)
            raise PipelineInvalidError([PipelineProblem(too_many_jobs(max_jobs), where(name))])
        spec = found.spec
        if spec is None:
            continue
        stage = spec.stage
        if "needs" in job:
            raw_needs[name] = needs_entry.raw(job["needs"])
        base_of[name] = []
        for instance, node_index, node_total, matrix in instances:
            job_vars = spec.variables
            if matrix:
                source = VariableSource(Layer.JOB, "parallel:matrix")
                extra = tuple(Variable(k, v, source=source) for k, v in matrix.items())
                kept = tuple(v for v in (job_vars or ()) if v.key not in matrix)
                job_vars = extra + kept
            instance_spec = dataclasses.replace(
                spec, name=instance, variables=job_vars, node_index=node_index, node_total=node_total
            )
            base_of[name].append(instance)
            built.append(
                PipelineJob(
                    name=instance,
                    base_name=name,
                    task_id=task_id_for(instance),
                    stage_index=stage_index.get(stage, len(stage_list)),
                    spec=instance_spec,
                    matrix=matrix,
                    where=where(name),
                )
            )

    by_name = {j.name: j for j in built}

    def named(target: str) -> list[str] | None:
        """The instances a ``needs``/``dependencies`` name stands for (Config::Normalizer): every
        instance of a parallel job, or one instance by its own name (``build: [linux]``)."""
        if target in base_of:
            return base_of[target]
        return [target] if target in by_name else None

    matrices: dict[str, list[Mapping[str, str]]] = {name: [] for name in base_of}
    for built_job in built:
        matrices[built_job.base_name].append(built_job.matrix)
    resolved_needs: dict[str, tuple[Need, ...]] = {}  # by instance name
    reported: set[str] = set()
    for consumer in built:
        name = consumer.base_name
        if name not in raw_needs:
            continue

        def problem(message: str, name: str = name) -> None:
            if message not in reported:
                reported.add(message)
                errors.append(PipelineProblem(message, where(name, "needs")))

        expanded: list[Need] = []
        seen: list[str] = []
        for need in raw_needs[name]:
            if "pipeline" in need or "project" in need:
                continue  # cross-pipeline needs: resolved at run time (dotenv only)
            target = str(need.get("job", ""))
            optional = bool(need.get("optional", False))
            artifacts = bool(need.get("artifacts", True))
            if target in seen:
                problem(needs_entry.duplicated_needs(name, target))
                continue
            seen.append(target)
            instances_of = named(target)
            if instances_of is None:
                if not optional:
                    problem(needs_entry.undefined_need(name, target))
                continue
            selector = need.get("parallel")
            if isinstance(selector, Mapping) and isinstance(selector.get("matrix"), list):
                if not any(matrices.get(target, ())):
                    problem(f"{name} job: need {target} uses parallel:matrix, but {target} has no parallel:matrix")
                    continue
                if matrix_size(selector["matrix"]) > MAX_PARALLEL:
                    problem(
                        f"jobs:{name}:needs:parallel:matrix config generates too many jobs (maximum is {MAX_PARALLEL})"
                    )
                    continue
                raw_wanted = matrix_instances(selector["matrix"])
                unknown = sorted(
                    {m.group(1) for w in raw_wanted for v in w.values() for m in _MATRIX_EXPRESSION.finditer(v)}
                    - set(consumer.matrix)
                )
                if unknown:
                    problem(
                        f"{name} job: need {target}: unknown matrix identifier {', '.join(unknown)} in $[[ matrix.* ]]"
                    )
                    continue
                wanted = [{k: _matrix_expression(v, consumer.matrix) for k, v in w.items()} for w in raw_wanted]
                # A selector naming only some of the matrix variables selects every instance that
                # agrees on those (gitlab-ci-local; GitLab itself needs all of them named).
                instances_of = [
                    n
                    for n, m in zip(base_of[target], matrices[target], strict=True)
                    if any(all(m.get(k) == v for k, v in w.items()) for w in wanted)
                ]
                if not instances_of and optional:
                    continue
                if not instances_of:
                    problem(f"{name} job: need {target} with parallel:matrix matches no job")
                    continue
            expanded += [Need(n, artifacts=artifacts, optional=optional) for n in instances_of]
        resolved_needs[consumer.name] = tuple(expanded)

    final: list[PipelineJob] = []
    for pj in built:
        spec = pj.spec
        if pj.name in resolved_needs:
            job_needs = resolved_needs[pj.name]
            for job_need in job_needs:
                needed = by_name[job_need.job]
                if needed.stage_index > pj.stage_index:
                    errors.append(
                        PipelineProblem(
                            needs_entry.later_stage_need(pj.base_name, needed.base_name),
                            where(pj.base_name, "needs"),
                        )
                    )
            spec = dataclasses.replace(spec, needs=job_needs)
        if spec.dependencies:
            deps: list[str] = []
            for dep in spec.dependencies:
                dep_instances = named(dep)
                if dep_instances is None:
                    errors.append(
                        PipelineProblem(
                            f"{pj.base_name} job: undefined dependency: {dep}", where(pj.base_name, "dependencies")
                        )
                    )
                    continue
                for inst in dep_instances:
                    if by_name[inst].stage_index > pj.stage_index:
                        errors.append(
                            PipelineProblem(
                                f"{pj.base_name} job: dependency {dep} is not defined in current or prior stages",
                                where(pj.base_name, "dependencies"),
                            )
                        )
                        break
                deps += dep_instances
            if spec.needs:  # `needs: []` with dependencies is fine (GitLab checks non-empty needs only)
                needed_names = {n.job for n in spec.needs}
                missing = [d for d in dict.fromkeys(deps) if d not in needed_names]
                if missing:
                    errors.append(
                        PipelineProblem(
                            f"jobs:{pj.base_name} dependencies the {', '.join(missing)} should be part of needs",
                            where(pj.base_name, "dependencies"),
                        )
                    )
            spec = dataclasses.replace(spec, dependencies=tuple(dict.fromkeys(deps)))
        final.append(dataclasses.replace(pj, spec=spec))

    cycle, edge = _needs_cycle(final)
    if cycle:
        located = where(by_name[cycle[0]].base_name, *edge)
        more = f" and {len(cycle) - 20} more" if len(cycle) > 20 else ""  # a bounded message
        errors.append(
            PipelineProblem(f"The pipeline has circular dependencies: {', '.join(cycle[:20])}{more}", located)
        )
    if not final and not errors:
        errors.append(PipelineProblem("jobs config should contain at least one visible job", file))
    if errors:
        raise PipelineInvalidError(errors, warnings)
    workflow_rules = None
    raw_rules = workflow.get("rules") if workflow else None
    if isinstance(raw_rules, list):
        workflow_rules = tuple(r for r in raw_rules if isinstance(r, Mapping))
    return Pipeline(file, stage_list, top_variables, tuple(final), workflow_rules, tuple(warnings))


def _needs_cycle(jobs: Sequence[PipelineJob]) -> tuple[list[str], tuple[str | int, ...]]:
    """Names on a cycle of ``needs`` and ``rules:needs`` together (empty if none; a job needing
    itself is a cycle), and the keys of the first job's edge on it (``needs``, or ``rules``, the
    rule's index, ``needs``). GitLab checks the job-level ``needs`` only (``Dag``); the DAG waits
    for every job any rule may need (``rule_entry.any_rule_needs``), so a cycle through the
    rules is one too (docs/deviations.md)."""
    from airflow_ci_vars.pipeline.rule_entry import needed_instances, rule_need_names

    names = dict.fromkeys(j.name for j in jobs)  # in file order, O(1) lookups
    graph: dict[str, list[tuple[str, tuple[str | int, ...]]]] = {}
    for j in jobs:
        edges: list[tuple[str, tuple[str | int, ...]]] = [(n.job, ("needs",)) for n in (j.spec.needs or ())]
        for index, rule in enumerate(j.spec.rules or ()):
            edges += [(n, ("rules", index, "needs")) for w in rule_need_names(rule) for n in needed_instances(w, names)]
        graph[j.name] = edges
    state: dict[str, int] = {}
    for start in graph:
        if state.get(start):
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[tuple[str, tuple[str | int, ...]]] = []
        while stack:
            node, i = stack.pop()
            if i == 0:
                state[node] = 1
                path.append((node, ()))
            kids = graph.get(node, [])
            if i < len(kids):
                stack.append((node, i + 1))
                kid, keys = kids[i]
                path[-1] = (node, keys)
                if state.get(kid) == 1:
                    cycle = path[[n for n, _ in path].index(kid) :]
                    return [n for n, _ in cycle], cycle[0][1]
                if not state.get(kid):
                    stack.append((kid, 0))
            else:
                state[node] = 2
                path.pop()
    return [], ()


def select_jobs(pipeline: Pipeline, names: Sequence[str], *, with_needs: bool = False) -> Pipeline:
    """Keep only the named jobs (a parallel or matrix job's plain name selects all its instances).

    ``with_needs`` also keeps every job they need, transitively (for a job without ``needs``: every
    job of the earlier stages). ``needs`` and ``dependencies`` on jobs left out are dropped. Raises
    ``KeyError`` naming an unknown job.
    """
    if not names:
        return pipeline
    by_name = {j.name: j for j in pipeline.jobs}
    chosen: set[str] = set()
    for name in names:
        matches = [j.name for j in pipeline.jobs if j.name == name or j.base_name == name]
        if not matches:
            raise KeyError(f"job {name!r} is not in the pipeline")
        chosen.update(matches)
    if with_needs:
        todo = list(chosen)
        while todo:
            job = by_name[todo.pop()]
            if job.spec.needs is not None:
                wanted = [n.job for n in job.spec.needs]
            else:
                wanted = [j.name for j in pipeline.jobs if j.stage_index < job.stage_index]
            for name in wanted:
                if name not in chosen:
                    chosen.add(name)
                    todo.append(name)
    kept: list[PipelineJob] = []
    for job in pipeline.jobs:
        if job.name not in chosen:
            continue
        spec = job.spec
        if spec.needs is not None:
            spec = dataclasses.replace(spec, needs=tuple(n for n in spec.needs if n.job in chosen))
        if spec.dependencies is not None:
            spec = dataclasses.replace(spec, dependencies=tuple(d for d in spec.dependencies if d in chosen))
        kept.append(dataclasses.replace(job, spec=spec))
    return dataclasses.replace(pipeline, jobs=tuple(kept))
