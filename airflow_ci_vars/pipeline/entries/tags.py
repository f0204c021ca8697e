"""``tags``. R: ``config/entry/tags.rb`` (an array of strings)."""

from __future__ import annotations

from airflow_ci_vars.errors import JobConfigError


def parse(name: str, value: object) -> tuple[str, ...]:
    """The job's runner tags (none without the keyword)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise JobConfigError(f"jobs:{name}:tags config should be an array of strings", job=name, key="tags")
    return tuple(value)


def warnings(name: str, tags: tuple[str, ...]) -> tuple[str, ...]:
    """Warnings on usable tags.

    In GitLab a job runs on a runner having *all* its tags; an Airflow task has one queue, so the
    factory uses the first tag as the queue and a second tag only earns a warning. Tags are fixed
    when the DAG is parsed, so a ``$VARIABLE`` in a tag is not expanded (warning too).
    """
    out: list[str] = []
    if len(tags) > 1:
        out.append(
            f"jobs:{name}:tags: only the first tag ({tags[0]}) is used, as the task's queue: "
            "an Airflow task has one queue, not a set of runner tags"
        )
    if any("$" in t for t in tags):
        out.append(f"jobs:{name}:tags: variables are not expanded in tags (the queue is fixed when the DAG is parsed)")
    return tuple(out)
