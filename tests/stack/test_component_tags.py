"""include:component on the real deployment: a new tag of a component reaches the DAG when its file is re-parsed.

The session's deployment (conftest.py, ``include_env``) maps ``acme/components`` to a git
repository (``file://``) that this module creates in ``include_repos``, with
``include_git_refresh`` 2 s and ``$CI_SERVER_FQDN`` ``gitlab.example.com``. ``ci_stack_component_tags``
is the DAG of an ``acme/app`` pipeline that includes ``$CI_SERVER_FQDN/acme/components/greet@~latest``.

Nothing in the dags folder changes when a component gets a new tag, and the dag-processor parses a
file again only every ``min_file_process_interval`` (60 s on this stack, 30 s by default) or when
the file's mtime changes. A user asks for the re-parse as the UI's "Reparse Dag" button does:
``PUT /api/v2/parseDagFile/{file_token}`` (the token is in ``GET /dags/{dag_id}``). That parse
sees the new tag once the cached refs are older than ``include_git_refresh``; until then the
parse cache answers, so the wait below asks again until the DAG changes (bounded).
"""

from __future__ import annotations

import glob
import os
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from airflow_stack import AirflowStack

pytestmark = pytest.mark.stack

DAG_ID = "ci_stack_component_tags"
GONE_DAG_ID = "ci_stack_component_gone"
# The component: one job printing the version it was included at; 2.0.0 adds a job.
GREET = textwrap.dedent("""\
    spec:
      component: [version]
      inputs:
        greeting: {default: hello}
    ---
    greet:
      variables:
        GREETING: $[[ inputs.greeting ]]
        VERSION: $[[ component.version ]]
      script:
        - echo "$GREETING from greet $VERSION"
    """)
WAVE = textwrap.dedent("""\
    wave:
      variables:
        VERSION: $[[ component.version ]]
      script:
        - echo "wave $VERSION"
    """)
PIPELINE = """\
    include:
      - component: $CI_SERVER_FQDN/{project}/greet@{version}
        inputs:
          greeting: hi
    """
DAG_FILE = """\
    \"\"\"Written by tests/stack/test_component_tags.py.\"\"\"
    from pathlib import Path

    from airflow_ci_vars import gitlab_ci_dag

    dag = gitlab_ci_dag(Path(__file__).parent / "{folder}" / ".gitlab-ci.yml", project="acme/app", dag_id="{dag_id}")
    """
# conftest.py INCLUDE_GIT_REFRESH: the refs are fetched again by the first parse this long after the last fetch.
GIT_REFRESH = 2.0
# Bounds: a parse of this file takes about a second.
PARSE_TIMEOUT = 60.0
NEW_TAG_TIMEOUT = 90.0
RUN_TIMEOUT = 120.0


def git(repo: Path, *args: str) -> str:
    identity = ("-c", "user.name=t", "-c", "user.email=t@example.com")
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(
        ["git", "-C", str(repo), *identity, *args], check=True, capture_output=True, text=True, env=env
    ).stdout


def release(repo: Path, files: dict[str, str], tag: str) -> None:
    """Commit ``files`` on main and tag that commit ``tag`` (a released version)."""
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", f"release {tag}")
    git(repo, "tag", tag)


def write_dag(stack: AirflowStack, name: str, dag_id: str, project: str, version: str) -> Path:
    """A pipeline folder and its one-line DAG file in the dags folder; the pipeline's path."""
    folder = stack.dags_folder / name
    folder.mkdir()
    pipeline = folder / ".gitlab-ci.yml"
    pipeline.write_text(textwrap.dedent(PIPELINE.format(project=project, version=version)))
    temporary = stack.dags_folder / f".{name}.tmp"  # not a .py file: never parsed half-written
    temporary.write_text(textwrap.dedent(DAG_FILE.format(folder=name, dag_id=dag_id)))
    os.replace(temporary, stack.dags_folder / f"stack_{name}.py")
    return pipeline


