"""Child pipelines (``trigger:include``) and what a trigger job forwards downstream.

GitLab creates a child pipeline from the files a trigger job (a "bridge") includes. They are
loaded here at parse time, as a ``Pipeline`` of their own attached to the parent
(``Pipeline.children``, keyed by the trigger job's name), because Airflow fixes a DAG's shape
when it parses the file. A dynamic child pipeline (``include: {artifact: ..., job: ...}``) only
exists once its generating job has run, so it cannot become tasks; it is reported as a warning
and its trigger job fails when it runs (docs/deviations.md).

Forwarding follows spec §6.3 (R: ``lib/gitlab/ci/variables/downstream/generator.rb``): the
bridge's YAML variables (its own and the inherited top-level ones) when
``forward:yaml_variables`` (default true), then the parent's pipeline variables when
``forward:pipeline_variables`` (default false); the last definition of a key wins; each non-raw
value is expanded once (``ExpandVariables``) with the bridge's variables. They arrive in the child
as *pipeline* variables, above the child jobs' own YAML variables.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_ci_vars.jobs import JobSpec
from airflow_ci_vars.variables.expansion import expand_value
from airflow_ci_vars.variables.model import Layer, Variable, VariableSource
from airflow_ci_vars.variables.yaml_values import merge_yaml_variables

if TYPE_CHECKING:
    from airflow_ci_vars.pipeline.model import Pipeline, PipelineJob

__all__ = [
    "MAX_DEPTH",
    "Bridge",
    "Forward",
    "attach_children",
    "bridge_of",
    "bridge_yaml_variables",
    "forwarded_variables",
    "include_document",
    "is_dynamic",
]

#: GitLab nests child pipelines at most two levels below the top-level pipeline.
MAX_DEPTH = 2

#: ``load(include, variables, where) -> Pipeline``: load a child pipeline made of ``include``, the
#: ``trigger:include`` of the job at ``where`` (``file:line:col``).
ChildLoader = Callable[[object, Mapping[str, str], str], "Pipeline"]


@dataclass(frozen=True, slots=True)
class Forward:
    """``trigger:forward``: what the trigger job passes to the downstream pipeline."""

    yaml_variables: bool = True
    pipeline_variables: bool = False

    @classmethod
    def of(cls, trigger: Mapping[str, object] | None) -> Forward:
        """Read ``trigger:forward`` (absent keys keep GitLab's defaults)."""
        raw = (trigger or {}).get("forward")
        if not isinstance(raw, Mapping):
            return cls()
        yaml_variables = raw.get("yaml_variables", True)
        pipeline_variables = raw.get("pipeline_variables", False)
        return cls(yaml_variables is not False, pipeline_variables is True)


@dataclass(frozen=True, slots=True)
class Bridge:
    """A trigger job as its child pipeline's jobs see it: its YAML and its forward rules."""

    job: JobSpec
    forward: Forward = Forward()
    strategy_depend: bool = False
    #: the task that runs the trigger job (set by the DAG factory)
    task_id: str | None = None


def is_dynamic(include: object) -> bool:
    """Whether ``trigger:include`` names a generated file (``artifact:``), known only at run time."""
    entries = include if isinstance(include, list) else [include]
    return any(isinstance(e, Mapping) and "artifact" in e for e in entries)


def include_document(include: object) -> str:
    """The child pipeline's root document: only ``include:`` (JSON is YAML, and keeps it exact)."""
    return json.dumps({"include": include})


def bridge_yaml_variables(job: JobSpec) -> list[Variable]:
    """The trigger job's YAML variables: inherited top-level ones (``inherit``) and its own."""
    return merge_yaml_variables(job.default_variables, job.variables, inherit=job.inherit_variables)


def forwarded_variables(
    bridge: Bridge,
    pipeline: Iterable[Variable],
    seen: Mapping[str, str],
    dotenv: Iterable[Variable] = (),
) -> list[Variable]:
    """The variables a downstream pipeline receives from ``bridge`` (spec §6.3), as pipeline variables.

    ``pipeline`` are the parent's pipeline variables, ``dotenv`` the dotenv variables the trigger
    job received, ``seen`` the bridge's variables (what the expansion of a forwarded value sees;
    undefined references become empty, ``$$`` is no escape).
    """
    listed: list[Variable] = []
    if bridge.forward.yaml_variables:
        listed += bridge_yaml_variables(bridge.job)
    if bridge.forward.pipeline_variables:
        listed += [*dotenv, *pipeline]
    last: dict[str, Variable] = {}
    for variable in listed:
        last.pop(variable.key, None)
        last[variable.key] = variable
    source = VariableSource(Layer.PIPELINE, f"trigger job {bridge.job.name}")
    return [
        dataclasses.replace(
            v,
            value=v.value if v.raw else expand_value(v.value, seen, expand_file_refs=False),
            source=source,
        )
        for v in last.values()
    ]


def attach_children(
    pipeline: Pipeline,
    load: ChildLoader,
    *,
    seed: Mapping[str, str],
    depth: int = 0,
) -> Pipeline:
    """Load the child pipeline of every ``trigger:include`` job of ``pipeline``, recursively.

    Include locations are expanded with ``seed`` and the trigger job's YAML variables
    (``trigger: {include: $DIR/ci.yml}``). Raises ``PipelineError`` for a child that does not
    load, ``PipelineInvalidError`` for nesting deeper than GitLab allows.
    """
    from airflow_ci_vars.pipeline.model import PipelineInvalidError, PipelineProblem

    children: dict[str, Pipeline] = {}
    warnings = list(pipeline.warnings)
    for job in pipeline.jobs:
        include = (job.spec.trigger or {}).get("include")
        if include is None:
            continue
        if is_dynamic(include):
            warnings.append(
                PipelineProblem(
                    f"jobs:{job.base_name}:trigger:include: a dynamic child pipeline (include:artifact) is "
                    "generated at run time and cannot become Airflow tasks; the job fails when it runs",
                    job.where,
                    "warning",
                )
            )
            continue
        if depth >= MAX_DEPTH:
            raise PipelineInvalidError(
                [
                    PipelineProblem(
                        f"jobs:{job.base_name}:trigger:include: child pipelines nest at most {MAX_DEPTH} levels deep",
                        job.where,
                    )
                ]
            )
        variables = {**seed, **{v.key: v.value for v in bridge_yaml_variables(job.spec)}}
        child = load(include, variables, job.where)
        children[job.name] = attach_children(child, load, seed=seed, depth=depth + 1)
    if not children and len(warnings) == len(pipeline.warnings):
        return pipeline
    return dataclasses.replace(pipeline, children=children, warnings=tuple(warnings))


def bridge_of(job: PipelineJob) -> Bridge:
    """The ``Bridge`` record of a trigger job."""
    return Bridge(job.spec, Forward.of(job.spec.trigger), (job.spec.trigger or {}).get("strategy") == "depend")
