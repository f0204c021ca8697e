"""What GitLab knows when it creates a pipeline: the variables ``include:rules`` see.

Includes are resolved when the configuration is loaded, before any job exists: only predefined
project and pipeline variables and the pipeline variables are known (R:
``lib/gitlab/ci/config/external/context.rb``, ``builder.rb`` ``config_variables``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_ci_vars.pipeline.expressions import evaluate_rules
from airflow_ci_vars.variables.predefined import RunContext, predefined_variables

if TYPE_CHECKING:
    from airflow_ci_vars.pipeline.sources import SourceLog

__all__ = ["include_rule_matcher", "paths_exist", "seed_variables"]

_JOB_ONLY = ("CI_JOB_", "CI_NODE_", "CI_PIPELINE_ID", "CI_BUILDS_DIR", "CI_PROJECT_DIR", "CI_SERVER")


def seed_variables(
    *,
    ref: str,
    ref_type: str = "branch",
    project: str | None = None,
    default_branch: str = "main",
    pipeline: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Predefined project/pipeline variables of a run on ``ref``, then the pipeline variables."""
    run = RunContext(
        job_name="",
        project_path=project or "group/project",
        ref=ref,
        ref_type="tag" if ref_type == "tag" else "branch",
        default_branch=default_branch,
    )
    out = {v.key: v.value for v in predefined_variables(run) if not v.key.startswith(_JOB_ONLY)}
    out.update(pipeline or {})
    return out


def include_rule_matcher(
    variables: Mapping[str, str],
    project_dir: str | os.PathLike[str] | None = None,
    *,
    log: SourceLog | None = None,
) -> Callable[[Mapping[str, object]], bool]:
    """``include:rules``: a rule matches when its ``if``/``exists`` clauses hold and it is not
    ``when: never``. ``log`` records each ``exists`` search (its result shapes the configuration)."""
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
        outcome = evaluate_rules([rule], variables, job_when="always", exists=exists)
        return outcome is not None and outcome.when != "never"

    return matches


def paths_exist(root: Path, patterns: Sequence[str]) -> bool:
    """``exists:``: whether any of the glob patterns matches a path under ``root``."""
    return any(next(iter(root.glob(p.lstrip("/"))), None) is not None for p in patterns if p.strip())