def jobs(stack: AirflowStack) -> set[str]:
    """The DAG's job tasks as the api-server serves them (no stage gate, no pipeline status)."""
    tasks = stack.get_json(f"/dags/{DAG_ID}/tasks")["tasks"]
    return {t["task_display_name"] for t in tasks if t["operator_name"] == "CIJobOperator"}


def dag_versions(stack: AirflowStack) -> int:
    """How many versions of the DAG the api-server knows (a new one each time its structure changes)."""
    return int(stack.get_json(f"/dags/{DAG_ID}/dagVersions")["total_entries"])


def file_errors(stack: AirflowStack, name: str) -> list[str]:
    """The import errors of the DAG file ``name`` (``GET /api/v2/importErrors``)."""
    return [e["stack_trace"] for e in stack.import_errors() if Path(e["filename"]).name == name]


def when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def reparse(stack: AirflowStack, dag_id: str) -> None:
    """Ask for a re-parse of the DAG's file (the UI's "Reparse Dag") and wait until it is done.

    Fails with the import error when that parse fails (the DAG's ``last_parsed_time`` only moves
    when the file gives its DAGs).
    """
    dag = stack.get_json(f"/dags/{dag_id}")
    before, name = when(dag["last_parsed_time"]), Path(dag["fileloc"]).name
    reply = stack.api("PUT", f"/parseDagFile/{dag['file_token']}")
    assert reply.status_code == 201, reply.text
    deadline = time.monotonic() + PARSE_TIMEOUT
    while when(stack.get_json(f"/dags/{dag_id}")["last_parsed_time"]) <= before:
        stack.check_alive()
        failed = [
            e["stack_trace"]
            for e in stack.import_errors()
            if Path(e["filename"]).name == name and when(e["timestamp"]) > before
        ]
        assert not failed, f"the re-parse of {name} failed: {failed[0]}"
        assert time.monotonic() < deadline, f"{dag_id} not parsed again {PARSE_TIMEOUT:g} s after the request"
        time.sleep(0.5)


def reparse_until(stack: AirflowStack, done: Callable[[], bool], timeout: float, what: str) -> float:
    """Re-parse until ``done()``; the seconds it took (fails after ``timeout``)."""
    started = time.monotonic()
    while True:
        reparse(stack, DAG_ID)
        if done():
            return time.monotonic() - started
        assert time.monotonic() - started < timeout, f"{what}: not after {timeout:g} s of re-parses"
        time.sleep(0.5)


def run_logs(stack: AirflowStack, *task_ids: str) -> dict[str, str]:
    """Run the DAG once (it must succeed); each job's log."""
    run_id = stack.trigger(DAG_ID)
    assert stack.wait(DAG_ID, run_id, timeout=RUN_TIMEOUT) == "success"
    return {task: stack.task_log_text(DAG_ID, run_id, task) for task in task_ids}


def parse_log(stack: AirflowStack, name: str) -> str:
    """Everything the dag-processor logged while parsing the DAG file ``name`` (its per-file logs)."""
    pattern = os.path.join(glob.escape(str(stack.home / "logs" / "dag_processor")), "**", f"{glob.escape(name)}.log")
    files = {os.path.realpath(p) for p in glob.glob(pattern, recursive=True)}  # `latest` links to a day's folder
    return "".join(Path(p).read_text(errors="replace") for p in sorted(files))


@dataclass(frozen=True)
class Component:
    stack: AirflowStack
    repo: Path
    dag_file: str


@pytest.fixture(scope="module")
def component(airflow_stack: AirflowStack, include_repos: Path) -> Iterator[Component]:
    """``acme/components`` released at 1.0.0, and the DAG including it at ``~latest``, parsed."""
    repo = include_repos / "components"
    repo.mkdir()
    git(repo, "init", "--quiet", "--initial-branch=main")
    release(repo, {"templates/greet.yml": GREET}, "1.0.0")
    write_dag(airflow_stack, "component_tags", DAG_ID, "acme/components", "~latest")
    airflow_stack.wait_for_dag(DAG_ID, timeout=PARSE_TIMEOUT)
    yield Component(airflow_stack, repo, "stack_component_tags.py")


