"""The parse cache: a re-parse of an unchanged pipeline skips loading; any change of what it read is a miss."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from airflow_ci_vars.pipeline.cache import ParseCache
from airflow_ci_vars.pipeline.external.sources import IncludeSources
from airflow_ci_vars.pipeline.loader import load_pipeline
from airflow_ci_vars.pipeline.model import Pipeline, PipelineInvalidError
from airflow_ci_vars.pipeline.seed import seed_variables
from airflow_ci_vars.pipeline.sources import SourceLog


class CountingLoader:
    """``load_pipeline``, counting the loads (a hit must not load)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(
        self,
        path: str | os.PathLike[str],
        *,
        seed: Mapping[str, str] | None = None,
        log: SourceLog | None = None,
        inputs: Mapping[str, object] | None = None,
        sources: IncludeSources | None = None,
        containers: bool = False,
    ) -> Pipeline:
        self.calls += 1
        return load_pipeline(path, seed=seed, log=log, inputs=inputs, sources=sources, containers=containers)


@pytest.fixture
def loader() -> CountingLoader:
    return CountingLoader()


@pytest.fixture
def cache(tmp_path: Path, loader: CountingLoader) -> ParseCache:
    return ParseCache(tmp_path / "cache", loader=loader)


def project(tmp_path: Path, files: Mapping[str, str]) -> Path:
    root = tmp_path / "project"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root / ".gitlab-ci.yml"


def job_names(pipeline: Pipeline) -> list[str]:
    return [j.name for j in pipeline.jobs]


def test_reparse_of_an_unchanged_pipeline_does_not_load_it(
    tmp_path: Path, cache: ParseCache, loader: CountingLoader
) -> None:
    ci = project(
        tmp_path,
        {".gitlab-ci.yml": "include: ci/jobs.yml\nbuild: {script: [make]}\n", "ci/jobs.yml": "test: {script: [t]}\n"},
    )
    first = cache.load(ci)
    second = cache.load(ci)
    assert loader.calls == 1
    assert second == first and job_names(second) == ["test", "build"]
    assert ParseCache(cache.directory, loader=CountingLoader()).lookup(ci) == first  # a fresh process hits too


def test_editing_the_main_file_reloads(tmp_path: Path, cache: ParseCache, loader: CountingLoader) -> None:
    ci = project(tmp_path, {".gitlab-ci.yml": "build: {script: [make]}\n"})
    cache.load(ci)
    ci.write_text("build: {script: [make]}\nlint: {script: [ruff]}\n")
    assert job_names(cache.load(ci)) == ["build", "lint"]
    assert loader.calls == 2


def test_editing_an_included_file_reloads(tmp_path: Path, cache: ParseCache, loader: CountingLoader) -> None:
    ci = project(tmp_path, {".gitlab-ci.yml": "include: ci/jobs.yml\n", "ci/jobs.yml": "test: {script: [old]}\n"})
    assert cache.load(ci).job("test").spec.script == ("old",)
    (ci.parent / "ci/jobs.yml").write_text("test: {script: [new]}\n")
    assert cache.load(ci).job("test").spec.script == ("new",)
    assert loader.calls == 2


def test_a_new_file_matched_by_an_include_wildcard_reloads(
    tmp_path: Path, cache: ParseCache, loader: CountingLoader
) -> None:
    ci = project(tmp_path, {".gitlab-ci.yml": "include: 'ci/*.yml'\n", "ci/a.yml": "a: {script: [x]}\n"})
    assert job_names(cache.load(ci)) == ["a"]
    (ci.parent / "ci/b.yml").write_text("b: {script: [y]}\n")
    assert job_names(cache.load(ci)) == ["a", "b"]
    (ci.parent / "ci/b.yml").unlink()
    assert job_names(cache.load(ci)) == ["a"]
    assert loader.calls == 3


def test_a_new_file_matched_by_include_rules_exists_reloads(
    tmp_path: Path, cache: ParseCache, loader: CountingLoader
) -> None:
    ci = project(
        tmp_path,
        {
            ".gitlab-ci.yml": "include: [{local: docker.yml, rules: [{exists: [Dockerfile]}]}]\nbuild: {script: [x]}\n",
            "docker.yml": "image_build: {script: [docker build .]}\n",
        },
    )
    assert job_names(cache.load(ci)) == ["build"]
    (ci.parent / "Dockerfile").write_text("FROM scratch\n")
    assert job_names(cache.load(ci)) == ["image_build", "build"]
    assert job_names(cache.load(ci)) == ["image_build", "build"]
    assert loader.calls == 2


