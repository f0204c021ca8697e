"""``artifacts`` (files and the dotenv report). R: ``config/entry/artifacts.rb``, ``entry/reports.rb``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from airflow_ci_vars.errors import JobConfigError
from airflow_ci_vars.pipeline.entries._util import as_list

ArtifactsWhen = Literal["on_success", "on_failure", "always"]
ARTIFACTS_WHEN: tuple[ArtifactsWhen, ...] = ("on_success", "on_failure", "always")


@dataclass(frozen=True, slots=True)
class Artifacts:
    """``artifacts:``: file ``paths`` (with ``exclude``, ``untracked``, ``when``) and dotenv reports."""

    paths: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    untracked: bool = False
    when: ArtifactsWhen = "on_success"
    dotenv: tuple[str, ...] = ()


NO_ARTIFACTS = Artifacts()


def parse(name: str, value: object) -> Artifacts:
    """The job's artifacts (none without the keyword)."""
    if not value:
        return NO_ARTIFACTS
    if not isinstance(value, Mapping):
        raise JobConfigError(f"{name}: artifacts config should be a hash", job=name, key="artifacts")
    when = str(value.get("when", "on_success"))
    if when not in ARTIFACTS_WHEN:
        raise JobConfigError(
            f"{name}: artifacts:when config should be on_success, on_failure or always", job=name, key="artifacts"
        )
    reports = value.get("reports") or {}
    dotenv = reports.get("dotenv") if isinstance(reports, Mapping) else None
    return Artifacts(
        paths=tuple(str(p) for p in as_list(value.get("paths"))),
        exclude=tuple(str(p) for p in as_list(value.get("exclude"))),
        untracked=bool(value.get("untracked", False)),
        when=when,
        dotenv=tuple(str(p) for p in as_list(dotenv)),
    )
