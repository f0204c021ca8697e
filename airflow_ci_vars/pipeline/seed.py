"""What GitLab knows when it creates a pipeline: the variables ``include:rules`` see.

Includes are resolved when the configuration is loaded, before any job exists: only predefined
project and pipeline variables, the stored variables of every environment (``*`` scope) and the
pipeline variables are known (R: ``lib/gitlab/ci/config/external/context.rb``, ``builder.rb``
``config_variables``). Which layers, in which order: ``variables.precedence`` (``Step.INCLUDE``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from airflow_ci_vars.errors import RuleSyntaxError, VariableValidationError
from airflow_ci_vars.pipeline.expressions import evaluate_rules
from airflow_ci_vars.pipeline.rule_syntax import rule_if_problem
from airflow_ci_vars.variables.predefined import RunContext
from airflow_ci_vars.variables.resolve import VariableLayers, include_context

if TYPE_CHECKING:
    from airflow_ci_vars.pipeline.sources import SourceLog

__all__ = ["PARSE_REF", "include_rule_matcher", "parse_seed", "paths_exist", "seed_variables"]

#: The ref of the pipeline a DAG is parsed for: includes are resolved when the DAG file is parsed,
#: so their rules see a pipeline on the default branch (``main``).
PARSE_REF = "main"


_STORED_LAYERS = ("instance", "groups", "project", "project_path")
"""The ``VariableLayers`` keywords of the stored variables (``Settings.layers_for``)."""


def seed_variables(
    *,
    ref: str,
    ref_type: str = "branch",
    project: str | None = None,
    default_branch: str = "main",
    pipeline: Mapping[str, str] | None = None,
    stored: Mapping[str, Any] | None = None,
    ref_protected: bool = False,
) -> dict[str, str]:
    """The variables ``include:rules`` see on a run of ``ref``: predefined project and pipeline
    variables, then the ``*``-scoped ``stored`` ones (``VariableLayers`` keywords, as
    ``Settings.layers_for`` gives them; protected ones only when ``ref_protected``), then the
    pipeline variables."""
    run = RunContext(
        job_name="",
        project_path=project or "group/project",
        ref=ref,
        ref_type="tag" if ref_type == "tag" else "branch",
        default_branch=default_branch,
        ref_protected=ref_protected,
    )
    stored = stored or {}
    unknown = sorted(set(stored) - set(_STORED_LAYERS))
    if unknown:
        allowed = ", ".join(_STORED_LAYERS)
        raise VariableValidationError(f"stored layers are {allowed}, not {', '.join(unknown)}", field="stored")
    return include_context(VariableLayers(**stored, pipeline=pipeline or {}), run)


def parse_seed(project: str | None = None) -> dict[str, str]:
    """The seed the DAG factory loads a pipeline with, and ``lint`` and ``graph`` too: a run on
    ``PARSE_REF`` of ``project`` (default ``group/project``), no pipeline variables."""
    return seed_variables(ref=PARSE_REF, project=project)


def include_rule_matcher(
    variables: Mapping[str, str],
    project_dir: str | os.PathLike[str] | None = None,
    *,
    log: SourceLog | None = None,
) -> Callable[[Mapping[str, object]], bool]:
    """``include:rules``: a rule matches when its ``if``/``exists`` clauses hold and it is not
    ``when: never``. ``log`` records each ``exists`` search (its result shapes the configuration).

    ``if`` is evaluated on ``variables`` (``seed_variables``: what GitLab knows when it creates the
    pipeline); ``exists`` searches ``project_dir`` (no directory: nothing exists). A malformed
    ``if`` raises ``RuleSyntaxError``, which ``load_config`` locates at the include.
    """
    root = Path(project_dir) if project_dir is not None else None

    def exists(patterns: object) -> bool:
        if root is None or not isinstance(patterns, (list, tuple)):
            return False
        globs = [str(p) for p in patterns]
        found = paths_exist(root, globs)
        if log is not None:
            log.searched_exists(root, globs, found)
        return found

    def matches(rule: Mapping[str, object]) -> bool:
        problem = rule_if_problem(rule, "", "rules")
        if problem is not None:
            raise RuleSyntaxError(problem.message)
        outcome = evaluate_rules([rule], variables, job_when="always", exists=exists)
        return outcome is not None and outcome.when != "never"

    return matches


def paths_exist(root: Path, patterns: Sequence[str]) -> bool:
    """``exists:`` (``rules:exists`` and ``include:rules:exists``): whether any of the glob
    patterns matches a path under ``root``. Patterns are relative to ``root`` (a leading ``/`` is
    dropped, as GitLab reads them from the project root); one with a ``..`` part never matches,
    so no pattern looks outside ``root``."""
    for written in patterns:
        pattern = written.strip().lstrip("/")
        if not pattern or ".." in PurePosixPath(pattern).parts:
            continue
        try:
            if next(iter(root.glob(pattern)), None) is not None:
                return True
        except (ValueError, OSError):  # e.g. a NUL byte, an unreadable folder: no match
            continue
    return False
