"""The syntax check of a rule's ``if`` (R: ``lib/gitlab/ci/config/entry/rules/rule.rb``,
``validates :if, expression: true``; ``config/entry/include/rules/rule.rb`` for ``include:rules``).

GitLab refuses a configuration whose ``rules:if`` is not a string or does not parse, before any
rule is evaluated. The loader checks every ``rules:if`` of the jobs and of ``workflow:``
(``rule_if_problems``), the ``include:rules`` matcher each rule it evaluates (``rule_if_problem``):
one check, one wording, for the factory, ``lint``, ``graph``, ``explain`` and ``run``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from airflow_ci_vars.errors import RuleSyntaxError
from airflow_ci_vars.pipeline.expressions import rule_condition
from airflow_ci_vars.pipeline.model import PipelineProblem

if TYPE_CHECKING:
    from airflow_ci_vars.pipeline.config import PipelineConfig

__all__ = ["rule_if_problem", "rule_if_problems"]


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


def rule_if_problems(config: PipelineConfig) -> list[PipelineProblem]:
    """Every malformed ``rules:if`` of the jobs and of ``workflow:``, one problem per bad rule, located."""
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
    return problems
