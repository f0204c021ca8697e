"""``include:component``: the address, the version it names, the file and the ``component.*`` values.

Expected messages are GitLab's (``app/services/ci/components/fetch_service.rb``); versions resolve as
``lib/gitlab/ci/components/instance_path.rb`` does, over a real git repository where a commit is named.
"""

from __future__ import annotations

import pickle
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_ci_vars.errors import IncludeSourceError
from airflow_ci_vars.pipeline.external import component
from airflow_ci_vars.pipeline.external.component import (
    ComponentAddress,
    ComponentError,
    ResolvedVersion,
    component_context,
    component_paths,
    parse_component,
    resolve_version,
)

FQDN = "gitlab.example.com"
PROJECTS = frozenset({"acme/ci/components", "acme/ci", "solo"})


def parse(address: str, *, fqdn: str = FQDN) -> ComponentAddress:
    return parse_component(address, server_fqdn=fqdn, known_projects=PROJECTS)


def parse_error(address: str, *, fqdn: str = FQDN) -> ComponentError:
    with pytest.raises(ComponentError) as err:
        parse(address, fqdn=fqdn)
    return err.value


# --- the address -----------------------------------------------------------------------------------


def test_a_component_address_splits_into_host_project_name_and_version() -> None:
    address = parse("gitlab.example.com/acme/ci/components/sast@1.2.3")
    assert address == ComponentAddress(FQDN, "acme/ci/components", "sast", "1.2.3")
    assert str(address) == "gitlab.example.com/acme/ci/components/sast@1.2.3"


def test_the_last_slash_separates_the_project_from_the_name_at_any_depth() -> None:
    assert parse("gitlab.example.com/acme/ci/lint@main").project_path == "acme/ci"
    assert parse("gitlab.example.com/solo/lint@main") == ComponentAddress(FQDN, "solo", "lint", "main")


def test_a_nested_component_name_is_looked_up_as_a_project_and_not_found() -> None:
    # GitLab's spec: `dast/another-folder` is "does not find the component".
    err = parse_error("gitlab.example.com/acme/ci/components/deploy/k8s@1.0.0")
    assert err.message == "Component 'gitlab.example.com/acme/ci/components/deploy/k8s@1.0.0' - content not found"
    assert err.reason == "content_not_found"


def test_a_project_path_matches_regardless_of_case_and_comes_back_as_configured() -> None:
    address = parse("gitlab.example.com/ACME/Ci/Components/Sast@1.0.0")
    assert (address.project_path, address.name) == ("acme/ci/components", "Sast")


def test_an_empty_server_fqdn_supports_no_address() -> None:
    assert parse_error("/acme/ci/lint@main", fqdn="").reason == "unsupported_path"


def test_an_instance_under_a_relative_url_has_its_path_in_the_fqdn() -> None:
    address = parse("example.com/gitlab/acme/ci/lint@main", fqdn="example.com/gitlab")
    assert (address.fqdn, address.project_path, address.name) == ("example.com/gitlab", "acme/ci", "lint")


def test_the_version_is_everything_after_the_first_at_sign() -> None:
    assert parse("gitlab.example.com/solo/lint@feature@x").version == "feature@x"


@pytest.mark.parametrize(
    "address",
    [
        "gitlab.com/acme/ci/lint@main",  # another instance
        "gitlab.example.com.evil.test/acme/ci/lint@main",  # the FQDN as a prefix of another host
        "gitlab.example.com/acme/ci/lint",  # no version
        "https://gitlab.example.com/acme/ci/lint@main",  # a URL is not an address
    ],
)
def test_an_address_of_another_host_or_without_version_is_not_supported(address: str) -> None:
    err = parse_error(address)
    assert err.message == f"Component '{address}' - the component path is not supported"
    assert err.reason == "unsupported_path"
    assert isinstance(err, IncludeSourceError)


