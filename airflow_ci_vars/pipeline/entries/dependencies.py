"""``dependencies``. R: ``config/entry/job.rb`` (``validates :dependencies, array_of_strings: true``)."""

from __future__ import annotations

from collections.abc import Mapping

from airflow_ci_vars.pipeline.entries._util import as_list


def parse(job: Mapping[str, object]) -> tuple[str, ...] | None:
    """The job names of ``dependencies:`` (None without the keyword, ``()`` for ``[]``)."""
    if "dependencies" not in job:
        return None
    return tuple(str(d) for d in as_list(job["dependencies"]))
