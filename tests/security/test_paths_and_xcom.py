"""Misuse: paths that leave the workspace, secrets handed on in clear, colliding Asset names, `run` errors.

Attacks replayed (issue 11):

* a dotenv report path outside the workspace (``/etc/os-release``, ``../x.env``, a symlink to
  ``/etc/os-release``, a file under a symlinked folder) was read and handed on;
* ``artifacts:paths`` followed a symlink and stored its target's bytes (``/etc/shadow``, any
  file the worker can read); a FIFO could hang the upload;
* a masked value used as a dotenv *key* (not only a value) reached XCom and Asset events; a
  manual job's environment name built from one reached XCom;
* ``a`` + ``b/build`` and ``a/b`` + ``build`` shared one dotenv Asset, so a job of one project
  read another's report;
* ``airflow-ci-vars run`` printed a masked value in its errors (an include path, an exception of
  the job's task).

Unit checks first, then one real local run (``airflow-ci-vars run``, i.e. the real operator under
``dag.test()``, in a private ``AIRFLOW_HOME``) replaying the job-side attacks; its metadata
database and artifact store are then searched for what must not be there.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_ci_vars.artifacts import select_artifacts
from airflow_ci_vars.clear_text import check_clear
from airflow_ci_vars.dotenv import parse_dotenv, read_dotenv_file
from airflow_ci_vars.errors import ArtifactPathError, DotenvError, SecretInClearTextError
from airflow_ci_vars.jobs import Artifacts
from airflow_ci_vars.masking import Masker
from airflow_ci_vars.pipeline.cross import dotenv_asset_name

SECRET = "TOKsekr3t9911xyz"  # a valid dotenv key too: the attack of a masked value used as a key
OUTSIDE_CONTENT = "outside-the-workspace-4242\n"
CLI = Path(sys.executable).parent / "airflow-ci-vars"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file outside the workspace with known content."""
    path = tmp_path / "outside" / "private.txt"
    path.parent.mkdir()
    path.write_text(OUTSIDE_CONTENT)
    return path


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    return path


# -- dotenv report paths ------------------------------------------------------------------------


@pytest.mark.parametrize("report", ["/etc/os-release", "../x.env", "sub/../../x.env"])
def test_a_dotenv_report_outside_the_workspace_is_refused(workspace: Path, report: str) -> None:
    (workspace.parent / "x.env").write_text("X=1\n")
    with pytest.raises(ArtifactPathError) as caught:
        read_dotenv_file(report, root=workspace)
    assert str(caught.value) == f"artifact path is not a subpath of project directory: {report}"


def test_a_symlinked_dotenv_report_is_refused_not_followed(workspace: Path, outside: Path) -> None:
    (workspace / "build.env").symlink_to("/etc/os-release")
    (workspace / "mine.env").symlink_to(outside)
    for name in ("build.env", "mine.env"):
        with pytest.raises(ArtifactPathError, match=f'^the "{re.escape(name)}" is not a regular file$'):
            read_dotenv_file(name, root=workspace)


def test_a_dotenv_report_under_a_symlinked_folder_is_refused(workspace: Path, outside: Path) -> None:
    (outside.parent / "os.env").write_text("X=1\n")
    (workspace / "out").symlink_to(outside.parent)
    with pytest.raises(ArtifactPathError, match=r"is not a subpath of project directory: out/os\.env$"):
        read_dotenv_file("out/os.env", root=workspace)


def test_a_fifo_as_dotenv_report_is_refused_without_blocking(workspace: Path) -> None:
    os.mkfifo(workspace / "pipe.env")  # no writer: reading it would block forever
    with pytest.raises(ArtifactPathError, match=r'^the "pipe\.env" is not a regular file$'):
        read_dotenv_file("pipe.env", root=workspace)


def test_legitimate_report_paths_still_work(workspace: Path) -> None:
    (workspace / "sub").mkdir()
    (workspace / "sub" / "b.env").write_text("B=2\n")
    (workspace / "a.env").write_text("A=1\n")
    assert read_dotenv_file("a.env", root=workspace) == {"A": "1"}
    assert read_dotenv_file("sub/../sub/b.env", root=workspace) == {"B": "2"}
    assert read_dotenv_file(str(workspace / "a.env"), root=workspace) == {"A": "1"}  # $CI_PROJECT_DIR/a.env


