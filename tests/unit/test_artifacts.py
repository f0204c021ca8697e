"""Artifact selection: paths, exclude, untracked, when (GitLab's artifacts keyword)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_ci_vars.artifacts import (
    expanded_paths,
    manifest,
    manifest_entries,
    relative_paths,
    select_artifacts,
    should_upload,
    snapshot,
)
from airflow_ci_vars.errors import ArtifactPathError
from airflow_ci_vars.jobs import Artifacts


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for rel in ["src/app.py", "dist/a.whl", "dist/sub/b.txt", "dist/sub/c.log", "report.xml"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    return tmp_path


def test_directory_path_takes_everything_under_it(project: Path) -> None:
    got = select_artifacts(project, Artifacts(paths=("dist/",)))
    assert got.files == ("dist/a.whl", "dist/sub/b.txt", "dist/sub/c.log")
    assert got.warnings == ()


def test_globs_and_double_star(project: Path) -> None:
    assert select_artifacts(project, Artifacts(paths=("**/*.txt", "*.xml"))).files == ("dist/sub/b.txt", "report.xml")


def test_exclude_removes_matches(project: Path) -> None:
    got = select_artifacts(project, Artifacts(paths=("dist",), exclude=("dist/**/*.log",)))
    assert got.files == ("dist/a.whl", "dist/sub/b.txt")


def test_missing_path_is_a_warning(project: Path) -> None:
    got = select_artifacts(project, Artifacts(paths=("nothing/", "dist/a.whl")))
    assert got.files == ("dist/a.whl",)
    assert got.warnings and "nothing/: no matching files" in got.warnings[0]


def test_path_outside_the_project_is_refused(project: Path) -> None:
    got = select_artifacts(project, Artifacts(paths=("../etc/passwd", "/etc/passwd")))
    assert got.files == ()
    assert len(got.warnings) == 2


def test_untracked_takes_files_created_after_the_snapshot(project: Path) -> None:
    before = snapshot(project)
    (project / "new.bin").write_text("x")
    assert select_artifacts(project, Artifacts(untracked=True), tracked=before).files == ("new.bin",)


@pytest.mark.parametrize(
    ("when", "succeeded", "upload"),
    [
        ("on_success", True, True),
        ("on_success", False, False),
        ("on_failure", False, True),
        ("on_failure", True, False),
        ("always", True, True),
        ("always", False, True),
    ],
)
def test_when(when: str, succeeded: bool, upload: bool) -> None:
    assert should_upload(Artifacts(when=when), succeeded) is upload  # type: ignore[arg-type]


def test_restored_paths_must_stay_inside_the_project() -> None:
    assert relative_paths(["a/b.txt"]) == ("a/b.txt",)
    with pytest.raises(ValueError, match="not a relative path"):
        relative_paths(["../escape"])
    with pytest.raises(ValueError, match="not a relative path"):
        relative_paths(["/abs"])


def test_paths_and_exclude_are_expanded_with_the_jobs_variables(project: Path) -> None:
    artifacts = Artifacts(paths=("dist/$SUB/", "${REPORT}.xml"), exclude=("dist/**/*.$UNSET${EXT}",), dotenv=("$X",))
    got = expanded_paths(artifacts, {"SUB": "sub", "REPORT": "report", "EXT": "log"})
    assert got == Artifacts(paths=("dist/sub/", "report.xml"), exclude=("dist/**/*.log",), dotenv=("$X",))
    assert select_artifacts(project, got).files == ("dist/sub/b.txt", "report.xml")


def test_a_manifest_gives_back_its_files_and_links() -> None:
    stored = json.loads(json.dumps(manifest(["dist/a.whl", "b.txt"], {"dist/latest": "a.whl"})))
    assert manifest_entries(stored) == (("dist/a.whl", "b.txt"), {"dist/latest": "a.whl"})
    assert manifest_entries({}) == ((), {})


@pytest.mark.parametrize(
    "listed",
    [{"files": ["ok.txt", "../escape"]}, {"files": [], "links": {"/etc/cron.d/x": "payload"}}, {"files": [""]}],
)
def test_a_tampered_manifest_is_refused_naming_the_path(listed: dict[str, object]) -> None:
    with pytest.raises(ArtifactPathError, match="is not a relative path inside the project") as caught:
        manifest_entries(listed)
    assert caught.value.path in {"../escape", "/etc/cron.d/x", ""}
