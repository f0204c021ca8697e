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
import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from airflow_ci_vars.errors import CIVarsError, VariableValidationError
from airflow_ci_vars.jobs import JobSpec, Need, job_stage
from airflow_ci_vars.pipeline.durations import parse_duration
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

DEFAULT_STAGES: tuple[str, ...] = (".pre", "build", "test", "deploy", ".post")
JOB_WHEN = ("on_success", "on_failure", "always", "manual", "delayed")
RUNNER_ONLY_KEYWORDS = ("image", "services", "cache", "hooks", "coverage", "dast_configuration", "pages")
KNOWN_KEYWORDS = frozenset(
    {
        "script", "before_script", "after_script", "stage", "variables", "inherit", "needs", "dependencies",
        "rules", "when", "start_in", "allow_failure", "retry", "timeout", "parallel", "environment",
        "artifacts", "trigger", "secrets", "id_tokens", "interruptible", "extends", "resource_group",
        "release", "run", "only", "except", "manual_confirmation", "identity", "tags", "type",
        *RUNNER_ONLY_KEYWORDS,
    }
)  # fmt: skip

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
    """One job instance of the pipeline (a parallel or matrix job gives several)."""

    name: str
    base_name: str
    task_id: str
    stage_index: int
    spec: JobSpec
    when: str = "on_success"
    start_in: int | None = None
    rules: tuple[Mapping[str, object], ...] | None = None
    retry: int = 0
    retry_when: tuple[str, ...] = ()
    timeout: int | None = None
    trigger: Mapping[str, object] | None = None
    secrets: Mapping[str, object] | None = None
    interruptible: bool | None = None
    matrix: Mapping[str, str] = field(default_factory=dict)
    where: str = ""
    #: ``tags:``: the runner tags; the first one becomes the task's queue (Celery), see ``_job_tags``
    tags: tuple[str, ...] = ()

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


def _job_tags(
    name: str, value: object, where: Locate, errors: list[PipelineProblem], warnings: list[PipelineProblem]
) -> tuple[str, ...]:
    """A job's ``tags:``, checked as GitLab checks them (``config/entry/tags.rb``: an array of strings).

    In GitLab a job runs on a runner having *all* its tags; an Airflow task has one queue, so the
    factory uses the first tag as the queue and a second tag only earns a warning. Tags are fixed
    when the DAG is parsed, so a ``$VARIABLE`` in a tag is not expanded (warning too).
    """
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        errors.append(PipelineProblem(f"jobs:{name}:tags config should be an array of strings", where(name, "tags")))
        return ()
    tags = tuple(value)
    if len(tags) > 1:
        warnings.append(
            PipelineProblem(
                f"jobs:{name}:tags: only the first tag ({tags[0]}) is used, as the task's queue: "
                "an Airflow task has one queue, not a set of runner tags",
                where(name, "tags"),
                "warning",
            )
        )
    if any("$" in t for t in tags):
        warnings.append(
            PipelineProblem(
                f"jobs:{name}:tags: variables are not expanded in tags (the queue is fixed when the DAG is parsed)",
                where(name, "tags"),
                "warning",
            )
        )
    return tags


def _matrix_value(value: object) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def matrix_instances(matrix: Sequence[Mapping[str, object]]) -> list[dict[str, str]]:
    """The variable sets of ``parallel:matrix``: a Cartesian product per entry, in key order."""
    out: list[dict[str, str]] = []
    for entry in matrix:
        keys = list(entry)
        for combo in itertools.product(*(_matrix_value(entry[k]) for k in keys)):
            out.append(dict(zip(keys, combo, strict=True)))
    return out


def _instances(name: str, parallel: object) -> list[tuple[str, int | None, int, dict[str, str]]] | str:
    """(instance name, CI_NODE_INDEX, CI_NODE_TOTAL, matrix variables) or an error message."""
    if parallel is None:
        return [(name, None, 1, {})]
    if isinstance(parallel, int) and not isinstance(parallel, bool):
        if not 1 <= parallel <= MAX_PARALLEL:
            return f"jobs:{name}:parallel config must be less than or equal to {MAX_PARALLEL}"
        return [(f"{name} {i}/{parallel}", i, parallel, {}) for i in range(1, parallel + 1)]
    if isinstance(parallel, Mapping) and isinstance(parallel.get("matrix"), list):
        if matrix_size(parallel["matrix"]) > MAX_PARALLEL:  # counted first: a product can be huge
            return f"jobs:{name}:parallel:matrix config generates too many jobs (maximum is {MAX_PARALLEL})"
        sets = matrix_instances(parallel["matrix"])
        total = len(sets)
        return [(f"{name}: [{', '.join(s.values())}]", i, total, s) for i, s in enumerate(sets, start=1)]
    return f"jobs:{name}:parallel should be an integer or a hash"


_MATRIX_EXPRESSION = re.compile(r"\$\[\[\s*matrix\.([A-Za-z0-9_-]+)\s*\]\]")


def _matrix_expression(value: str, matrix: Mapping[str, str]) -> str:
    """``$[[ matrix.NAME ]]`` in a ``needs:parallel:matrix`` selector: the consumer's own value."""
    return _MATRIX_EXPRESSION.sub(lambda m: matrix.get(m.group(1), m.group(0)), value)