# -- artifacts:paths ------------------------------------------------------------------------------


def test_an_artifact_symlink_is_kept_as_a_link_never_as_its_target(workspace: Path, outside: Path) -> None:
    (workspace / "leak").symlink_to(outside)
    (workspace / "shadow").symlink_to("/etc/shadow")
    (workspace / "dir").symlink_to(outside.parent)
    got = select_artifacts(workspace, Artifacts(paths=("leak", "shadow", "dir", "dir/")))
    assert got.files == ()
    assert dict(got.links) == {"leak": str(outside), "shadow": "/etc/shadow", "dir": str(outside.parent)}


def test_files_under_a_symlinked_folder_outside_are_refused(workspace: Path, outside: Path) -> None:
    (workspace / "dir").symlink_to(outside.parent)
    got = select_artifacts(workspace, Artifacts(paths=("dir/*", "dir/private.txt", "**/private.txt")))
    assert got.files == () and got.links == ()
    assert got.warnings[:2] == (
        "WARNING: processPath: artifact path is not a subpath of project directory: dir/*",
        "WARNING: processPath: artifact path is not a subpath of project directory: dir/private.txt",
    )


def test_untracked_and_globs_keep_symlinks_as_links(workspace: Path, outside: Path) -> None:
    before = select_artifacts(workspace, Artifacts(untracked=True)).files
    (workspace / "d").mkdir()
    (workspace / "d" / "leak").symlink_to(outside)
    (workspace / "d" / "sub").symlink_to(outside.parent)
    for artifacts in (Artifacts(untracked=True), Artifacts(paths=("d",)), Artifacts(paths=("**/*",))):
        got = select_artifacts(workspace, artifacts, tracked=frozenset(before))
        assert got.files == ()
        assert dict(got.links) == {"d/leak": str(outside), "d/sub": str(outside.parent)}


def test_a_fifo_in_artifacts_is_ignored_with_gitlab_runners_warning(workspace: Path) -> None:
    os.mkfifo(workspace / "pipe")
    (workspace / "real.txt").write_text("x")
    got = select_artifacts(workspace, Artifacts(paths=("pipe", "real.txt")))
    assert got.files == ("real.txt",)
    assert got.warnings == ("WARNING: File ignored: pipe",)


def test_an_absolute_artifact_path_inside_the_workspace_is_kept(workspace: Path) -> None:
    (workspace / "dist").mkdir()
    (workspace / "dist" / "app.whl").write_text("wheel")
    got = select_artifacts(workspace, Artifacts(paths=(f"{workspace}/dist/",)))
    assert got.files == ("dist/app.whl",) and got.warnings == ()


# -- secrets in clear text --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f"{SECRET}=1\n",  # the key is the secret
        f"OK=1\nX_{SECRET}_Y=1\n",  # the key holds it
        f"OK=1\nV={SECRET}\n",  # the value holds it
        f"OK=1\nV={base64.b64encode(SECRET.encode()).decode()}\n",  # an encoded form
    ],
)
def test_a_dotenv_line_holding_a_masked_value_names_the_line_only(text: str) -> None:
    with pytest.raises(DotenvError) as caught:
        parse_dotenv(text, masker=Masker([SECRET]))
    line = text.count("\n")
    assert caught.value.line == line
    message = str(caught.value.with_file("leak.env"))
    assert message.startswith(f"leak.env:{line}: holds a masked value")
    assert SECRET not in message and "X_" not in message and "OK" not in message


def test_every_clear_text_write_is_checked_keys_and_nesting_included() -> None:
    masker = Masker([SECRET])
    for value in ({SECRET: "1"}, {"a": [{"b": f"x{SECRET}"}]}, (1, {SECRET}), {"n": int("12345678901")}):
        masker_for = Masker([SECRET, "12345678901"])
        with pytest.raises(SecretInClearTextError) as caught:
            check_clear(value, masker_for, where="jobs:j:artifacts location", written_to="XCom")
        assert SECRET not in str(caught.value)
        assert str(caught.value).startswith("jobs:j:artifacts location: holds a masked value; XCom is stored")
    check_clear({"ref": "main", "dotenv": {"A": "1"}, "n": 3, "b": None}, masker, where="w", written_to="XCom")


