"""``airflow-ci-vars run``'s direct engine as a user at a terminal meets it: no Airflow import,
output as it is produced, a progress line on a terminal, Ctrl-C that stops the job's processes
and removes its workspace, a job timeout, and the pipelines it hands to Airflow's engine.

Each test runs the real CLI in a subprocess. The streaming and Ctrl-C tests use
``[ci_vars] isolation = none`` so that the job can see the test's folder (the sandbox hides it);
what they check does not depend on the isolation.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from airflow_ci_vars.direct_run import job_order, needs_airflow
from airflow_ci_vars.pipeline.loader import load_pipeline

CLI = Path(sys.executable).parent / "airflow-ci-vars"

HANDOFF = """\
stages: [build, test]
build:
  stage: build
  script:
    - echo "BUILD_VERSION=1.2.3" > build.env
  artifacts:
    reports: {dotenv: build.env}
test:
  stage: test
  script:
    - echo "version $BUILD_VERSION"
"""


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["AIRFLOW_HOME"] = str(tmp_path / "home")
    env.update(extra)
    return env


def _pipeline(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "project"
    folder.mkdir(exist_ok=True)
    (folder / ".gitlab-ci.yml").write_text(text)
    return folder / ".gitlab-ci.yml"


def _read_until(stream: int, wanted: bytes, timeout: float = 30.0) -> bytes:
    """Read ``stream`` (a file descriptor) until ``wanted`` appears; fail after ``timeout``."""
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{wanted!r} not seen in time; got {seen[-2000:]!r}"
        ready, _, _ = select.select([stream], [], [], left)
        if ready:
            chunk = os.read(stream, 65536)
            assert chunk, f"end of output before {wanted!r}; got {seen[-2000:]!r}"
            seen += chunk
    return seen


def test_run_does_not_import_airflow(tmp_path: Path) -> None:
    file = _pipeline(tmp_path, HANDOFF)
    code = (
        "import sys\nfrom airflow_ci_vars.cli import main\n"
        f"rc = main(['run', {str(file)!r}, '--output', 'jsonl'])\n"
        "loaded = sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.'))\n"
        "print(json.dumps({'rc': rc, 'airflow': loaded}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", "import json\n" + code],
        capture_output=True, text=True, env=_env(tmp_path), timeout=120, check=False,
    )  # fmt: skip
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result == {"rc": 0, "airflow": []}, proc.stderr[-2000:]
    assert '{"job": "test", "line": "version 1.2.3"}' in proc.stdout  # the dotenv handoff


def test_output_appears_as_the_job_produces_it(tmp_path: Path) -> None:
    go = tmp_path / "go"
    file = _pipeline(
        tmp_path,
        'job:\n  script:\n    - echo first\n    - while [ ! -e "$GO" ]; do sleep 0.05; done\n    - echo second\n',
    )
    proc = subprocess.Popen(
        [str(CLI), "run", str(file), "--variable", f"GO={go}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(tmp_path, AIRFLOW__CI_VARS__ISOLATION="none"),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        seen = _read_until(proc.stdout.fileno(), b"job > first\n")
        assert proc.poll() is None  # still waiting for `go`: the line came while the job ran
        assert b"second" not in seen
        go.touch()
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert (seen + out).decode().endswith("job > second\njob: success\n")


def test_ctrl_c_stops_the_job_and_removes_its_workspace(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    workspaces = tmp_path / "workspaces"
    file = _pipeline(
        tmp_path,
        "job:\n  script:\n"
        '    - sleep 300 & echo $! > "$PIDS/child"\n'
        '    - echo $$ > "$PIDS/shell"\n'
        "    - echo started\n"
        "    - wait\n"
        "after:\n  stage: test\n  script: [echo never]\n",
    )
    env = _env(tmp_path, AIRFLOW__CI_VARS__ISOLATION="none", AIRFLOW__CI_VARS__WORKSPACE_ROOT=str(workspaces))
    proc = subprocess.Popen(
        [str(CLI), "run", str(file), "--variable", f"PIDS={pids}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        _read_until(proc.stdout.fileno(), b"job > started\n")
        assert any(workspaces.iterdir())  # the job's workspace exists while it runs
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends to the foreground process
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert time.monotonic() - started < 15  # not the 300 s of the job's sleep
    assert "interrupted" in err.decode()
    assert b"never" not in out  # the run stopped: no later job
    for name in ("child", "shell"):
        pid = int((pids / name).read_text())
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    assert not [p for p in workspaces.iterdir() if p.is_dir()]  # the workspace is gone


def test_a_progress_line_per_job_on_a_terminal(tmp_path: Path) -> None:
    file = _pipeline(tmp_path, HANDOFF)
    primary, secondary = pty.openpty()
    proc = subprocess.Popen([str(CLI), "run", str(file)], stdout=secondary, stderr=subprocess.PIPE, env=_env(tmp_path))
    os.close(secondary)
    output = b""
    try:
        while True:
            ready, _, _ = select.select([primary], [], [], 60)
            assert ready, "no output within 60 s"
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the other end closed
                break
            if not chunk:
                break
            output += chunk
        proc.wait(timeout=60)
    finally:
        os.close(primary)
        proc.kill()
    assert proc.returncode == 0
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output.decode())
    assert re.search(r"build: success \(\d+\.\d s\)", text)
    assert re.search(r"test: success \(\d+\.\d s\)", text)
    assert "test > version 1.2.3" in text


def test_a_job_timeout_stops_the_job(tmp_path: Path) -> None:
    file = _pipeline(tmp_path, "slow:\n  timeout: 2 seconds\n  script: [echo begun, sleep 120]\n")
    started = time.monotonic()
    proc = subprocess.run(
        [str(CLI), "run", str(file), "--output", "jsonl"],
        capture_output=True, text=True, env=_env(tmp_path), timeout=120, check=False,
    )  # fmt: skip
    assert time.monotonic() - started < 60
    assert proc.returncode == 1
    assert '{"job": "slow", "status": "failed"}' in proc.stdout
    assert "Job 'slow' timed out after 2 seconds" in proc.stderr


def test_which_pipelines_need_airflow(tmp_path: Path) -> None:
    child = tmp_path / "child.yml"
    child.write_text("child-job:\n  script: [echo child]\n")
    cases = {
        "static child": ("parent:\n  trigger:\n    include: child.yml\n", None),
        "multi-project": ("down:\n  trigger:\n    project: acme/other\n", "triggers another project's"),
        "needs:project": (
            "job:\n  needs:\n    - {project: acme/other, job: build, ref: main, artifacts: true}\n  script: [echo]\n",
            "needs a job of another pipeline",
        ),
    }
    for name, (text, reason) in cases.items():
        file = tmp_path / f"{name.replace(' ', '-').replace(':', '-')}.yml"
        file.write_text(text)
        found = needs_airflow(load_pipeline(file))
        assert (found is None) if reason is None else (found is not None and reason in found), name


def test_jobs_run_in_an_order_the_dag_allows(tmp_path: Path) -> None:
    file = _pipeline(
        tmp_path,
        "stages: [a, b, c]\n"
        "late:\n  stage: c\n  script: [echo]\n"
        "quick:\n  stage: c\n  needs: []\n  script: [echo]\n"
        "first:\n  stage: a\n  script: [echo]\n"
        "second:\n  stage: b\n  needs: [first]\n  script: [echo]\n"
        "other:\n  stage: b\n  script: [echo]\n",
    )
    order = [job.name for job in job_order(load_pipeline(file))]
    assert order.index("first") < order.index("second") < order.index("late")
    assert order.index("other") < order.index("late")
    assert order[0] in ("first", "quick")
