"""GitLab's variable precedence, written once: an ordered table of layers and the steps that see each.

Every view of a job's variables is derived from ``PRECEDENCE``: the variables ``include:rules``
see, those ``workflow:rules`` see, the ones ``environment:name`` is expanded with, the ones
``rules:if`` sees, the list Rails sends the runner and what gitlab-runner appends to it. A later
entry overrides an earlier one with the same key; adding a layer is adding one entry.

R: ``lib/gitlab/ci/variables/builder.rb`` (``scoped_variables``, ``scoped_variables_for_pipeline_seed``,
``config_variables``), ``app/models/ci/build.rb`` (``base_variables``),
``lib/gitlab/ci/build/context/global.rb`` (workflow), ``lib/gitlab/ci/build/context/build.rb``
(environment name); GR ``common/build.go`` ``GetAllVariables`` (the runner's appendix).
Pure: nothing here imports Airflow, and nothing here expands a value (``resolve.py`` does).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_ci_vars.variables.model import Layer, Variable, VariableSource
from airflow_ci_vars.variables.predefined import (
    RunContext,
    persisted_environment_variables,
    predefined_variables,
)
from airflow_ci_vars.variables.scopes import matches_environment_scope, scope_rank
from airflow_ci_vars.variables.yaml_values import merge_yaml_variables

if TYPE_CHECKING:
    from airflow_ci_vars.variables.resolve import VariableLayers

__all__ = [
    "PRECEDENCE",
    "RULES_HIDDEN_PREDEFINED",
    "SEES_RULES_VARIABLES",
    "LayerEntry",
    "Step",
    "View",
    "collect",
    "view_of",
    "entries",
    "layer_rank",
]


class Step(enum.Flag):
    """A moment at which GitLab (or the runner) builds a list of variables."""

    INCLUDE = enum.auto()
    """``include:rules`` and include locations, before any YAML is read (R: ``Builder#config_variables``)."""
    WORKFLOW = enum.auto()
    """``workflow:rules``: a stub build's variables without ``CI_JOB_*`` (R: ``context/global.rb``)."""
    ENVIRONMENT = enum.auto()
    """The expansion of ``environment:name``, for environment nil (R: ``context/build.rb``)."""
    RULES = enum.auto()
    """``rules:if`` of a job (R: ``Builder#scoped_variables_for_pipeline_seed``)."""
    KEYWORD = enum.auto()
    """A keyword expanded once the job exists (``trigger:forward``, ``trigger:branch``,
    ``needs:project``): what ``rules:if`` sees, plus the persisted ``CI_PIPELINE_ID``."""
    JOB = enum.auto()
    """The list Rails sends the runner, expanded by ``sort_and_expand_all`` (R: ``Ci::Build#variables``)."""
    RUNNER = enum.auto()
    """Appended by gitlab-runner after that expansion, before its own ``os.Expand`` pass."""


RULES_HIDDEN_PREDEFINED = frozenset(
    {"CI_PIPELINE_ID", "CI_JOB_ID", "CI_BUILDS_DIR", "CI_PROJECT_DIR", "CI_SERVER", "CI_JOB_TIMEOUT"}
)
"""Persisted and runner variables: they do not exist yet when GitLab evaluates ``rules``."""

SEES_RULES_VARIABLES = Step.ENVIRONMENT | Step.JOB
"""The steps that see the matching rule's ``rules:variables``; ``rules:if`` does not (it chooses
them: R ``seed/build.rb`` evaluates rules before ``rules_attributes`` merges them)."""

_KEYWORD_HIDDEN_PREDEFINED = RULES_HIDDEN_PREDEFINED - {"CI_PIPELINE_ID"}
"""Once the job exists its pipeline is persisted: a keyword sees ``CI_PIPELINE_ID``, not the runner's."""

_JOB_LEVEL_PREFIXES = ("CI_JOB_", "CI_NODE_")
"""Predefined variables of a job: not known to ``include:rules`` and ``workflow:rules``."""


@dataclass(frozen=True, slots=True)
class View:
    """What one step knows when it collects the layers.

    ``run`` has the environment name this step knows (expanded, or None); ``scope`` is the
    environment stored variables' scopes are matched against; ``yaml`` the YAML variables this
    step sees (merged by ``merge_yaml_variables``); ``excluded`` collects the stored definitions
    left out, with the reason (only ``resolve`` asks); ``temp_dir`` is ``RUNNER_TEMP_PROJECT_DIR``.
    """

    step: Step
    run: RunContext
    scope: str | None
    yaml: Sequence[Variable] = ()
    excluded: list[tuple[Variable, str]] | None = None
    temp_dir: str = ""


@dataclass(frozen=True, slots=True)
class LayerEntry:
    """One row of the precedence table.

    ``layers`` label the row's variables (``Variable.source``), lowest first; ``steps`` are the
    steps that see the row; ``fields`` name the ``VariableLayers`` fields its variables come from
    (none: from the run context). A row reads its one field as it is, or, when ``stored``, keeps
    the stored variables that apply (protection, environment scope); ``compute`` builds any other.
    """

    name: str
    layers: tuple[Layer, ...]
    steps: Step
    fields: tuple[str, ...] = ()
    compute: Callable[[VariableLayers, View], Iterable[Variable]] | None = None
    stored: bool = False

    def variables(self, layers: VariableLayers, view: View) -> Iterable[Variable]:
        """This row's variables as ``view`` sees them, lowest precedence first."""
        if self.compute is not None:
            return self.compute(layers, view)
        found: Iterable[Variable] = getattr(layers, self.fields[0])
        return _stored(found, view) if self.stored else found


def _predefined(layers: VariableLayers, view: View) -> list[Variable]:
    """The predefined variables that exist at ``view.step``: ``rules:if`` sees no persisted or
    runner ones (R ``scoped_variables_for_pipeline_seed``), ``include:rules`` and ``workflow:rules``
    no job ones either (R ``context/global.rb``)."""
    found = predefined_variables(view.run)
    if view.step in (Step.JOB, Step.ENVIRONMENT):
        return found
    if view.step is Step.RULES:
        return [v for v in found if v.key not in RULES_HIDDEN_PREDEFINED]
    if view.step is Step.KEYWORD:
        return [v for v in found if v.key not in _KEYWORD_HIDDEN_PREDEFINED]
    return [v for v in found if v.key not in RULES_HIDDEN_PREDEFINED and not v.key.startswith(_JOB_LEVEL_PREFIXES)]


def _stored(variables: Iterable[Variable], view: View) -> list[Variable]:
    """Stored variables that apply: protected ones only on a protected ref, scope matching,
    ordered by scope so that the most specific comes last."""
    protected_ref = view.run.ref_protected
    environment = view.scope
    excluded = view.excluded
    kept: list[Variable] = []
    for v in variables:
        if v.protected and not protected_ref:
            if excluded is not None:
                excluded.append((v, "protected variable, ref is not protected"))
        elif not matches_environment_scope(v.environment_scope, environment):
            if excluded is not None:
                where = f"environment {environment!r}" if environment else "a job without environment"
                excluded.append((v, f"scope {v.environment_scope!r} does not match {where}"))
        else:
            kept.append(v)
    return sorted(kept, key=lambda v: scope_rank(v.environment_scope, environment))


def _groups(layers: VariableLayers, view: View) -> list[Variable]:
    out: list[Variable] = []
    for _path, group_vars in layers.groups:
        out += _stored(group_vars, view)
    return out


def _yaml(layers: VariableLayers, view: View) -> Sequence[Variable]:
    return view.yaml


def _persisted_environment(layers: VariableLayers, view: View) -> list[Variable]:
    return persisted_environment_variables(view.run)


def _runner_temp(layers: VariableLayers, view: View) -> list[Variable]:
    return [Variable("RUNNER_TEMP_PROJECT_DIR", view.temp_dir, source=VariableSource(Layer.PREDEFINED))]


_CREATION = Step.INCLUDE | Step.WORKFLOW | Step.ENVIRONMENT | Step.RULES | Step.KEYWORD | Step.JOB
"""Every step of pipeline creation and the job payload: the layers GitLab always has."""
_SEEDED = _CREATION & ~Step.INCLUDE
"""Once the YAML is read (GitLab's include context has no YAML and no deployment)."""

PRECEDENCE: tuple[LayerEntry, ...] = (
    # R build.rb base_variables (persisted), builder.rb predefined_variables; GR build.go (runner block)
    LayerEntry("predefined", (Layer.PREDEFINED,), _CREATION, compute=_predefined),
    # R builder.rb project.predefined_variables, pipeline_variables_builder.predefined_variables
    LayerEntry("extra predefined", (Layer.PREDEFINED,), _CREATION, ("predefined",)),
    LayerEntry("deployment", (Layer.DEPLOYMENT,), _SEEDED, ("deployment",)),  # kubernetes_variables_from_job
    # R builder.rb job.yaml_variables; seed/build.rb calculate_yaml_variables!, rules_attributes
    LayerEntry("yaml", (Layer.DEFAULT, Layer.JOB), _SEEDED, ("default", "job", "inherit", "rules"), _yaml),
    LayerEntry("dotenv", (Layer.DOTENV,), Step.JOB, ("dotenv",)),  # R builder.rb job.dependency_variables
    LayerEntry("instance", (Layer.INSTANCE,), _CREATION, ("instance",), stored=True),  # secret_instance_variables
    LayerEntry("groups", (Layer.GROUP,), _CREATION, ("groups",), _groups),  # root first: builder/group.rb
    LayerEntry("project", (Layer.PROJECT,), _CREATION, ("project",), stored=True),  # secret_project_variables
    LayerEntry("pipeline", (Layer.PIPELINE,), _CREATION, ("pipeline",)),  # R builder.rb pipeline.variables
    LayerEntry("schedule", (Layer.SCHEDULE,), _CREATION, ("schedule",)),  # pipeline_schedule_variables
    LayerEntry("manual", (Layer.MANUAL,), Step.JOB, ("manual",)),  # R build.rb base_variables: job_variables
    # R build.rb base_variables: persisted_environment_variables (CI_ENVIRONMENT_SLUG, CI_ENVIRONMENT_URL)
    LayerEntry("persisted environment", (Layer.PERSISTED_ENVIRONMENT,), Step.JOB, compute=_persisted_environment),
    LayerEntry("secrets", (Layer.SECRETS,), Step.RUNNER, ("secrets",)),  # GR build.go GetAllVariables
    LayerEntry("runner temp dir", (Layer.PREDEFINED,), Step.RUNNER, compute=_runner_temp),  # RUNNER_TEMP_PROJECT_DIR
)
"""GitLab's precedence, lowest first: a later entry overrides an earlier one with the same key."""


def _by_step() -> dict[Step, tuple[LayerEntry, ...]]:
    steps = [s for s in Step if s.name is not None]
    return {s: tuple(e for e in PRECEDENCE if s in e.steps) for s in steps}


_BY_STEP = _by_step()


def entries(step: Step) -> tuple[LayerEntry, ...]:
    """The rows ``step`` sees, in precedence order."""
    return _BY_STEP[step]


def view_of(
    step: Step,
    layers: VariableLayers,
    run: RunContext,
    *,
    scope: str | None,
    excluded: list[tuple[Variable, str]] | None = None,
    temp_dir: str = "",
) -> View:
    """What ``step`` knows of ``layers`` on ``run``: its YAML variables merged as GitLab does."""
    rules = layers.rules if step in SEES_RULES_VARIABLES else ()
    yaml = merge_yaml_variables(layers.default, layers.job, inherit=layers.inherit, rules=rules)
    return View(step, run, scope, yaml, excluded, temp_dir)


def collect(layers: VariableLayers, view: View) -> list[Variable]:
    """The variables ``view.step`` sees, lowest precedence first (duplicates kept: the last wins)."""
    out: list[Variable] = []
    for entry in _BY_STEP[view.step]:
        out += entry.variables(layers, view)
    return out


def _ranks() -> Mapping[Layer, int]:
    rank: dict[Layer, int] = {}
    for entry in PRECEDENCE:
        for layer in entry.layers:
            rank.setdefault(layer, len(rank))
    return rank


_RANK = _ranks()


def layer_rank(layer: Layer) -> int:
    """Where a layer first appears in ``PRECEDENCE``: higher overrides lower (``explain``'s order)."""
    return _RANK[layer]