def _raw_needs(value: object) -> list[Mapping[str, object]]:
    items = value if isinstance(value, list) else [value]
    out: list[Mapping[str, object]] = []
    for item in items:
        out.append({"job": item} if isinstance(item, str) else item if isinstance(item, Mapping) else {"job": item})
    return out


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
) -> Pipeline:
    """Validate a merged configuration and build the pipeline; raise ``PipelineInvalidError``.

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
        is_bridge = "trigger" in job
        # `type:` (deprecated alias of `stage:`) is a key of jobs only (entry/job.rb, not bridge.rb).
        unknown = sorted(k for k in job if k not in KNOWN_KEYWORDS or (k == "type" and is_bridge))
        if unknown:
            errors.append(
                PipelineProblem(f"jobs:{name} config contains unknown keys: {', '.join(unknown)}", where(name))
            )
        for keyword in RUNNER_ONLY_KEYWORDS:
            if keyword in job:
                warnings.append(
                    PipelineProblem(
                        f"jobs:{name}:{keyword} is ignored: it only configures a GitLab runner",
                        where(name, keyword),
                        "warning",
                    )
                )
        tags = _job_tags(name, job.get("tags"), where, errors, warnings)
        script = job.get("script")
        if not is_bridge:
            if script is None and "run" not in job:
                errors.append(
                    PipelineProblem(
                        f"jobs:{name} config should implement the script:, run:, or trigger: keyword", where(name)
                    )
                )
            elif script is not None and (script == [] or script == "" or (isinstance(script, list) and not any(
                s not in (None, "", []) for s in script
            ))):  # fmt: skip
                errors.append(
                    PipelineProblem(
                        f"jobs:{name}:script config should be an array containing strings and arrays of strings",
                        where(name, "script"),
                    )
                )
        stage_keyword, stage = job_stage(job)
        if stage not in stage_index:
            errors.append(
                PipelineProblem(
                    f"{name} job: chosen stage {stage} does not exist; available stages are {', '.join(stage_list)}",
                    where(name, stage_keyword),
                )
            )
        when = str(job.get("when", "on_success"))
        if when not in JOB_WHEN:
            errors.append(PipelineProblem(f"jobs:{name} when unknown value: {when}", where(name, "when")))
        start_in: int | None = None
        if when == "delayed":
            start_in = parse_duration(job.get("start_in"))
            if start_in is None or start_in > 604800:
                errors.append(
                    PipelineProblem(
                        f"jobs:{name} start in should be a duration of one week or less", where(name, "start_in")
                    )
                )
        timeout = None
        if "timeout" in job:
            timeout = parse_duration(job["timeout"])
            if timeout is None:
                errors.append(
                    PipelineProblem(f"jobs:{name}:timeout config should be a duration", where(name, "timeout"))
                )
        retry = 0
        retry_when: tuple[str, ...] = ()
        if "retry" in job:
            value = job["retry"]
            raw_max = value.get("max", 0) if isinstance(value, Mapping) else value
            if isinstance(raw_max, bool) or not isinstance(raw_max, int) or not 0 <= raw_max <= 2:
                errors.append(PipelineProblem(f"jobs:{name}:retry max can be 0, 1 or 2", where(name, "retry")))
            else:
                retry = raw_max
            if isinstance(value, Mapping):
                w = value.get("when", ())
                retry_when = tuple(str(x) for x in (w if isinstance(w, list) else [w]))
        rules = job.get("rules")
        rules_tuple: tuple[Mapping[str, object], ...] | None = None
        if rules is not None:
            if not isinstance(rules, list):
                errors.append(
                    PipelineProblem(f"jobs:{name}:rules config should be an array of hashes", where(name, "rules"))
                )
            elif not rules:
                errors.append(PipelineProblem(f"jobs:{name}:rules config can't be blank", where(name, "rules")))
            else:
                rules_tuple = tuple(r for r in rules if isinstance(r, Mapping))
        if "needs" in job:
            if not isinstance(job["needs"], list):
                errors.append(PipelineProblem(f"jobs:{name}:needs config should be an array", where(name, "needs")))
                continue
            if any(item is None or item == "" for item in job["needs"]):
                errors.append(
                    PipelineProblem(f"jobs:{name}:needs config can't contain empty entries", where(name, "needs"))
                )
                continue
        raw_trigger = job.get("trigger")
        trigger: Mapping[str, object] | None = None
        if isinstance(raw_trigger, Mapping):
            trigger = raw_trigger
        elif is_bridge:
            trigger = {"project": raw_trigger}
        instances = _instances(name, job.get("parallel"))
        if isinstance(instances, str):
            errors.append(PipelineProblem(instances, where(name, "parallel")))
            instances = [(name, None, 1, {})]
        instance_count += len(instances)
        if instance_count > max_jobs:  # lib/gitlab/ci/pipeline/quota/size.rb (Pipeline::Quota::Size)
            raise PipelineInvalidError([PipelineProblem(too_many_jobs(max_jobs), where(name))])
        try:
            spec = JobSpec.from_yaml(name, job, default_variables=variables)
        except CIVarsError as err:
            errors.append(PipelineProblem(str(err), where(name, *_variable_keys(err, "variables"))))
            continue
        if "needs" in job:
            raw_needs[name] = _raw_needs(job["needs"])
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
                    when=when,
                    start_in=start_in,
                    rules=rules_tuple,
                    retry=retry,
                    retry_when=retry_when,
                    timeout=timeout,
                    trigger=trigger,
                    secrets=job.get("secrets") if isinstance(job.get("secrets"), Mapping) else None,  # type: ignore[arg-type]
                    interruptible=job.get("interruptible") if isinstance(job.get("interruptible"), bool) else None,  # type: ignore[arg-type]
                    matrix=matrix,
                    where=where(name),
                    tags=tags,
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
                problem(f"{name} has the following needs duplicated: {target}.")
                continue
            seen.append(target)
            instances_of = named(target)
            if instances_of is None:
                if not optional:
                    problem(f"{name} job: undefined need: {target}")
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
                            f"{pj.base_name} job: need {needed.base_name} is not defined in current or prior stages",
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
        for index, rule in enumerate(j.rules or ()):
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