@pytest.mark.parametrize(
    "address",
    [
        "gitlab.example.com/unknown/group/lint@main",  # not a project of this deployment
        "gitlab.example.com/lint@main",  # no project at all
        "gitlab.example.com//acme/ci/lint@main",  # a project path starting with '/'
        "gitlab.example.com/acme/ci/@main",  # an empty name
        "gitlab.example.com/acme/ci/..@main",
        "gitlab.example.com/acme/ci/.@main",
        "gitlab.example.com/acme/ci/../ci/lint@main",  # `..` is no way into another project
        "gitlab.example.com/acme/ci/li\nnt@main",
        "gitlab.example.com/acme/ci/a\\b@main",
    ],
)
def test_an_unknown_project_or_an_unusable_name_is_content_not_found(address: str) -> None:
    err = parse_error(address)
    assert err.message.endswith(" - content not found")
    assert err.reason == "content_not_found"


def test_a_very_long_address_is_refused_quickly_and_its_message_stays_short() -> None:
    address = "gitlab.example.com/acme/ci/" + "a" * 5_000_000 + "@main"
    started = time.perf_counter()
    err = parse_error(address)
    # Linear work takes milliseconds; a backtracking parse would take minutes. The margin is for
    # a loaded machine (CI shares its 2 cores with several deployments).
    assert time.perf_counter() - started < 5
    assert err.reason == "unsupported_path"
    assert len(err.message) < 300


def test_an_address_with_credentials_never_shows_them() -> None:
    err = parse_error("https://deploy:glpat-SECRET123@gitlab.example.com/acme/ci/lint@main")
    assert "SECRET123" not in err.message
    assert "SECRET123" not in (err.source or "")
    assert (
        err.message == "Component 'https://gitlab.example.com/acme/ci/lint@main' - the component path is not supported"
    )


def test_a_component_error_survives_pickling_with_its_reason() -> None:
    err = pickle.loads(pickle.dumps(parse_error("gitlab.com/acme/ci/lint@main")))
    assert (type(err), err.reason, err.source) == (ComponentError, "unsupported_path", "gitlab.com/acme/ci/lint@main")
    assert str(err) == "Component 'gitlab.com/acme/ci/lint@main' - the component path is not supported"


# --- the file and the context ---------------------------------------------------------------------


def test_a_component_is_a_file_then_a_folder_under_templates() -> None:
    assert component_paths("sast") == ("templates/sast.yml", "templates/sast/template.yml")


def test_the_component_context_shows_name_sha_version_and_reference() -> None:
    address = parse("gitlab.example.com/acme/ci/components/sast@~latest")
    resolved = ResolvedVersion(sha="a" * 40, version="1.2.3", reference="~latest", kind="latest")
    assert component_context(address, resolved) == {
        "name": "sast",
        "sha": "a" * 40,
        "version": "1.2.3",
        "reference": "~latest",
    }


# --- versions, over a real repository -------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=GIT_ENV
    ).stdout.strip()


GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
    "PATH": "/usr/bin:/bin:/usr/local/bin",
}


class Repo:
    """A git repository with one commit per tag, read back as the tables the git cache gives."""

    def __init__(self, path: Path, tags: list[str], branches: list[str] | None = None) -> None:
        branches = branches or []
        self.path = path
        path.mkdir()
        git(path, "init", "-q", "-b", "main")
        self.commits: dict[str, str] = {}
        for name in ["root", *tags, *branches]:
            (path / "templates").mkdir(exist_ok=True)
            (path / "templates" / "sast.yml").write_text(f"job: {{script: echo {name}}}\n")
            git(path, "add", "-A")
            git(path, "commit", "-q", "-m", name)
            self.commits[name] = git(path, "rev-parse", "HEAD")
        for name in tags:
            git(path, "tag", name, self.commits[name])
        for name in branches:
            git(path, "branch", name, self.commits[name])

    def refs(self, kind: str) -> dict[str, str]:
        lines = git(self.path, "for-each-ref", "--format=%(refname:strip=2) %(objectname)", f"refs/{kind}")
        return dict(line.split(" ", 1) for line in lines.splitlines())

    def find_sha(self, name: str) -> str | None:
        done = subprocess.run(
            ["git", "-C", str(self.path), "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}"],
            capture_output=True,
            text=True,
            env=GIT_ENV,
        )
        return done.stdout.strip() or None if done.returncode == 0 else None

    def resolve(self, reference: str, address: str | None = None) -> ResolvedVersion:
        return resolve_version(
            reference, tags=self.refs("tags"), branches=self.refs("heads"), find_sha=self.find_sha, address=address
        )

    def error(self, reference: str) -> ComponentError:
        with pytest.raises(ComponentError) as err:
            self.resolve(reference, f"{FQDN}/acme/ci/sast@{reference}")
        return err.value