def test_files_read_by_a_child_pipeline_are_inputs(tmp_path: Path, cache: ParseCache, loader: CountingLoader) -> None:
    ci = project(
        tmp_path,
        {
            ".gitlab-ci.yml": "deploy: {trigger: {include: child.yml}}\n",
            "child.yml": "step: {script: [old]}\n",
        },
    )
    assert cache.load(ci).children["deploy"].job("step").spec.script == ("old",)
    (ci.parent / "child.yml").write_text("step: {script: [new]}\n")
    assert cache.load(ci).children["deploy"].job("step").spec.script == ("new",)
    assert loader.calls == 2


def test_different_seed_variables_are_different_entries(
    tmp_path: Path, cache: ParseCache, loader: CountingLoader
) -> None:
    ci = project(
        tmp_path,
        {
            ".gitlab-ci.yml": "include: [{local: prod.yml, rules: [{if: '$CI_COMMIT_BRANCH == \"main\"'}]}]\n"
            "build: {script: [x]}\n",
            "prod.yml": "release: {script: [y]}\n",
        },
    )
    main, feature = seed_variables(ref="main"), seed_variables(ref="feature")
    assert job_names(cache.load(ci, seed=main)) == ["release", "build"]
    assert job_names(cache.load(ci, seed=feature)) == ["build"]
    assert job_names(cache.load(ci, seed=main)) == ["release", "build"]
    assert job_names(cache.load(ci, seed=feature)) == ["build"]
    assert loader.calls == 2
    assert cache.entry(ci, seed=main) != cache.entry(ci, seed=feature)


def test_a_corrupt_entry_is_a_miss_and_is_rewritten(
    tmp_path: Path, cache: ParseCache, loader: CountingLoader, caplog: pytest.LogCaptureFixture
) -> None:
    ci = project(tmp_path, {".gitlab-ci.yml": "build: {script: [make]}\n"})
    cache.load(ci)
    entry = cache.entry(ci)
    for garbage in (b"", b"not a pickle", entry.read_bytes()[:-20]):
        entry.write_bytes(garbage)
        with caplog.at_level(logging.INFO, logger="airflow_ci_vars.pipeline.cache"):
            assert job_names(cache.load(ci)) == ["build"]
        assert "unreadable" in caplog.text
        assert cache.lookup(ci) is not None  # rewritten
    assert loader.calls == 4


def test_failures_raise_on_every_parse_and_are_not_cached(
    tmp_path: Path, cache: ParseCache, loader: CountingLoader
) -> None:
    ci = project(tmp_path, {".gitlab-ci.yml": "build: {script: [make]}\n"})
    cache.load(ci)
    ci.write_text("build: {script: [make]}\ntest: {needs: [nope], script: [t]}\n")
    for _ in range(2):
        with pytest.raises(PipelineInvalidError, match="undefined need: nope") as err:
            cache.load(ci)
        assert f"{ci}:2" in str(err.value)
    assert loader.calls == 3
    assert cache.lookup(ci) is None  # the entry of the last good version is not served


def test_one_entry_per_pipeline_however_often_it_changes(tmp_path: Path, cache: ParseCache) -> None:
    ci = project(tmp_path, {".gitlab-ci.yml": "build: {script: [make]}\n"})
    for n in range(5):
        ci.write_text(f"build: {{script: [make {n}]}}\n")
        cache.load(ci)
    assert [p.name for p in cache.directory.iterdir()] == [cache.entry(ci).name]


def test_an_unwritable_cache_directory_only_costs_the_cache(
    tmp_path: Path, loader: CountingLoader, caplog: pytest.LogCaptureFixture
) -> None:
    ci = project(tmp_path, {".gitlab-ci.yml": "build: {script: [make]}\n"})
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    cache = ParseCache(blocker / "cache", loader=loader)
    with caplog.at_level(logging.WARNING, logger="airflow_ci_vars.pipeline.cache"):
        assert job_names(cache.load(ci)) == ["build"]
        assert job_names(cache.load(ci)) == ["build"]
    assert loader.calls == 2
    assert "cannot write" in caplog.text


def test_the_cache_directory_is_private(tmp_path: Path, cache: ParseCache) -> None:
    cache.load(project(tmp_path, {".gitlab-ci.yml": "build: {script: [make]}\n"}))
    assert cache.directory.stat().st_mode & 0o077 == 0
    assert all(p.stat().st_mode & 0o077 == 0 for p in cache.directory.iterdir())


def test_different_input_values_are_different_entries(
    tmp_path: Path, cache: ParseCache, loader: CountingLoader
) -> None:
    ci = project(
        tmp_path,
        {
            ".gitlab-ci.yml": "spec: {inputs: {env: {default: dev}}}\n---\n"
            "deploy: {script: ['deploy $[[ inputs.env ]]']}\n"
        },
    )
    for _ in range(2):
        assert cache.load(ci).job("deploy").spec.script == ("deploy dev",)
        assert cache.load(ci, inputs={"env": "prod"}).job("deploy").spec.script == ("deploy prod",)
    assert loader.calls == 2
