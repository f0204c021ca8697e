"""Cross-pipeline dotenv handoff: Asset naming and picking the newest report on a ref (seed 002)."""

from __future__ import annotations

from airflow_ci_vars.jobs import CrossNeed, JobSpec
from airflow_ci_vars.pipeline.cross import dotenv_asset_name, dotenv_asset_uri, dotenv_event_extra, latest_dotenv


def test_needs_entries_on_other_pipelines_are_kept_apart_from_the_job_graph() -> None:
    job = JobSpec.from_yaml(
        "deploying",
        {
            "script": ["x"],
            "needs": [
                "build",
                {"project": "$CI_PROJECT_PATH", "job": "building", "ref": "staging", "artifacts": True},
                {"pipeline": "$PARENT_PIPELINE_ID", "job": "gen"},
            ],
        },
    )
    assert [n.job for n in job.needs or ()] == ["build"]
    assert job.cross_needs == (
        CrossNeed("building", project="$CI_PROJECT_PATH", ref="staging"),
        CrossNeed("gen", pipeline="$PARENT_PIPELINE_ID"),
    )


def test_only_cross_pipeline_needs_start_the_job_at_once() -> None:
    job = JobSpec.from_yaml("d", {"script": ["x"], "needs": [{"project": "a/b", "job": "j", "ref": "main"}]})
    assert job.needs == ()


def test_asset_names_are_stable_and_uris_quote_job_names() -> None:
    assert dotenv_asset_name("/acme/app/", "build: [linux]") == "gitlab-ci/acme/app/build: [linux]"
    assert dotenv_asset_uri("acme/app", "build: [linux]") == "gitlab-ci-dotenv://acme/app/build%3A%20%5Blinux%5D"


def test_asset_names_escape_slash_and_percent_in_job_names() -> None:
    assert dotenv_asset_name("a", "b/build") == "gitlab-ci/a/b%2Fbuild"
    assert dotenv_asset_name("a/b", "build") == "gitlab-ci/a/b/build"
    assert dotenv_asset_name("a%2Fb", "x%") == "gitlab-ci/a%252Fb/x%25"


def test_latest_dotenv_takes_the_newest_event_on_the_ref() -> None:
    events = [
        dotenv_event_extra(ref="main", pipeline_id="3", job="b", report={"V": "3"}),
        dotenv_event_extra(ref="staging", pipeline_id="2", job="b", report={"V": "2"}),
        dotenv_event_extra(ref="staging", pipeline_id="1", job="b", report={"V": "1"}),
    ]
    assert latest_dotenv(events, "staging") == {"V": "2"}
    assert latest_dotenv(events, "release") is None


def test_events_without_a_report_are_passed_over() -> None:
    events = [{"ref": "main"}, {"ref": "main", "dotenv": "not a mapping"}, {"ref": "main", "dotenv": {"N": 5}}]
    assert latest_dotenv(events, "main") == {"N": "5"}


def test_a_dotenv_assets_uri_names_its_project_and_job() -> None:
    from airflow_ci_vars.pipeline.cross import dotenv_asset_source, dotenv_asset_uri

    for project, job in [("acme/data/etl", "build"), ("a/b", "build: [linux/amd64, 1]"), ("x", "j%2F")]:
        assert dotenv_asset_source(dotenv_asset_uri(project, job)) == (project, job)
    assert dotenv_asset_source("s3://bucket/key") is None
    assert dotenv_asset_source("gitlab-ci-dotenv://nojob") is None
