"""One rule's keys checked once (``pipeline.rule_entry``): the loader refuses at load what the
decision would otherwise fail at run time, with the same message; the checks stay bounded."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from airflow_ci_vars.pipeline.decision import PipelineRun, decide
from airflow_ci_vars.pipeline.loader import check_pipeline
from airflow_ci_vars.pipeline.model import PipelineInvalidError

RUN = PipelineRun(project="g/p", ref="main", default_branch="main", ref_protected=False)


def loaded_errors(tmp_path: Path, text: str) -> list[str]:
    ci = tmp_path / ".gitlab-ci.yml"
    ci.write_text(text)
    return [p.message for p in check_pipeline(ci).errors]


def test_the_decision_and_the_loader_give_one_message(tmp_path: Path) -> None:
    text = "j:\n  script: [x]\n  rules:\n    - when: delayed\n      start_in: 2 weeks\n"
    assert loaded_errors(tmp_path, text) == ["jobs:j:rules:rule start in should not exceed the limit"]
    ci = tmp_path / "valid.yml"
    ci.write_text("j:\n  script: [x]\n  rules:\n    - when: delayed\n      start_in: 1 day\n")
    job = check_pipeline(ci).unwrap().job("j").spec
    run = RUN
    assert decide(job, run, stored={}).start_in == 86400
    # The same rule, bypassing the loader, fails the job with the loader's message.
    bad = dataclasses.replace(job, rules=({"when": "delayed", "start_in": "2 weeks"},))
    decision = decide(bad, run, stored={})
    assert (decision.action, decision.reason) == ("fail", "jobs:j:rules:rule start in should not exceed the limit")


def test_a_rule_without_when_keeps_the_jobs_delay(tmp_path: Path) -> None:
    ci = tmp_path / ".gitlab-ci.yml"
    ci.write_text("j:\n  script: [x]\n  when: delayed\n  start_in: 1 hour\n  rules:\n    - if: $X == null\n")
    job = check_pipeline(ci).unwrap().job("j").spec
    run = RUN
    assert decide(job, run, stored={}).start_in == 3600


def test_a_long_rules_needs_chain_is_checked_in_bounded_time(tmp_path: Path) -> None:
    count = 600
    jobs = "".join(
        f"j{i}:\n  script: [x]\n  rules:\n    - needs: [j{i - 1}]\n" if i else "j0:\n  script: [x]\n"
        for i in range(count)
    )
    ci = tmp_path / ".gitlab-ci.yml"
    ci.write_text(jobs)
    started = time.monotonic()
    assert len(check_pipeline(ci).unwrap().jobs) == count
    ci.write_text(jobs.replace("j0:\n  script: [x]\n", f"j0:\n  script: [x]\n  rules:\n    - needs: [j{count - 1}]\n"))
    with pytest.raises(PipelineInvalidError) as raised:
        check_pipeline(ci).unwrap()
    message = str(raised.value)
    assert f"The pipeline has circular dependencies: j0, j{count - 1}, j{count - 2}, " in message
    assert message.endswith(f"and {count - 20} more") and len(message) < 400
    assert time.monotonic() - started < 10
