"""A pipeline as real projects write it runs as GitLab runs it (issue 12): ``dag.test()``."""

from __future__ import annotations

from pathlib import Path

import pytest
from dag_files import load_dag_file

pytestmark = pytest.mark.airflow


def test_booleans_floats_type_and_a_need_on_one_matrix_instance_run_like_gitlab(tmp_path: Path) -> None:
    dag = load_dag_file("ci_corpus.py", "ci_corpus_under_test").corpus
    tasks = {t.task_display_name: t for t in dag.tasks}
    x86 = tasks["build-win: [x86_64-w64-mingw32]"]
    # `type: test` + a need on one instance: package waits for that instance only.
    assert set(tasks["package"].upstream_task_ids) == {x86.task_id}

    dr = dag.test(run_conf={"variables": {"OUT": str(tmp_path)}})
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dr.get_task_instances()}
    assert str(getattr(dr.state, "value", dr.state)) == "success", states
    # `STRIP: off` is Psych's false; GitLab's SimpleVariable keeps its to_s.
    assert sorted((tmp_path / "build.txt").read_text().splitlines()) == [
        "i686-w64-mingw32 false",
        "x86_64-w64-mingw32 false",
    ]
    # top-level true/1.5/1.0e+20, rules:variables yes/2.0, and only the needed instance's dotenv
    assert (tmp_path / "package.txt").read_text().split() == [
        "true",
        "1.5",
        "1.0e+20",
        "true",
        "2.0",
        "x86_64-w64-mingw32",
    ]