# -- Asset names ------------------------------------------------------------------------------------


def test_a_job_name_with_a_slash_no_longer_collides_with_a_subproject() -> None:
    assert dotenv_asset_name("a", "b/build") != dotenv_asset_name("a/b", "build")
    assert dotenv_asset_name("a/b", "build") == "gitlab-ci/a/b/build"  # unchanged for plain job names
    assert dotenv_asset_name("acme/app", "build: [linux]") == "gitlab-ci/acme/app/build: [linux]"


_segment = st.text(st.sampled_from("ab/%2F5"), min_size=1, max_size=6)


@given(_segment, _segment, _segment, _segment)
def test_asset_names_are_injective(project1: str, job1: str, project2: str, job2: str) -> None:
    same_name = dotenv_asset_name(project1, job1) == dotenv_asset_name(project2, job2)
    assert same_name == ((project1.strip("/"), job1) == (project2.strip("/"), job2))


# -- one real local run ------------------------------------------------------------------------------

SETTINGS = f"""
project: acme/attacks
default_branch: main
projects:
  acme/attacks:
    variables:
      - {{key: TOKEN, value: "{SECRET}", masked: true, hidden: true}}
"""

PIPELINE = """
stages: [build, test]
dotenv_etc:
  script: [echo hi]
  artifacts: {reports: {dotenv: /etc/os-release}}
dotenv_dotdot:
  script: ["echo X=1 > ../x.env"]
  artifacts: {reports: {dotenv: ../x.env}}
dotenv_symlink:
  script: ["ln -s /etc/os-release build.env"]
  artifacts: {reports: {dotenv: build.env}}
dotenv_symlinked_folder:
  script: ["ln -s /etc out"]
  artifacts: {reports: {dotenv: out/os-release}}
dotenv_masked_key:
  script: ['echo "OK=1" > leak.env', 'echo "$TOKEN=1" >> leak.env']
  artifacts: {reports: {dotenv: leak.env}}
dotenv_masked_key_part:
  script: ['echo "X_${TOKEN}=1" > part.env']
  artifacts: {reports: {dotenv: part.env}}
manual_env:
  when: manual
  environment: {name: "review/$TOKEN"}
  script: [echo never]
cross_leak:
  needs: [{project: "acme/$TOKEN", job: x, ref: main}]
  script: [echo never]
artifacts_links:
  script:
    - ln -s "$OUTSIDE_FILE" outside-link
    - ln -s /etc/shadow shadow-link
    - ln -s "$(dirname "$OUTSIDE_FILE")" outside-dir
    - mkfifo pipe
    - echo inside > inside.txt
    - ln -s inside.txt inside-link
  artifacts:
    paths: [outside-link, shadow-link, outside-dir, "outside-dir/*", pipe, inside.txt, inside-link]
legit:
  script:
    - echo "OK_VALUE=fine" > ok.env
    - mkdir -p dist && echo wheel > dist/app.whl
  artifacts:
    paths: ["$CI_PROJECT_DIR/dist/"]
    reports: {dotenv: ok.env}
receive:
  stage: test
  needs: [legit, artifacts_links]
  script:
    - echo "OK_VALUE=$OK_VALUE" > "$OUT/receive.txt"
    - cat dist/app.whl inside.txt >> "$OUT/receive.txt"
    - readlink outside-link shadow-link inside-link >> "$OUT/receive.txt"
"""

REFUSED = {
    "dotenv_etc": "dotenv report: artifact path is not a subpath of project directory: /etc/os-release",
    "dotenv_dotdot": "dotenv report: artifact path is not a subpath of project directory: ../x.env",
    "dotenv_symlink": 'dotenv report: the "build.env" is not a regular file',
    "dotenv_symlinked_folder": "dotenv report: artifact path is not a subpath of project directory: out/os-release",
    "dotenv_masked_key": "leak.env:2: holds a masked value; dotenv reports are handed on in clear",
    "dotenv_masked_key_part": "part.env:1: holds a masked value; dotenv reports are handed on in clear",
    "manual_env": "jobs:manual_env:environment: holds a masked value; XCom is stored and shown in clear",
}


