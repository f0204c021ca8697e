"""One job rule's keys as GitLab checks them when it creates the pipeline: one rule each, called
by the loader (every rule, at load) and by the decision (the matching rule, at run time).

Sources (R = gitlabhq): ``lib/gitlab/ci/config/entry/rules/rule.rb`` (``start_in`` only with
``when: delayed``, then present and at most one week; ``allow_failure`` a boolean; ``needs``
through ``Entry::Needs`` with ``allowed_needs: [:job]``), ``lib/gitlab/ci/config/entry/needs.rb``
(a hash or an array), ``lib/gitlab/ci/yaml_processor.rb`` (``validate_job_needs!``: every rule's
``needs`` name a job of the current or an earlier stage, once). Pure: no Airflow import.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence

from airflow_ci_vars.errors import JobConfigError, PipelineError
from airflow_ci_vars.jobs import Need
from airflow_ci_vars.pipeline.entries import needs as needs_entry
from airflow_ci_vars.pipeline.entries.when import MAX_START_IN, start_in_problem
from airflow_ci_vars.variables.predefined import job_group_name

__all__ = [
    "MAX_START_IN",
    "any_rule_needs",
    "needed_instances",
    "rule_label",
    "rule_need_names",
    "rule_needs",
    "rule_needs_problems",
    "rule_start_in",
]


def rule_label(job: str) -> str:
    """GitLab's name of a job's rule in its messages (``jobs:JOB:rules:rule``)."""
    return f"jobs:{job}:rules:rule"


def _refused(job: str, message: str, *keys: str) -> PipelineError:
    return PipelineError(f"{rule_label(job)}{''.join(':' + k for k in keys)} {message}", job=job, key="rules")


def rule_start_in(job: str, rule: Mapping[str, object]) -> int | None:
    """Seconds a rule's ``start_in`` says (None: the rule has none); ``PipelineError`` with
    GitLab's message when the rule has it without ``when: delayed``, lacks it with ``when:
    delayed``, or it is not a duration of one week or less."""
    if rule.get("when") != "delayed":
        if "start_in" in rule:
            raise _refused(job, "config contains disallowed keys: start_in")
        return None
    seconds, problem = start_in_problem(rule.get("start_in"))
    if problem is not None:
        raise _refused(job, problem)
    return seconds


def rule_needs(job: str, rule: Mapping[str, object]) -> tuple[Need, ...] | None:
    """A rule's ``needs`` (None: it has none, or ``needs: []``, which GitLab ignores:
    ``needs_job.present?`` in ``Result#build_attributes``, gitlab-org/gitlab#421004);
    ``PipelineError`` for a need that is not a job need or not a job name."""
    given = rule.get("needs")
    if given is None:
        return None
    if isinstance(given, Mapping):
        given = [given]
    if not isinstance(given, list):
        raise _refused(job, "config can only be a hash or an array", "needs")
    for entry in given:
        if needs_entry.is_cross(entry):
            raise _refused(job, "config uses invalid types: cross_dependency", "needs")
    try:
        needs = tuple(needs_entry.need(job, entry) for entry in given)
    except JobConfigError as err:
        raise PipelineError(f"{rule_label(job)}:{err.message}", job=job, key="rules") from None
    return needs or None


def rule_need_names(rule: Mapping[str, object]) -> tuple[str, ...]:
    """The job names a rule's ``needs`` write, as written (shapes not checked)."""
    given = rule.get("needs")
    if isinstance(given, Mapping):
        given = [given]
    if not isinstance(given, list):
        return ()
    return tuple(str(n.get("job")) if isinstance(n, Mapping) else str(n) for n in given if n is not None)


def any_rule_needs(rules: Sequence[Mapping[str, object]] | None) -> tuple[str, ...]:
    """The jobs any of ``rules`` may need (``rules:needs`` of every rule), in order: the DAG
    waits for them all, the decision picks the matching rule's (docs/pipelines.md, rules:needs)."""
    return tuple(dict.fromkeys(name for rule in rules or () for name in rule_need_names(rule)))


def needed_instances(name: str, known: Collection[str]) -> tuple[str, ...]:
    """The jobs a ``needs`` entry ``name`` means among the job names ``known``: itself, else
    every ``parallel``/``parallel:matrix`` instance of the job called ``name`` (GitLab expands
    a need on a parallel job to all its instances); none when neither exists."""
    if name in known:
        return (name,)
    return tuple(n for n in known if job_group_name(n) == name)


def rule_needs_problems(
    job: str, stage: int, rules: Sequence[Mapping[str, object]], stage_of: Mapping[str, int]
) -> Iterator[tuple[int, str]]:
    """(rule index, GitLab's message) for each ``rules:needs`` problem of ``job`` (of stage index
    ``stage``) that only the whole pipeline shows: an undefined job (not ``optional``), a job of a
    later stage, a job needed twice. ``stage_of``: every job instance's stage index by name."""
    for index, rule in enumerate(rules):
        try:
            needs = rule_needs(job, rule) or ()
        except PipelineError:
            continue  # refused by rule shape checks (rule_syntax.rule_problems)
        for need in {n.job: n for n in needs}.values():  # a name written twice: reported once, below
            found = needed_instances(need.job, stage_of)
            if not found:
                if not need.optional:
                    yield index, needs_entry.undefined_need(job, need.job)
            elif any(stage_of[n] > stage for n in found):
                yield index, needs_entry.later_stage_need(job, need.job)
        names = [n.job for n in needs]
        twice = list(dict.fromkeys(n for n in names if names.count(n) > 1))
        if twice:
            yield index, needs_entry.duplicated_needs(job, ", ".join(twice))
