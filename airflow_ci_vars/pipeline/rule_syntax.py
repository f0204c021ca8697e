"""The load-time checks of every rule, before any rule is evaluated (R:
``lib/gitlab/ci/config/entry/rules/rule.rb``; ``config/entry/include/rules/rule.rb`` for
``include:rules``; ``lib/gitlab/ci/yaml_processor.rb`` ``validate_job_needs!`` for ``rules:needs``).

GitLab refuses a configuration whose ``rules:if`` is not a string or does not parse, whose rule
has a non-boolean ``allow_failure``, a ``start_in`` without ``when: delayed`` (or a bad one), or a
``needs`` naming an undefined job or one of a later stage, when it creates the pipeline. The
loader checks every rule of the jobs and of ``workflow:`` (``rule_problems``,
``rule_needs_problems``), the ``include:rules`` matcher each rule it evaluates
(``rule_if_problem``). Each check is one function (``expressions.rule_condition``,
``expressions.rule_allow_failure``, ``rule_entry``) that the decision calls too: one check, one
wording, for the factory, ``lint``, ``graph``, ``explain`` and ``run``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from airflow_ci_vars.errors import PipelineError, RuleSyntaxError
from airflow_ci_vars.pipeline.expressions import rule_allow_failure, rule_condition
from airflow_ci_vars.pipeline.model import PipelineProblem
from airflow_ci_vars.pipeline.rule_entry import rule_needs, rule_needs_problems, rule_start_in

if TYPE_CHECKING:
    from airflow_ci_vars.pipeline.config import PipelineConfig
    from airflow_ci_vars.pipeline.model import Pipeline

__all__ = ["job_rule_problems", "rule_if_problem", "rule_problems", "rules_needs_problems"]


def rule_if_problem(rule: object, where: str, label: str) -> PipelineProblem | None:
    """The error of one rule's ``if`` (the rule is not a hash, ``if`` not a string, or malformed), or None.

    ``label`` names the rule in the message (``jobs:build:rules:0``), ``where`` locates it.
    """
    if not isinstance(rule, Mapping):
        return PipelineProblem(f"{label} config should be a hash", where)
    try:
        rule_condition(rule)
    except RuleSyntaxError as err:
        return PipelineProblem(f"{label}:if {err}", where)
    return None


def job_rule_problems(job: str, rule: Mapping[str, object]) -> list[tuple[str, str]]:
    """(GitLab's message, the rule's key it concerns) for ``allow_failure``, ``start_in`` and the
    shape of ``needs`` of one rule of ``job``."""
    found: list[tuple[str, str]] = []
    try:
        rule_allow_failure(rule)
    except PipelineError as err:
        found.append((f"jobs:{job}:{err.message}", "allow_failure"))
    try:
        rule_start_in(job, rule)
    except PipelineError as err:
        found.append((err.message, "start_in" if "start_in" in rule else "when"))
    try:
        rule_needs(job, rule)
    except PipelineError as err:
        found.append((err.message, "needs"))
    return found


def rule_problems(config: PipelineConfig) -> list[PipelineProblem]:
    """Every bad rule of the jobs and of ``workflow:`` (``if``; and ``allow_failure``,
    ``start_in``, ``needs`` shapes for a job's rule), one problem per bad key, located."""
    problems: list[PipelineProblem] = []
    sections: list[tuple[str, str, object]] = [
        (name, f"jobs:{name}:rules", job.get("rules")) for name, job in config.jobs.items() if "rules" in job
    ]
    if config.workflow is not None:
        sections.append(("workflow", "workflow:rules", config.workflow.get("rules")))
    for owner, label, rules in sections:
        if not isinstance(rules, list):
            continue  # absent, or refused as a whole by the pipeline model
        for index, rule in enumerate(rules):
            problem = rule_if_problem(rule, "", f"{label}:{index}")
            if problem is not None:
                located = str(config.location(owner, "rules", index, "if"))
                problems.append(PipelineProblem(problem.message, located))
            if owner == "workflow" or not isinstance(rule, Mapping):
                continue
            for message, key in job_rule_problems(owner, rule):
                problems.append(PipelineProblem(message, str(config.location(owner, "rules", index, key))))
    return problems


def rules_needs_problems(config: PipelineConfig, pipeline: Pipeline) -> list[PipelineProblem]:
    """Every ``rules:needs`` naming an undefined job, a job of a later stage or a job twice
    (``rule_entry.rule_needs_problems``), located at the rule's ``needs``."""
    stage_of = {job.name: job.stage_index for job in pipeline.jobs}
    problems: list[PipelineProblem] = []
    seen: set[str] = set()
    for job in pipeline.jobs:
        if job.base_name in seen or not job.spec.rules:
            continue
        seen.add(job.base_name)
        for index, message in rule_needs_problems(job.base_name, job.stage_index, job.spec.rules, stage_of):
            located = str(config.location(job.base_name, "rules", index, "needs"))
            problems.append(PipelineProblem(message, located))
    return problems