@dataclass(frozen=True)
class LocalRun:
    proc: subprocess.CompletedProcess[str]
    home: Path
    out: Path
    outside: Path

    @property
    def statuses(self) -> dict[str, str]:
        records = [json.loads(line) for line in self.proc.stdout.splitlines()]
        return {r["job"]: r["status"] for r in records if "status" in r}

    def xcom(self) -> dict[tuple[str, str], object]:
        with sqlite3.connect(self.home / "airflow.db") as db:
            rows = db.execute("SELECT task_id, key, value FROM xcom").fetchall()
        return {(task, key): json.loads(value) for task, key, value in rows}


def _cli_environment(home: Path) -> dict[str, str]:
    """The test process's environment without its Airflow settings: a private AIRFLOW_HOME.

    Jobs run with isolation ``none``: the worker-side checks under test are the only defence
    there (a job may write ``../x.env``), and the jobs report what they received through
    ``$OUT``, a folder the sandbox would hide. They guard sandboxed jobs alike (a symlink to
    ``/etc/os-release`` can be made inside the sandbox too).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    return env | {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CI_VARS__ISOLATION": "none",
    }


def _attack_run(base: Path, pipeline: str, *args: str) -> LocalRun:
    """``run`` of ``pipeline`` in a project under ``base``, with the settings holding ``SECRET``, a
    private file outside the project and ``$OUT`` for what jobs report."""
    project, home, out = base / "project", base / "home", base / "out"
    for folder in (project, home, out):
        folder.mkdir()
    outside = base / "private" / "private.txt"
    outside.parent.mkdir()
    outside.write_text(OUTSIDE_CONTENT)
    (project / ".gitlab-ci.yml").write_text(pipeline)
    (project / "settings.yml").write_text(SETTINGS)
    proc = subprocess.run(
        [
            *(str(CLI), "run", str(project / ".gitlab-ci.yml"), "--settings", str(project / "settings.yml")),
            *("--variable", f"OUT={out}", "--variable", f"OUTSIDE_FILE={outside}", "--output", "jsonl", *args),
        ],
        capture_output=True,
        text=True,
        env=_cli_environment(home),
        timeout=600,
        check=False,
    )
    return LocalRun(proc, home, out, outside)


@pytest.fixture(scope="module")
def attacks(tmp_path_factory: pytest.TempPathFactory) -> LocalRun:
    """Through Airflow's engine: what a deployment keeps (XCom, the metadata DB, the artifact store)."""
    return _attack_run(tmp_path_factory.mktemp("attacks"), textwrap.dedent(PIPELINE), "--engine", "airflow")


def test_every_attack_fails_its_job_with_gitlabs_wording(attacks: LocalRun) -> None:
    statuses = attacks.statuses
    assert {job: statuses.get(job) for job in REFUSED} == dict.fromkeys(REFUSED, "failed"), attacks.proc.stderr[-4000:]
    for job, message in REFUSED.items():
        shown = [line for line in attacks.proc.stderr.splitlines() if message in line]
        assert shown, f"{job}: {message!r} not in the run's output"
        assert all("[MASKED]" not in line for line in shown)  # the error never held the key or value


def test_nothing_of_a_refused_job_reaches_xcom(attacks: LocalRun) -> None:
    pushed = attacks.xcom()
    for job in REFUSED:
        assert (job, "dotenv") not in pushed
        assert (job, "ci_manual_request") not in pushed
    assert pushed[("legit", "dotenv")] == {"OK_VALUE": "fine"}


def test_the_secret_is_nowhere_in_the_metadata_database_or_the_artifact_store(attacks: LocalRun) -> None:
    forms = [SECRET.encode(), base64.b64encode(SECRET.encode()).rstrip(b"=")]
    stored = [attacks.home / "airflow.db", *(p for p in (attacks.home / "ci-artifacts").rglob("*") if p.is_file())]
    for path in stored:
        data = path.read_bytes()
        assert not [form for form in forms if form in data], path


