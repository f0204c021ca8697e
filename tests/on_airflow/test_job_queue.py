"""GitLab's ``tags:`` choose the worker: the factory sets the task's queue (docs/deployment.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_ci_vars.dag_factory import gitlab_ci_dag

pytestmark = pytest.mark.airflow

PIPELINE = """\
default:
  tags: [linux]
build:
  tags: [worker-2]
  script: [make]
gpu:
  tags: [cuda, big-memory]
  script: [train]
test:
  script: [pytest]
notify:
  tags: []
  script: [echo]
"""


def test_first_tag_is_the_task_queue(tmp_path: Path) -> None:
    from airflow.configuration import conf

    ci = tmp_path / ".gitlab-ci.yml"
    ci.write_text(PIPELINE)
    dag = gitlab_ci_dag(ci, dag_id="tags_to_queues")
    assert dag is not None
    queues = {task.task_id: task.queue for task in dag.tasks if task.task_id in ("build", "gpu", "test", "notify")}
    # `default: tags` reaches `test`; a job's own `tags: []` replaces the default (GitLab's rule).
    default_queue = conf.get("operators", "default_queue")
    assert queues == {"build": "worker-2", "gpu": "cuda", "test": "linux", "notify": default_queue}
