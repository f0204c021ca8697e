"""The deployment's include sources as the CLI and the factory read them: ``[ci_vars] include_*``,
the settings file's projects with ``git:``, and ``lint --offline``."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from test_include_kinds import repository

from airflow_ci_vars.cli import main
from airflow_ci_vars.errors import SettingsError
from airflow_ci_vars.include_settings import include_sources
from airflow_ci_vars.settings import parse_settings
from airflow_ci_vars.stores.base import LayerRef
from airflow_ci_vars.stores.file import FileStore
from airflow_ci_vars.variables.model import Variable


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A templates project mapped in ``[ci_vars] include_projects``, its cache under tmp_path."""
    repo = repository(tmp_path, "ci", {"build.yml": "build:\n  script: [make]\n"}, tags=("v1",))
    projects = {"acme/ci": {"git": f"file://{repo}"}}
    monkeypatch.setenv("AIRFLOW__CI_VARS__INCLUDE_PROJECTS", json.dumps(projects))
    monkeypatch.setenv("AIRFLOW__CI_VARS__INCLUDE_CACHE_DIR", str(tmp_path / "include-cache"))
    monkeypatch.setenv("AIRFLOW__CI_VARS__INCLUDE_GIT_REFRESH", "0")
    path = tmp_path / "app" / ".gitlab-ci.yml"
    path.parent.mkdir()
    path.write_text("include:\n  - project: acme/ci\n    ref: v1\n    file: build.yml\nown:\n  script: [x]\n")
    return path


def test_lint_reads_the_configured_projects_and_offline_names_what_it_did_not_check(
    configured: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "lint", "--offline", str(configured))
    assert code == 0
    assert out == f"{configured}: valid (1 job in 1 stage; 1 include not checked offline)\n"
    assert err.startswith(
        f"{configured}:2:5: warning: not checked offline: include:project acme/ci file build.yml ref v1 ("
    )
    assert err.count("\n") == 1
    assert run(capsys, "lint", str(configured))[:2] == (0, f"{configured}: valid (2 jobs in 1 stage)\n")
    # Once cached, offline checks it too.
    assert run(capsys, "lint", "--offline", str(configured)) == (0, f"{configured}: valid (2 jobs in 1 stage)\n", "")
    code, out, _ = run(capsys, "graph", str(configured))
    assert "  build  (from acme/ci@v1:build.yml)" in out.splitlines()


def test_settings_file_projects_with_git_are_include_sources(tmp_path: Path) -> None:
    repo = repository(tmp_path, "ci", {"build.yml": "build:\n  script: [make]\n"})
    settings = tmp_path / "settings.yml"
    settings.write_text(
        textwrap.dedent(
            f"""\
            project: acme/app
            projects:
              acme/ci:
                git: file://{repo}
                git_conn_id: git_acme
                included_by: ["acme/*"]
                default_branch: main
                variables: [{{key: K, value: v}}]
            """
        )
    )
    found = include_sources(settings_file=settings, options={"include_cache_dir": str(tmp_path / "c")})
    project = found.project("ACME/CI")
    assert project is not None
    assert (project.url, project.conn_id, project.included_by, project.default_branch) == (
        f"file://{repo}",
        "git_acme",
        ("acme/*",),
        "main",
    )
    # A write through the file store keeps the git fields (the file is re-emitted).
    FileStore(settings).set_variable(LayerRef.parse("project:acme/ci"), Variable("K2", "v2"))
    again = include_sources(settings_file=settings, options={"include_cache_dir": str(tmp_path / "c")})
    assert again.project("acme/ci") == project


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{git: ''}", "git must be a URL or an absolute path"),
        ("{git: 'https://bot:token@git.example.com/x.git'}", "must not carry credentials in its URL"),
        ("{git: /srv/x.git, included_by: [1]}", "included_by must be a list of project paths"),
        ("{git_conn_id: c}", "git is missing"),
    ],
)
def test_bad_git_projects_in_the_settings_file_are_located(entry: str, message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        parse_settings(f"projects:\n  acme/ci: {entry}\n", file="settings.yml")
    assert message in str(raised.value)
    assert raised.value.line == 2
    assert "token" not in str(raised.value)


def test_bad_include_options_name_the_option(tmp_path: Path) -> None:
    for options, named in [
        ({"include_projects": "{not json"}, "[ci_vars] include_projects is not JSON"),
        ({"include_projects": '{"acme": "x"}'}, "not a project path"),
        ({"include_git_refresh": "soon"}, "[ci_vars] include_git_refresh must be a number of seconds"),
        ({"include_server_fqdn": "https://x/"}, "[ci_vars] include_server_fqdn must be a host name"),
        ({"include_remote_auth": "[1]"}, "[ci_vars] include_remote_auth must map URL prefixes"),
    ]:
        with pytest.raises(SettingsError) as raised:
            include_sources(options={"include_cache_dir": str(tmp_path), **options})
        assert named in str(raised.value), options