def test_artifact_symlinks_are_stored_as_links_never_as_their_targets(attacks: LocalRun) -> None:
    assert attacks.statuses["artifacts_links"] == "success"
    (location,) = (attacks.home / "ci-artifacts").rglob("artifacts_links")
    manifest = json.loads((location / "manifest.json").read_text())
    assert manifest["files"] == ["inside.txt"]
    assert manifest["links"] == {
        "inside-link": "inside.txt",
        "outside-dir": str(attacks.outside.parent),
        "outside-link": str(attacks.outside),
        "shadow-link": "/etc/shadow",
    }
    secret_bytes = [OUTSIDE_CONTENT.encode()]
    if os.access("/etc/shadow", os.R_OK):
        secret_bytes.append(Path("/etc/shadow").read_bytes())
    for path in (p for p in location.rglob("*") if p.is_file()):
        assert path.read_bytes() not in secret_bytes, path
    assert "WARNING: File ignored: pipe" in attacks.proc.stderr
    assert "processPath: artifact path is not a subpath of project directory: outside-dir/*" in attacks.proc.stderr


def test_what_a_user_may_do_still_works(attacks: LocalRun) -> None:
    assert attacks.statuses["legit"] == "success" and attacks.statuses["receive"] == "success"
    received = (attacks.out / "receive.txt").read_text().splitlines()
    assert received == ["OK_VALUE=fine", "wheel", "inside", str(attacks.outside), "/etc/shadow", "inside.txt"]


def test_run_masks_its_own_errors(attacks: LocalRun, tmp_path: Path) -> None:
    assert attacks.proc.returncode == 1
    assert SECRET not in attacks.proc.stdout + attacks.proc.stderr
    assert "Authentication by CI/CD job token not allowed from acme/attacks to acme/[MASKED]" in attacks.proc.stderr
    # An error found before Airflow starts: an include built from a masked variable.
    pipeline = tmp_path / ".gitlab-ci.yml"
    pipeline.write_text('include: [{local: "/conf/$TOKEN.yml"}]\nbuild: {script: [echo hi]}\n')
    (tmp_path / "settings.yml").write_text(SETTINGS)
    proc = subprocess.run(
        [str(CLI), "run", str(pipeline), "--settings", str(tmp_path / "settings.yml")],
        capture_output=True,
        text=True,
        env=_cli_environment(attacks.home),
        timeout=600,
        check=False,
    )
    assert proc.returncode == 1
    assert f"{pipeline}:1:" in proc.stderr and "Local file `conf/[MASKED].yml` does not exist!" in proc.stderr
    assert SECRET not in proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def direct_attacks(tmp_path_factory: pytest.TempPathFactory) -> LocalRun:
    """The same attacks through ``run``'s direct engine (its default), which shares the job's
    checks with the operator (``operators.job_execution``). Without ``cross_leak``: a
    ``needs:project`` pipeline goes to Airflow's engine."""
    pipeline = textwrap.dedent(PIPELINE).replace(
        'cross_leak:\n  needs: [{project: "acme/$TOKEN", job: x, ref: main}]\n  script: [echo never]\n', ""
    )
    assert "cross_leak" not in pipeline
    run = _attack_run(tmp_path_factory.mktemp("direct-attacks"), pipeline)
    assert "running it on Airflow" not in run.proc.stderr
    return run


def test_the_direct_engine_refuses_every_attack_as_the_operator_does(direct_attacks: LocalRun) -> None:
    statuses = direct_attacks.statuses
    assert {job: statuses.get(job) for job in REFUSED} == dict.fromkeys(REFUSED, "failed"), direct_attacks.proc.stderr
    for job, message in REFUSED.items():
        assert [line for line in direct_attacks.proc.stderr.splitlines() if message in line], job
    assert "WARNING: File ignored: pipe" in direct_attacks.proc.stderr
    assert direct_attacks.proc.returncode == 1
    assert SECRET not in direct_attacks.proc.stdout + direct_attacks.proc.stderr
    assert not (direct_attacks.home / "airflow.db").exists()  # nothing of Airflow ran


def test_the_direct_engine_hands_on_only_what_a_user_may(direct_attacks: LocalRun) -> None:
    assert direct_attacks.statuses["legit"] == "success" and direct_attacks.statuses["receive"] == "success"
    received = (direct_attacks.out / "receive.txt").read_text().splitlines()
    # the dotenv value, the files, and the links restored as links (never their targets' content)
    assert received == ["OK_VALUE=fine", "wheel", "inside", str(direct_attacks.outside), "/etc/shadow", "inside.txt"]
