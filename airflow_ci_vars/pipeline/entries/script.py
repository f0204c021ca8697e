"""``script``, ``before_script``, ``after_script``. R: ``config/entry/commands.rb``, ``entry/job.rb``."""

from __future__ import annotations

from collections.abc import Mapping

from airflow_ci_vars.errors import JobConfigError


def lines(name: str, value: object, keyword: str = "script") -> tuple[str, ...]:
    """The commands of ``keyword``: a string or (nested) list of strings, flattened like GitLab.

    A mapping (typically an unquoted ``echo "a: b"`` line that YAML read as a hash) is refused
    with GitLab's message.
    """
    out: list[str] = []

    def walk(v: object) -> None:
        if isinstance(v, (list, tuple)):
            for item in v:
                walk(item)
        elif isinstance(v, Mapping):
            raise JobConfigError(
                f"jobs:{name}:{keyword} config should be a string or a nested array of strings up to 10 levels deep",
                job=name,
                key=keyword,
            )
        elif v is not None:
            out.append(str(v))

    walk(value)
    return tuple(out)


def check_present(name: str, job: Mapping[str, object]) -> None:
    """A job (not a bridge) needs ``script:`` or ``run:``, and a ``script:`` with a command."""
    if "trigger" in job:
        return
    script = job.get("script")
    if script is None and "run" not in job:
        raise JobConfigError(f"jobs:{name} config should implement the script:, run:, or trigger: keyword", job=name)
    if script is not None and (
        script == [] or script == "" or (isinstance(script, list) and not any(s not in (None, "", []) for s in script))
    ):
        raise JobConfigError(
            f"jobs:{name}:script config should be an array containing strings and arrays of strings",
            job=name,
            key="script",
        )