def test_a_new_tag_reaches_the_dag_when_its_file_is_reparsed(component: Component) -> None:
    stack = component.stack
    assert jobs(stack) == {"greet"}
    assert "hi from greet 1.0.0" in run_logs(stack, "greet")["greet"]
    versions = dag_versions(stack)

    release(component.repo, {"templates/greet.yml": GREET + WAVE}, "2.0.0")
    took = reparse_until(stack, lambda: jobs(stack) != {"greet"}, NEW_TAG_TIMEOUT, "the tag 2.0.0")
    assert jobs(stack) == {"greet", "wave"}, f"after {took:.1f} s"
    assert dag_versions(stack) == versions + 1
    logs = run_logs(stack, "greet", "wave")
    assert "hi from greet 2.0.0" in logs["greet"]
    assert "wave 2.0.0" in logs["wave"]
    assert file_errors(stack, component.dag_file) == []


def test_a_reparse_with_no_new_release_keeps_the_dag(component: Component) -> None:
    stack = component.stack
    before, versions = jobs(stack), dag_versions(stack)
    # Neither a commit on main nor a pre-release tag is a release: ~latest stays where it is.
    release(component.repo, {"templates/greet.yml": GREET + "pwned:\n  script: [echo pwned]\n"}, "3.0.0-rc.1")
    started = time.monotonic()
    while True:  # until a re-parse ran after include_git_refresh: it fetched the refs again
        reparse(stack, DAG_ID)
        assert jobs(stack) == before
        assert file_errors(stack, component.dag_file) == []
        assert stack.get_json(f"/dags/{DAG_ID}")["is_stale"] is False
        if time.monotonic() - started > GIT_REFRESH + 1:
            break
        time.sleep(0.5)
    assert dag_versions(stack) == versions  # the same DAG: no new version in the UI's history


def test_a_vanished_repository_keeps_the_cached_component_with_a_warning(component: Component) -> None:
    stack = component.stack
    before = jobs(stack)
    moved = component.repo.with_name("components.moved")
    component.repo.rename(moved)
    try:
        took = reparse_until(
            stack,
            lambda: "is unreachable" in parse_log(stack, component.dag_file),
            NEW_TAG_TIMEOUT,
            "the warning about the unreachable repository",
        )
        assert jobs(stack) == before, f"after {took:.1f} s"
        assert file_errors(stack, component.dag_file) == []
        (warning,) = [line for line in parse_log(stack, component.dag_file).splitlines() if "is unreachable" in line]
        pipeline = stack.dags_folder.resolve() / "component_tags" / ".gitlab-ci.yml"
        assert f"{pipeline}: warning: git remote {component.repo.as_uri()} is unreachable (" in warning
        assert "using the cached refs fetched at" in warning
    finally:
        moved.rename(component.repo)

    # Back: no process asks a remote found unreachable again before include_git_refresh has passed
    # (a hanging remote must not cost every parse its timeout), then a re-parse fetches the refs
    # again and says nothing more.
    def quiet() -> bool:
        warned = parse_log(stack, component.dag_file).count("is unreachable")
        reparse(stack, DAG_ID)
        return parse_log(stack, component.dag_file).count("is unreachable") == warned

    took = reparse_until(stack, quiet, NEW_TAG_TIMEOUT, "a re-parse without the warning once the repository is back")
    assert quiet(), f"warned again after {took:.1f} s"
    assert jobs(stack) == before


def test_a_repository_never_fetched_and_unreachable_is_an_import_error_at_the_include(
    component: Component,
) -> None:
    stack = component.stack
    pipeline = write_dag(stack, "component_gone", GONE_DAG_ID, "acme/gone", "1.0.0")
    deadline = time.monotonic() + PARSE_TIMEOUT
    while not (errors := file_errors(stack, "stack_component_gone.py")):
        stack.check_alive()
        assert time.monotonic() < deadline, f"no import error for stack_component_gone.py after {PARSE_TIMEOUT:g} s"
        time.sleep(0.5)
    (error,) = errors
    assert f"{pipeline.resolve()}:2:5" in error, error
    assert "is unreachable" in error, error
    assert stack.api("GET", f"/dags/{GONE_DAG_ID}").status_code == 404