RELEASES = ["1.0.0", "1.1.0", "1.1.1", "1.2.0", "2.0.0", "2.0.1", "2.1.0", "3.0.0-rc.1", "0.9.0"]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    return Repo(tmp_path_factory.mktemp("r") / "repo", [*RELEASES, "nightly"], ["main-2", "1.3"])


def test_latest_is_the_highest_released_version_not_a_pre_release_nor_the_newest_tag(repo: Repo) -> None:
    resolved = repo.resolve("~latest")
    assert resolved == ResolvedVersion(repo.commits["2.1.0"], "2.1.0", "~latest", "latest")


@pytest.mark.parametrize(("reference", "picked"), [("1", "1.2.0"), ("1.1", "1.1.1"), ("2", "2.1.0"), ("0", "0.9.0")])
def test_a_partial_version_picks_the_latest_matching_release(repo: Repo, reference: str, picked: str) -> None:
    # GitLab's doc: versions 1.0.0 ... 2.1.0: `1` selects 1.2.0, `1.1` selects 1.1.1.
    assert repo.resolve(reference) == ResolvedVersion(repo.commits[picked], picked, reference, "partial")


def test_a_partial_version_never_picks_a_pre_release(repo: Repo) -> None:
    err = repo.error("3")
    assert err.message == f"Component '{FQDN}/acme/ci/sast@3' - content not found"


def test_a_partial_version_without_release_falls_back_to_a_branch_of_that_name(repo: Repo) -> None:
    assert repo.resolve("1.3") == ResolvedVersion(repo.commits["1.3"], None, "1.3", "branch")


def test_a_full_version_and_a_pre_release_are_exact_tags_with_their_version(repo: Repo) -> None:
    assert repo.resolve("1.1.0") == ResolvedVersion(repo.commits["1.1.0"], "1.1.0", "1.1.0", "tag")
    assert repo.resolve("3.0.0-rc.1").version == "3.0.0-rc.1"


def test_a_tag_that_is_not_a_version_resolves_without_a_version(repo: Repo) -> None:
    assert repo.resolve("nightly") == ResolvedVersion(repo.commits["nightly"], None, "nightly", "tag")


def test_a_branch_resolves_to_its_head(repo: Repo) -> None:
    assert repo.resolve("main-2") == ResolvedVersion(repo.commits["main-2"], None, "main-2", "branch")


def test_a_full_or_abbreviated_sha_resolves_to_the_commit(repo: Repo) -> None:
    sha = repo.commits["root"]
    assert repo.resolve(sha) == ResolvedVersion(sha, None, sha, "sha")
    assert repo.resolve(sha[:8]) == ResolvedVersion(sha, None, sha[:8], "sha")


@pytest.mark.parametrize("reference", ["no-such-ref", "9.9.9", "deadbeefdeadbeef", "", "../../etc/passwd"])
def test_a_reference_that_names_nothing_is_content_not_found(repo: Repo, reference: str) -> None:
    err = repo.error(reference)
    assert err.message == f"Component '{FQDN}/acme/ci/sast@{reference}' - content not found"
    assert err.reason == "content_not_found"


def test_without_address_the_message_is_gitlabs_text_alone(repo: Repo) -> None:
    with pytest.raises(ComponentError, match=r"^content not found$"):
        repo.resolve("no-such-ref")


def test_a_tag_wins_over_a_branch_of_the_same_name(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "r", ["shared"], [])
    git(repo.path, "commit", "-q", "--allow-empty", "-m", "later")
    git(repo.path, "update-ref", "refs/heads/shared", git(repo.path, "rev-parse", "HEAD"))
    resolved = repo.resolve("shared")
    assert (resolved.sha, resolved.kind) == (repo.commits["shared"], "tag")


