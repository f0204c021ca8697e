"""include:project, include:component and include:template through the one loader, on real git repositories.

Each test writes a .gitlab-ci.yml next to real repositories (``git`` over file://), configures the
deployment's ``IncludeSources`` and loads the pipeline as the factory and ``lint`` do.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from test_git_include_source import git

from airflow_ci_vars.errors import PipelineError
from airflow_ci_vars.pipeline.cache import ParseCache
from airflow_ci_vars.pipeline.external.remote import RemoteCache
from airflow_ci_vars.pipeline.external.sources import GitProject, IncludeSources
from airflow_ci_vars.pipeline.loader import check_pipeline, load_pipeline, pipeline_warnings
from airflow_ci_vars.pipeline.seed import parse_seed


def repository(root: Path, name: str, files: dict[str, str], *, tags: tuple[str, ...] = ()) -> Path:
    """A git repository with ``files`` committed on main and each of ``tags`` on that commit."""
    repo = root / "repos" / name
    repo.mkdir(parents=True)
    git(repo, "init", "--quiet", "--initial-branch=main")
    commit(repo, files, "first")
    for tag in tags:
        git(repo, "tag", tag)
    return repo


def commit(repo: Path, files: dict[str, str], message: str) -> str:
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(textwrap.dedent(text))
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def pipeline_file(folder: Path, text: str, **others: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in others.items():
        (folder / name).write_text(textwrap.dedent(content))
    path = folder / ".gitlab-ci.yml"
    path.write_text(textwrap.dedent(text))
    return path


def sources(tmp_path: Path, projects: dict[str, Path], **kwargs: object) -> IncludeSources:
    mapped = {name: GitProject(name, f"file://{repo}") for name, repo in projects.items()}
    options: dict[str, object] = {"cache_dir": str(tmp_path / "cache"), "git_refresh": 0.0, **kwargs}
    return IncludeSources(projects=mapped, **options)  # type: ignore[arg-type]


def load_error(path: Path, found: IncludeSources | None, project: str | None = None) -> PipelineError:
    loaded = check_pipeline(path, seed=parse_seed(project), sources=found)
    assert loaded.pipeline is None, "expected the load to fail"
    assert isinstance(loaded.failure, PipelineError), loaded.errors
    return loaded.failure


def scripts(path: Path, found: IncludeSources, project: str | None = None) -> dict[str, list[str]]:
    pipeline = load_pipeline(path, seed=parse_seed(project), sources=found)
    return {job.name: list(job.spec.script) for job in pipeline.jobs}


# --- include:project ------------------------------------------------------------------------------


@pytest.fixture
def templates_repo(tmp_path: Path) -> Path:
    repo = repository(
        tmp_path,
        "ci-templates",
        {
            "build.yml": """\
                include: common.yml
                .build:
                  script: [make build]
                """,
            "common.yml": ".common:\n  variables: {FROM: templates-v1}\n",
            "test.yml": "unit:\n  script: [make test]\n",
        },
        tags=("v1.0.0",),
    )
    commit(repo, {"common.yml": ".common:\n  variables: {FROM: templates-main}\n"}, "second")
    return repo


def test_project_include_reads_the_file_at_the_ref_and_its_local_includes_in_that_project(
    tmp_path: Path, templates_repo: Path
) -> None:
    # The including project has a common.yml of its own: the included file's local include must
    # not read it (GitLab: local resolves in the included project at the resolved commit).
    path = pipeline_file(
        tmp_path / "app",
        """\
        include:
          - project: acme/ci-templates
            ref: v1.0.0
            file: [/build.yml, test.yml]
        build:
          extends: [.build, .common]
          script: [make build, echo $FROM]
        """,
        **{"common.yml": ".common:\n  variables: {FROM: the-including-project}\n"},
    )
    found = sources(tmp_path, {"acme/ci-templates": templates_repo})
    pipeline = load_pipeline(path, seed=parse_seed("acme/app"), sources=found)
    build = next(job for job in pipeline.jobs if job.name == "build")
    assert [v.value for v in build.spec.variables if v.key == "FROM"] == ["templates-v1"]
    assert sorted(job.name for job in pipeline.jobs) == ["build", "unit"]


def test_project_include_without_ref_reads_the_default_branch(tmp_path: Path, templates_repo: Path) -> None:
    path = pipeline_file(
        tmp_path / "app",
        """\
        include: {project: acme/ci-templates, file: build.yml}
        build: {extends: .common, script: [echo $FROM]}
        """,
    )
    pipeline = load_pipeline(path, sources=sources(tmp_path, {"acme/ci-templates": templates_repo}))
    assert [v.value for v in pipeline.jobs[0].spec.variables if v.key == "FROM"] == ["templates-main"]


def test_project_errors_are_gitlabs_and_located_at_the_include(tmp_path: Path, templates_repo: Path) -> None:
    found = sources(tmp_path, {"acme/ci-templates": templates_repo})
    cases = {
        "{project: acme/other, file: a.yml}": "Project `acme/other` not found or access denied!",
        "{project: acme/ci-templates, ref: nope, file: a.yml}": (
            "Project `acme/ci-templates` reference `nope` does not exist!"
        ),
        "{project: acme/ci-templates, file: missing.yml}": (
            "Project `acme/ci-templates` file `missing.yml` does not exist!"
        ),
        "{project: acme/ci-templates, file: ../etc/passwd.yml}": "file `../etc/passwd.yml` does not exist!",
        "{project: acme/ci-templates, file: build.txt}": "Included file `build.txt` does not have YAML extension!",
    }
    for include, message in cases.items():
        path = pipeline_file(tmp_path / "app", f"j: {{script: [x]}}\ninclude: {include}\n")
        err = load_error(path, found)
        assert message in err.message, include
        assert (err.file, err.line, err.column) == (str(path), 2, 10), include


def test_included_by_restricts_who_may_include_a_project(tmp_path: Path, templates_repo: Path) -> None:
    url = f"file://{templates_repo}"
    found = IncludeSources(
        projects={"acme/ci-templates": GitProject("acme/ci-templates", url, included_by=("acme/data/*",))},
        cache_dir=str(tmp_path / "cache"),
    )
    path = pipeline_file(tmp_path / "app", "include: {project: acme/ci-templates, file: test.yml}\n")
    assert "not found or access denied" in load_error(path, found, project="evil/app").message
    assert [job.name for job in load_pipeline(path, seed=parse_seed("acme/data/etl"), sources=found).jobs] == ["unit"]


def test_an_include_cycle_across_projects_is_refused_naming_the_cycle(tmp_path: Path) -> None:
    a = repository(tmp_path, "a", {"a.yml": "include: {project: acme/b, file: b.yml}\nj: {script: [x]}\n"})
    b = repository(tmp_path, "b", {"b.yml": "include: {project: acme/a, file: a.yml}\n"})
    path = pipeline_file(tmp_path / "app", "include: {project: acme/a, file: a.yml}\n")
    err = load_error(path, sources(tmp_path, {"acme/a": a, "acme/b": b}))
    assert err.message.startswith("`b.yml`: ") or "include cycle" in err.message
    assert "acme/a@main:a.yml -> acme/b@main:b.yml -> acme/a@main:a.yml" in err.message


def test_include_rules_and_inputs_work_on_project_includes(tmp_path: Path) -> None:
    repo = repository(
        tmp_path,
        "jobs",
        {
            "deploy.yml": """\
                spec:
                  inputs:
                    env: {options: [staging, production]}
                ---
                deploy-$[[ inputs.env ]]:
                  script:
                    - deploy $[[ inputs.env ]]
                """
        },
    )
    path = pipeline_file(
        tmp_path / "app",
        """\
        include:
          - project: acme/jobs
            file: deploy.yml
            inputs: {env: staging}
          - project: acme/jobs
            file: deploy.yml
            inputs: {env: production}
            rules: [{if: $CI_PROJECT_PATH == "acme/app"}]
        """,
    )
    found = sources(tmp_path, {"acme/jobs": repo})
    assert scripts(path, found, "acme/app") == {
        "deploy-staging": ["deploy staging"],
        "deploy-production": ["deploy production"],
    }
    assert scripts(path, found, "acme/other") == {"deploy-staging": ["deploy staging"]}
    path.write_text(path.read_text().replace("env: staging", "env: qa"))
    err = load_error(path, found, "acme/app")
    assert "`deploy.yml`: `env` input: `qa` cannot be used because it is not in the list of allowed options" in (
        err.message
    )


# --- include:component -----------------------------------------------------------------------------


@pytest.fixture
def component_repo(tmp_path: Path) -> Path:
    template = """\
        spec:
          component: [name, version, sha, reference]
          inputs:
            stage: {default: test}
            image: {}
        ---
        $[[ component.name ]]-job:
          stage: $[[ inputs.stage ]]
          script:
            - echo $[[ inputs.image ]] $[[ component.version ]] $[[ component.reference ]]
          variables:
            SHA: $[[ component.sha ]]
        """
    repo = repository(tmp_path, "components", {"templates/lint.yml": template, "templates/scan/template.yml": template})
    git(repo, "tag", "1.0.0")
    commit(repo, {"templates/lint.yml": template.replace("echo", "echo v1.1")}, "1.1")
    git(repo, "tag", "1.1.0")
    commit(repo, {"templates/lint.yml": template.replace("echo", "echo v2")}, "2.0")
    git(repo, "tag", "2.0.0")
    git(repo, "tag", "2.1.0-rc1")
    return repo


@pytest.mark.parametrize(
    ("version", "shown", "script"),
    [
        ("1.0.0", "1.0.0", "echo alpine 1.0.0 1.0.0"),
        ("1", "1.1.0", "echo v1.1 alpine 1.1.0 1"),
        ("~latest", "2.0.0", "echo v2 alpine 2.0.0 ~latest"),
        ("main", "", "echo v2 alpine  main"),
    ],
)
def test_component_versions_inputs_and_component_context(
    tmp_path: Path, component_repo: Path, version: str, shown: str, script: str
) -> None:
    path = pipeline_file(
        tmp_path / "app",
        f"""\
        stages: [test, check]
        include:
          - component: $CI_SERVER_FQDN/acme/components/lint@{version}
            inputs: {{image: alpine}}
        """,
    )
    found = sources(tmp_path, {"acme/components": component_repo}, server_fqdn="gitlab.example.com")
    pipeline = load_pipeline(path, sources=found)
    (job,) = pipeline.jobs
    assert (job.name, list(job.spec.script)) == ("lint-job", [script])
    sha = git(component_repo, "rev-parse", f"{shown or version}^{{commit}}").strip()
    assert [v.value for v in job.spec.variables if v.key == "SHA"] == [sha]
    assert job.where.startswith(f"acme/components@{version}:templates/lint.yml:")


def test_component_in_a_folder_and_its_errors(tmp_path: Path, component_repo: Path) -> None:
    found = sources(tmp_path, {"acme/components": component_repo}, server_fqdn="gitlab.example.com")
    path = pipeline_file(
        tmp_path / "app",
        "include:\n  - component: gitlab.example.com/acme/components/scan@1.0.0\n    inputs: {image: x, stage: check}\n"
        "stages: [check]\n",
    )
    assert [job.name for job in load_pipeline(path, sources=found).jobs] == ["scan-job"]
    cases = {
        "gitlab.example.com/acme/components/lint@1.0.0": "`image` input: required value has not been provided",
        "other.example.com/acme/components/lint@1.0.0": "the component path is not supported",
        "gitlab.example.com/acme/components/missing@1.0.0": "content not found",
        "gitlab.example.com/acme/components/lint@9.9.9": "9.9.9",
    }
    for address, message in cases.items():
        path = pipeline_file(tmp_path / "app", f"include:\n  - component: {address}\n")
        err = load_error(path, found)
        assert message in err.message, (address, err.message)
        if "input" in message:  # at the input's spec, in the component's file
            assert err.file == "acme/components@1.0.0:templates/lint.yml", address
        else:  # at the include
            assert (err.file, err.line, err.column) == (str(path), 2, 5), address


def latest_lint(tmp_path: Path, component_repo: Path, git_refresh: float = 0.0) -> tuple[Path, ParseCache]:
    """A pipeline including the ``lint`` component at ``~latest``, and a parse cache reading it."""
    path = pipeline_file(
        tmp_path / "app",
        "include:\n  - component: gitlab.com/acme/components/lint@~latest\n    inputs: {image: alpine}\n",
    )
    found = sources(tmp_path, {"acme/components": component_repo}, git_refresh=git_refresh)
    return path, ParseCache(tmp_path / "parse-cache", sources=found)


def test_a_new_tag_of_a_component_reparses_and_nothing_else_does(tmp_path: Path, component_repo: Path) -> None:
    path, cache = latest_lint(tmp_path, component_repo)
    first = cache.load(path)
    assert cache.lookup(path) is not None  # nothing changed: valid
    template = (component_repo / "templates" / "lint.yml").read_text()
    commit(component_repo, {"templates/lint.yml": template.replace("echo v2", "echo v3")}, "3.0")
    assert cache.lookup(path) is not None  # a commit on main is no new release
    git(component_repo, "tag", "3.0.0")
    assert cache.lookup(path) is None  # a new release moves ~latest: the pipeline is parsed again
    assert list(cache.load(path).jobs[0].spec.script) != list(first.jobs[0].spec.script)
    assert cache.lookup(path) is not None


def test_within_the_refresh_interval_a_warm_parse_runs_no_git(
    tmp_path: Path, component_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, cache = latest_lint(tmp_path, component_repo, git_refresh=3600.0)
    cache.load(path)
    git(component_repo, "tag", "9.0.0")  # not seen until the refresh interval passes

    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError("a warm parse started a process")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    monkeypatch.setattr(subprocess, "run", no_process)
    assert cache.lookup(path) is not None


def test_a_warm_parse_in_a_fresh_process_does_not_load_the_git_machinery(tmp_path: Path, component_repo: Path) -> None:
    # What the dag-processor does for every parse: a new process, a cache hit. Within the refresh
    # interval it must cost what a pipeline of local files costs: no git module, no git state read.
    path = pipeline_file(
        tmp_path / "app",
        "include:\n  - component: gitlab.com/acme/components/lint@~latest\n    inputs: {image: alpine}\n"
        "  - component: gitlab.com/acme/components/scan@1\n    inputs: {image: alpine}\n",
    )
    found = sources(tmp_path, {"acme/components": component_repo}, git_refresh=3600.0)
    cache = ParseCache(tmp_path / "parse-cache", sources=found)
    cache.load(path)
    entry = cache.entry(path)
    written = entry.stat().st_mtime_ns
    driver = textwrap.dedent(
        f"""\
        import sys
        from pathlib import Path
        from airflow_ci_vars.pipeline.cache import ParseCache
        from airflow_ci_vars.pipeline.external.sources import GitProject, IncludeSources
        found = IncludeSources(
            projects={{"acme/components": GitProject("acme/components", {f"file://{component_repo}"!r})}},
            cache_dir={str(tmp_path / "cache")!r}, git_refresh=3600.0,
        )
        pipeline = ParseCache(Path({str(tmp_path / "parse-cache")!r}), sources=found).load({str(path)!r})
        loaded = sorted(m for m in sys.modules if m.endswith(("external.git_repo", "external.component")))
        print(sorted(job.name for job in pipeline.jobs), loaded)
        """
    )
    out = subprocess.run([sys.executable, "-c", driver], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "['lint-job', 'scan-job'] []"
    assert entry.stat().st_mtime_ns == written  # a hit: the entry was not rewritten


def test_refs_refreshed_by_another_process_are_seen_at_once_within_the_refresh_interval(
    tmp_path: Path, component_repo: Path
) -> None:
    path = pipeline_file(
        tmp_path / "app",
        "include:\n  - component: gitlab.com/acme/components/lint@~latest\n    inputs: {image: alpine}\n",
    )
    patient = ParseCache(
        tmp_path / "parse-cache", sources=sources(tmp_path, {"acme/components": component_repo}, git_refresh=3600.0)
    )
    first = patient.load(path)
    assert first.jobs[0].spec.script == ("echo v2 alpine 2.0.0 ~latest",)
    template = (component_repo / "templates" / "lint.yml").read_text()
    commit(component_repo, {"templates/lint.yml": template.replace("echo v2", "echo v3")}, "3.0")
    git(component_repo, "tag", "3.0.0")
    assert patient.lookup(path) is not None  # within the refresh interval: the tag is not seen yet
    # Another process with refresh 0 (a worker, lint) fetches the remote into the same git cache:
    # the refs the entry was resolved from are gone, so the entry is stale for everyone at once.
    eager = ParseCache(tmp_path / "other-parse-cache", sources=sources(tmp_path, {"acme/components": component_repo}))
    assert eager.load(path).jobs[0].spec.script == ("echo v3 alpine 3.0.0 ~latest",)
    assert patient.lookup(path) is None
    assert patient.load(path).jobs[0].spec.script == ("echo v3 alpine 3.0.0 ~latest",)
    assert patient.lookup(path) is not None


def test_with_refresh_zero_a_load_and_a_check_fetch_each_remote_once(
    tmp_path: Path, component_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = pipeline_file(
        tmp_path / "app",
        "include:\n"
        "  - component: gitlab.com/acme/components/lint@~latest\n    inputs: {image: alpine}\n"
        "  - component: gitlab.com/acme/components/scan@1\n    inputs: {image: alpine}\n"
        "  - component: gitlab.com/acme/components/scan@1.0.0\n    inputs: {image: alpine, stage: check}\n"
        "stages: [test, check]\n",
    )
    cache = ParseCache(tmp_path / "parse-cache", sources=sources(tmp_path, {"acme/components": component_repo}))
    fetches: list[list[str]] = []
    real_popen = subprocess.Popen

    class Spy(real_popen):  # type: ignore[misc, valid-type]
        def __init__(self, command: list[str], *args: object, **kwargs: object) -> None:
            if "fetch" in command:
                fetches.append(command)
            super().__init__(command, *args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", Spy)
    assert sorted(job.name for job in cache.load(path).jobs) == ["lint-job", "scan-job"]
    assert len(fetches) == 1  # 3 components of one remote: one fetch (the clone)
    assert cache.lookup(path) is not None
    assert len(fetches) == 2  # checking the 3 recorded versions: one fetch


def test_a_component_pinned_by_a_short_sha_is_still_a_hit(tmp_path: Path, component_repo: Path) -> None:
    short = git(component_repo, "rev-parse", "--short=10", "1.0.0^{commit}").strip()
    path = pipeline_file(
        tmp_path / "app",
        f"include:\n  - component: gitlab.com/acme/components/lint@{short}\n    inputs: {{image: alpine}}\n"
        "  - component: gitlab.com/acme/components/scan@~latest\n    inputs: {image: alpine}\n",
    )
    found = sources(tmp_path, {"acme/components": component_repo}, git_refresh=3600.0)
    cache = ParseCache(tmp_path / "parse-cache", sources=found)
    scripts = [job.spec.script for job in cache.load(path).jobs]
    assert scripts == [(f"echo alpine  {short}",), ("echo alpine 2.0.0 ~latest",)]
    # the SHA is asked of the git cache (its answer also depends on the mirror), ~latest is not
    assert cache.lookup(path) is not None


# --- include:template --------------------------------------------------------------------------


def test_templates_come_from_the_configured_folder_and_include_each_other(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    (folder / "Jobs").mkdir(parents=True)
    (folder / "Jobs" / "Build.gitlab-ci.yml").write_text("build:\n  extends: .base\n  script: [make]\n")
    (folder / "Base.gitlab-ci.yml").write_text(
        "include:\n  - template: Jobs/Build.gitlab-ci.yml\n.base:\n  variables: {TEMPLATE: base}\n"
    )
    path = pipeline_file(tmp_path / "app", "include:\n  - template: Base.gitlab-ci.yml\n")
    found = IncludeSources(templates_dir=str(folder))
    pipeline = load_pipeline(path, sources=found)
    assert [(j.name, [v.value for v in j.spec.variables]) for j in pipeline.jobs] == [("build", ["base"])]
    for include, message in {
        "Missing.gitlab-ci.yml": "Included file `Missing.gitlab-ci.yml` is empty or does not exist!",
        "Base.yml": "Template file `Base.yml` is not a valid location!",
        "../app/.gitlab-ci.yml": "is empty or does not exist!",
    }.items():
        path = pipeline_file(tmp_path / "app", f"include:\n  - template: {include}\n")
        assert message in load_error(path, found).message
    assert "[ci_vars] include_templates_dir" in load_error(path, IncludeSources()).message


def test_a_local_include_inside_a_template_has_no_project(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "T.gitlab-ci.yml").write_text("include: local.yml\nj: {script: [x]}\n")
    path = pipeline_file(
        tmp_path / "app", "include: {template: T.gitlab-ci.yml}\n", **{"local.yml": "k: {script: [y]}"}
    )
    err = load_error(path, IncludeSources(templates_dir=str(folder)))
    assert "Local file `local.yml` does not have project!" in err.message


# --- include:remote ----------------------------------------------------------------------------


@pytest.fixture
def http_files() -> Iterator[tuple[str, dict[str, str], list[str]]]:
    """An HTTP server on 127.0.0.1 serving ``files`` (path -> text); ``requests`` lists the paths asked."""
    files: dict[str, str] = {}
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write((body or "not found").encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", files, requests
    finally:
        server.shutdown()
        server.server_close()


def test_remote_includes_are_fetched_once_verified_and_cannot_read_the_checkout(
    tmp_path: Path, http_files: tuple[str, dict[str, str], list[str]], templates_repo: Path
) -> None:
    base, files, requests = http_files
    text = (
        "remote-job:\n  extends: .common\n  script: [echo $FROM]\n"
        "include: {project: acme/ci-templates, file: build.yml}\n"
    )
    files["/ci/jobs.yml"] = text
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    path = pipeline_file(
        tmp_path / "app",
        f"include:\n  - remote: {base}/ci/jobs.yml\n    integrity: sha256-{digest}\n",
    )
    found = sources(tmp_path, {"acme/ci-templates": templates_repo}, remote_allowed=(base + "/",))
    assert scripts(path, found) == {"remote-job": ["echo $FROM"]}
    assert scripts(path, found) == {"remote-job": ["echo $FROM"]}
    assert requests == ["/ci/jobs.yml"]  # the second load read the cache
    # A local include inside a remote file has no project (GitLab: the remote context is empty).
    files["/ci/local.yml"] = "include: common.yml\nj: {script: [x]}\n"
    path = pipeline_file(tmp_path / "app", f"include: {base}/ci/local.yml\n", **{"common.yml": "k: {script: [y]}"})
    assert "Local file `common.yml` does not have project!" in load_error(path, found).message
    cases = {
        f"{{remote: {base}/ci/jobs.yml, integrity: sha256-{'A' * 43}=}}": "failed integrity check",
        f"{base}/ci/missing.yml": "could not be fetched because of HTTP code `404` error!",
        "https://evil.example.com/ci.yml": "[ci_vars] include_remote_allowed",
        f"{{local: a.yml, integrity: sha256-{digest}}}": "integrity can only be specified for remote includes",
    }
    for include, message in cases.items():
        path = pipeline_file(tmp_path / "app", f"j: {{script: [x]}}\ninclude: {include}\n")
        err = load_error(path, found)
        assert message in err.message, include
        assert (err.file, err.line) == (str(path), 2), include


def test_a_token_in_a_remote_url_never_reaches_an_error(
    tmp_path: Path, http_files: tuple[str, dict[str, str], list[str]]
) -> None:
    base, _, _ = http_files
    found = IncludeSources(cache_dir=str(tmp_path / "cache"), remote_allowed=(base + "/",))
    for include in (f"{base}/missing.yml?private_token=tok-SECRET-1", f"{base}/ci.txt?private_token=tok-SECRET-1"):
        path = pipeline_file(tmp_path / "app", f"include: '{include}'\n")
        err = load_error(path, found)
        assert "tok-SECRET-1" not in str(err), str(err)
        assert "[FILTERED]" in err.message


def test_an_unreachable_remote_uses_the_cached_commit_with_a_located_warning(
    tmp_path: Path, templates_repo: Path
) -> None:
    path = pipeline_file(tmp_path / "app", "include: {project: acme/ci-templates, file: test.yml}\n")
    found = sources(tmp_path, {"acme/ci-templates": templates_repo})
    assert check_pipeline(path, sources=found).warnings == ()
    templates_repo.rename(tmp_path / "moved-away")
    loaded = check_pipeline(path, sources=found)
    assert loaded.pipeline is not None and [job.name for job in loaded.pipeline.jobs] == ["unit"]
    (warning,) = loaded.warnings
    assert warning.where == f"{path}:1:10"
    assert "is unreachable" in warning.message and "using the cached refs fetched at" in warning.message
    # Nothing cached: the include fails, naming the remote.
    other = sources(tmp_path / "elsewhere", {"acme/ci-templates": templates_repo})
    err = load_error(path, other)
    assert err.message.startswith("include:project acme/ci-templates file test.yml: git remote file://")
    assert (err.line, err.column) == (1, 10)


def test_a_child_pipeline_can_include_a_project_file(tmp_path: Path, templates_repo: Path) -> None:
    path = pipeline_file(
        tmp_path / "app",
        """\
        child:
          trigger:
            include:
              - project: acme/ci-templates
                ref: v1.0.0
                file: test.yml
        """,
    )
    pipeline = load_pipeline(path, sources=sources(tmp_path, {"acme/ci-templates": templates_repo}))
    assert [job.name for job in pipeline.children["child"].jobs] == ["unit"]


# --- an unreachable repository and the parse cache -------------------------------------------------


def test_an_unreachable_repository_keeps_the_cached_pipeline_and_the_parse_says_so(
    tmp_path: Path, component_repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path, cache = latest_lint(tmp_path, component_repo)
    first = cache.load(path)
    component_repo.rename(component_repo.with_name("moved"))
    with caplog.at_level("WARNING", logger="airflow_ci_vars.pipeline.cache"):
        kept = cache.lookup(path)
    assert kept is not None and kept.jobs == first.jobs
    (record,) = [r.getMessage() for r in caplog.records]
    assert record.startswith(f"{path}: warning: git remote {component_repo.as_uri()} is unreachable (")
    assert "using the cached refs fetched at" in record


def test_a_pipeline_loaded_while_its_repository_was_unreachable_is_not_cached(
    tmp_path: Path, component_repo: Path
) -> None:
    path, cache = latest_lint(tmp_path, component_repo)
    cache.load(path)
    moved = component_repo.rename(component_repo.with_name("moved"))
    path.write_text(path.read_text() + "variables: {EDITED: during the outage}\n")
    during = [w.message for w in pipeline_warnings(cache.load(path))]
    assert any("is unreachable" in message for message in during), during
    moved.rename(component_repo)
    # Reachable again: the warning is gone, it is not replayed from an entry written during the outage.
    assert cache.lookup(path) is None
    assert [w.message for w in pipeline_warnings(cache.load(path))] == []
    assert cache.lookup(path) is not None


def test_a_project_include_without_file_matches_no_kind(tmp_path: Path) -> None:
    path = pipeline_file(tmp_path / "app", "include: {project: acme/ci-templates}\nj: {script: [x]}\n")
    assert load_error(path, None).message == (
        '`{"project":"acme/ci-templates"}` does not have a valid subkey for include. '
        "Valid subkeys are: `local`, `project`, `remote`, `template`, `artifact`, `component`"
    )


def test_a_load_spends_at_most_the_total_timeout_on_includes(
    tmp_path: Path, http_files: tuple[str, dict[str, str], list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each fetch is bounded by `timeout`; many slow includes are bounded together (GitLab: 30 s).
    base, files, requests = http_files
    for index in range(5):
        files[f"/slow-{index}.yml"] = f"job-{index}:\n  script: [x]\n"
    real_fetch = RemoteCache.fetch

    def slow_fetch(self: RemoteCache, url: str, *, integrity: str | None = None) -> object:
        time.sleep(0.4)
        return real_fetch(self, url, integrity=integrity)

    monkeypatch.setattr(RemoteCache, "fetch", slow_fetch)
    found = IncludeSources(cache_dir=str(tmp_path / "cache"), remote_allowed=(base + "/",), total_timeout=1.0)
    path = pipeline_file(tmp_path / "app", "include:\n" + "".join(f"  - {base}/slow-{i}.yml\n" for i in range(5)))
    started = time.monotonic()
    err = load_error(path, found)
    assert err.message == "Request timed out when fetching configuration files."
    assert time.monotonic() - started < 4.0  # 1 s and one more fetch, with room for a loaded machine
    assert 2 <= len(requests) < 5