def test_v_prefixed_tags_are_released_versions_shown_as_written(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "r", ["v1.0.0", "v1.4.0", "1.2.0", "v2.0.0-beta"])
    assert repo.resolve("~latest") == ResolvedVersion(repo.commits["v1.4.0"], "v1.4.0", "~latest", "latest")
    assert repo.resolve("1.2").version == "1.2.0"
    assert repo.resolve("v1.0.0").version == "v1.0.0"
    assert repo.error("1.0.0").reason == "content_not_found"  # the tag is `v1.0.0`, not `1.0.0`


def test_build_metadata_is_not_part_of_the_version_shown() -> None:
    tags = {"1.2.3+build.7": "a", "2.0.0-rc.1+exp": "b"}
    assert resolve_version("~latest", tags=tags, branches={}, find_sha=lambda _: None).version == "1.2.3"
    assert resolve_version("2.0.0-rc.1+exp", tags=tags, branches={}, find_sha=lambda _: None).version == "2.0.0-rc.1"


def test_semver_precedence_orders_numbers_as_numbers_and_ranks_releases_above_pre_releases() -> None:
    tags = {"1.9.0": "a", "1.10.0": "b", "1.10.1-rc.2": "c", "1.10.1-rc.10": "d"}
    no_sha: Callable[[str], str | None] = lambda _: None  # noqa: E731
    assert resolve_version("~latest", tags=tags, branches={}, find_sha=no_sha).version == "1.10.0"
    assert resolve_version("1", tags=tags, branches={}, find_sha=no_sha).sha == "b"


def test_a_project_without_releases_refuses_latest_and_partial_versions_as_gitlab_does(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "r", ["nightly"], ["main-2"])
    assert repo.error("~latest").message == (
        f"Component '{FQDN}/acme/ci/sast@~latest' - The ~latest version reference is not supported for "
        "non-catalog resources. Use a tag, branch, or commit SHA instead."
    )
    err = repo.error("1.2")
    assert err.message == (
        f"Component '{FQDN}/acme/ci/sast@1.2' - The partial semantic version reference is not supported for "
        "non-catalog resources. Use a tag, branch, or commit SHA instead."
    )
    assert err.reason == "invalid_usage"


def test_latest_with_only_pre_releases_is_content_not_found() -> None:
    with pytest.raises(ComponentError, match="content not found"):
        resolve_version("~latest", tags={"1.0.0-rc.1": "a"}, branches={}, find_sha=lambda _: None)


def test_ten_thousand_tags_resolve_in_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bounded work, counted rather than timed (a timed test fails on a loaded machine): each
    resolution parses every tag once, plus the reference."""
    tags = {f"{i // 100}.{i % 100}.0": f"{i:040x}" for i in range(10_000)}
    tags.update({f"{i}.0.0-rc.{i}": "f" * 40 for i in range(200)})
    tags.update({f"release-{i}": "e" * 40 for i in range(1000)})
    parsed = 0
    release = component._release

    def counting(tag: str) -> object:
        nonlocal parsed
        parsed += 1
        return release(tag)

    monkeypatch.setattr(component, "_release", counting)
    for reference in ("~latest", "42", "42.7", "99.99.0", "release-5"):
        parsed = 0
        resolve_version(reference, tags=tags, branches={}, find_sha=lambda _: None)
        assert parsed <= len(tags) + 1, reference
    assert resolve_version("~latest", tags=tags, branches={}, find_sha=lambda _: None).version == "99.99.0"
    assert resolve_version("42", tags=tags, branches={}, find_sha=lambda _: None).version == "42.99.0"


def test_find_sha_is_only_asked_about_hexadecimal_names() -> None:
    asked: list[str] = []

    def find_sha(name: str) -> str | None:
        asked.append(name)
        return None

    for reference in ("--upload-pack=evil", "HEAD~1", "main", "abc", "cafe"):
        with pytest.raises(ComponentError):
            resolve_version(reference, tags={}, branches={}, find_sha=find_sha)
    assert asked == ["cafe"]
