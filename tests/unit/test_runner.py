"""The shell executor: clean environment, workspace, bash scripts as gitlab-runner runs them.

Every test runs real bash processes; nothing is mocked.
"""

from __future__ import annotations

import itertools
import os
import pickle
import stat
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_ci_vars.errors import CIVarsError, ScriptTimeoutError
from airflow_ci_vars.masking import Masker
from airflow_ci_vars.runner import (
    DEFAULT_PATH,
    JobOutcome,
    LineEmitter,
    ScriptRunner,
    Workspace,
    build_script,
    clean_base_environment,
    parse_gitlab_env,
    run_job,
)
from airflow_ci_vars.variables import RunContext, Variable, VariableLayers, resolve
from airflow_ci_vars.variables.model import FILE
from airflow_ci_vars.variables.resolve import VariableFile

SECRET = "abcdef-secret"
ENV = {"PATH": DEFAULT_PATH}

# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


class Log:
    """An ``emit`` target that records every line."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def run(
    commands: Sequence[str],
    tmp_path: Path,
    *,
    env: dict[str, str] | None = None,
    secrets: Sequence[str] = (),
    timeout: float | None = None,
) -> tuple[int, Log]:
    log = Log()
    runner = ScriptRunner(Masker(secrets), log)
    code = runner.run(commands, env=ENV if env is None else env, cwd=tmp_path, script_dir=tmp_path, timeout=timeout)
    return code, log


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state != "Z"


def wait_gone(pid: int, within: float = 3.0) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        if not alive(pid):
            return True
        time.sleep(0.02)
    return not alive(pid)


def workspace_job(
    tmp_path: Path,
    script: Sequence[str],
    after_script: Sequence[str] = (),
    *,
    env: dict[str, str] | None = None,
    after_script_timeout: float = 300.0,
    secrets: Sequence[str] = (),
) -> tuple[JobOutcome, Log]:
    log = Log()
    masker = Masker(secrets)
    with Workspace(None, root=tmp_path) as ws:
        outcome = run_job(
            script=script,
            after_script=after_script,
            env=ENV if env is None else env,
            workspace=ws,
            masker=masker,
            emit=log,
            after_script_timeout=after_script_timeout,
        )
    return outcome, log


# --------------------------------------------------------------------------------------------
# clean base environment
# --------------------------------------------------------------------------------------------


def test_clean_environment_has_no_airflow_variables_even_when_the_worker_has_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql://u:pw@db/airflow")
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", "fernet")
    monkeypatch.setenv("AIRFLOW_CONN_MY_DB", "postgres://u:pw@h/db")
    monkeypatch.setenv("AIRFLOW_VAR_TOKEN", "t")
    monkeypatch.setenv("AIRFLOW_HOME", "/opt/airflow")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws")
    monkeypatch.setenv("HOME", "/home/worker")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    base = clean_base_environment()
    assert not [k for k in base if k.upper().startswith("AIRFLOW")]
    assert "AWS_SECRET_ACCESS_KEY" not in base
    assert base["HOME"] == "/home/worker"
    assert base["LC_ALL"] == "C.UTF-8"
    assert base["PATH"] == os.environ["PATH"]


def test_clean_environment_keeps_only_the_allow_list() -> None:
    worker = {
        "PATH": "/bin",
        "LANG": "C",
        "LC_CTYPE": "C",
        "TZ": "UTC",
        "USER": "u",
        "LOGNAME": "u",
        "SHELL": "/bin/sh",
        "TERM": "xterm",
        "TMPDIR": "/tmp",
        "LANGUAGE": "en",
        "PYTHONPATH": "/x",
        "VAULT_TOKEN": "s",
        "lc_all": "x",
    }
    base = clean_base_environment(worker)
    assert set(base) == set(worker) - {"PYTHONPATH", "VAULT_TOKEN", "lc_all"}


def test_clean_environment_gives_path_a_default() -> None:
    assert clean_base_environment({})["PATH"] == DEFAULT_PATH
    assert clean_base_environment({"PATH": ""})["PATH"] == DEFAULT_PATH


# --------------------------------------------------------------------------------------------
# scripts
# --------------------------------------------------------------------------------------------


def test_script_starts_with_errexit_pipefail_and_noclobber_off() -> None:
    assert build_script(["true"]).splitlines()[:2] == ["set -eo pipefail", "set +o noclobber"]


def test_commands_are_echoed_literally_before_they_run(tmp_path: Path) -> None:
    code, log = run(["echo hi", "echo \"$PATH\" 'q' `true` > /dev/null", ""], tmp_path)
    assert code == 0
    assert log.lines == ["$ echo hi", "hi", "$ echo \"$PATH\" 'q' `true` > /dev/null", ""]


def test_multi_line_command_echoes_its_first_line_collapsed(tmp_path: Path) -> None:
    code, log = run(["  echo one\necho two\n  "], tmp_path)
    assert code == 0
    assert log.lines == ["$ echo one # collapsed multi-line command", "one", "two"]


def test_commands_may_span_items_as_in_gitlab_runner(tmp_path: Path) -> None:
    code, log = run(["if true; then", "echo inside", "fi"], tmp_path)
    assert code == 0
    assert "inside" in log.lines


def test_stops_at_first_failing_command_with_its_exit_code(tmp_path: Path) -> None:
    code, log = run(["echo before", "exit 3", "echo never"], tmp_path)
    assert code == 3
    assert "before" in log.lines
    assert "never" not in log.text


def test_failing_command_in_a_pipeline_fails_the_job(tmp_path: Path) -> None:
    code, log = run(["false | true", "echo never"], tmp_path)
    assert code == 1
    assert "never" not in log.text


def test_stderr_is_merged_into_the_output(tmp_path: Path) -> None:
    code, log = run(["echo out; echo err >&2"], tmp_path)
    assert code == 0
    assert log.lines[-2:] == ["out", "err"]


def test_death_by_signal_gives_128_plus_the_signal(tmp_path: Path) -> None:
    code, _ = run(["kill -KILL $$"], tmp_path)
    assert code == 128 + 9


def test_job_environment_is_exactly_the_one_passed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", "fernet")
    monkeypatch.setenv("HOME", "/home/worker")
    code, log = run(["env"], tmp_path, env={"ONLY_ME": "x"})
    assert code == 0
    names = {line.split("=", 1)[0] for line in log.lines if "=" in line and not line.startswith("$")}
    assert "ONLY_ME" in names
    assert "HOME" not in names
    assert "AIRFLOW__CORE__FERNET_KEY" not in names
    # Only what bash itself sets besides.
    assert names <= {"ONLY_ME", "PWD", "SHLVL", "_", "OLDPWD"}


def test_stdin_is_empty(tmp_path: Path) -> None:
    code, log = run(["cat; echo done"], tmp_path)
    assert (code, log.lines[-1]) == (0, "done")


def test_script_file_is_removed_after_the_run(tmp_path: Path) -> None:
    code, log = run(["ls -l $0 | cut -c1-10"], tmp_path)
    assert code == 0
    assert log.lines[-1] == "-rwx------"
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# masking and decoding
# --------------------------------------------------------------------------------------------


def test_secret_echoed_by_the_job_is_masked(tmp_path: Path) -> None:
    code, log = run(['echo "token=$TOKEN"'], tmp_path, env={**ENV, "TOKEN": SECRET}, secrets=[SECRET])
    assert code == 0
    assert log.lines[-1] == "token=[MASKED]"
    assert SECRET not in log.text


def test_secret_printed_in_pieces_is_masked(tmp_path: Path) -> None:
    code, log = run(["printf 'abc'; sleep 0.2; printf 'def-secret\\n'"], tmp_path, secrets=[SECRET])
    assert code == 0
    assert log.lines[-1] == "[MASKED]"
    assert SECRET not in log.text


def test_each_emitted_line_is_already_masked(tmp_path: Path) -> None:
    lines: list[str] = []

    def emit(line: str) -> None:
        assert SECRET not in line  # checked as it arrives, not afterwards
        lines.append(line)

    runner = ScriptRunner(Masker([SECRET]), emit)
    code = runner.run(
        ["for i in 1 2 3; do printf 'ab'; sleep 0.05; printf 'cdef-sec'; sleep 0.05; echo ret; done"],
        env=ENV,
        cwd=tmp_path,
        script_dir=tmp_path,
    )
    assert code == 0
    assert lines[-3:] == ["[MASKED]"] * 3


def test_a_line_is_emitted_as_soon_as_it_is_complete(tmp_path: Path) -> None:
    seen: list[tuple[str, float]] = []
    started = time.monotonic()
    runner = ScriptRunner(Masker([SECRET]), lambda line: seen.append((line, time.monotonic() - started)))
    runner.run(["echo deploying", "sleep 1"], env=ENV, cwd=tmp_path, script_dir=tmp_path)
    assert [line for line, _ in seen] == ["$ echo deploying", "deploying", "$ sleep 1"]
    assert max(at for _, at in seen) < 0.8  # not held back until the sleep ends


def test_multi_line_secret_split_across_reads_is_masked(tmp_path: Path) -> None:
    key = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END KEY-----"
    first, rest = key.split("\n", 1)
    code, log = run([f"printf -- '{first}\\n'; sleep 0.2; printf -- '{rest}\\n'"], tmp_path, secrets=[key])
    assert code == 0
    assert log.lines[1:] == ["[MASKED]"]  # after the echoed command, the whole key is one mask


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(
        st.sampled_from(["abc", "def-secret", SECRET, "\n", " ", "x", "?private_token=", "glpat-", "A\nB", "tok"]),
        max_size=30,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12),
    multi_line_secret=st.booleans(),
)
def test_streamed_lines_equal_one_shot_masking_for_any_chunking(
    pieces: list[str], cuts: list[int], multi_line_secret: bool
) -> None:
    masker = Masker([SECRET, "tokA\nBtok"] if multi_line_secret else [SECRET])
    text = "".join(pieces)
    bounds = sorted({0, len(text), *(c for c in cuts if c < len(text))})
    lines: list[str] = []
    out = LineEmitter(masker, lines.append)
    for start, end in itertools.pairwise(bounds):
        out.write(text[start:end])
    out.close()
    expected = masker.mask(text).split("\n")
    if expected[-1] == "":
        expected.pop()
    assert lines == expected


def test_multi_byte_character_split_across_reads_decodes(tmp_path: Path) -> None:
    code, log = run(["printf '\\xc3'; sleep 0.2; printf '\\xa9t\\xc3\\xa9\\n'"], tmp_path)
    assert code == 0
    assert log.lines[-1] == "\u00e9t\u00e9"


def test_invalid_utf8_is_replaced(tmp_path: Path) -> None:
    code, log = run(["printf 'a\\xffb\\n'"], tmp_path)
    assert code == 0
    assert log.lines[-1] == "a\ufffdb"


def test_last_line_without_newline_is_emitted(tmp_path: Path) -> None:
    code, log = run(["printf 'tail'"], tmp_path)
    assert (code, log.lines[-1]) == (0, "tail")


# --------------------------------------------------------------------------------------------
# timeouts, kill and process groups
# --------------------------------------------------------------------------------------------


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "bg.pid"
    started = time.monotonic()
    with pytest.raises(ScriptTimeoutError) as info:
        run([f"sleep 30 & echo $! > {pid_file}", "sleep 30"], tmp_path, timeout=0.5)
    assert time.monotonic() - started < 5
    assert info.value.timeout == 0.5
    assert str(info.value) == "script timed out after 0.5 seconds"
    assert isinstance(info.value, CIVarsError)
    assert wait_gone(int(pid_file.read_text()))


def test_timeout_error_pickles() -> None:
    err = pickle.loads(pickle.dumps(ScriptTimeoutError(2.5)))
    assert (err.timeout, str(err)) == (2.5, "script timed out after 2.5 seconds")


def test_chatty_script_still_times_out(tmp_path: Path) -> None:
    with pytest.raises(ScriptTimeoutError):
        run(["yes"], tmp_path, timeout=0.5)


def test_background_jobs_do_not_outlive_the_script(tmp_path: Path) -> None:
    quiet, loud = tmp_path / "quiet.pid", tmp_path / "loud.pid"
    started = time.monotonic()
    code, log = run(
        [f"sleep 30 >/dev/null 2>&1 & echo $! > {quiet}", f"sleep 30 & echo $! > {loud}", "echo done"],
        tmp_path,
    )
    # The loud one holds the output pipe: the run still ends with bash.
    assert time.monotonic() - started < 5
    assert (code, log.lines[-1]) == (0, "done")
    assert wait_gone(int(quiet.read_text()))
    assert wait_gone(int(loud.read_text()))


def test_kill_from_another_thread_stops_the_job(tmp_path: Path) -> None:
    pid_file = tmp_path / "bg.pid"
    log = Log()
    runner = ScriptRunner(Masker([]), log, kill_grace=1.0)
    threading.Timer(0.3, runner.kill).start()
    started = time.monotonic()
    code = runner.run([f"sleep 30 & echo $! > {pid_file}", "sleep 30"], env=ENV, cwd=tmp_path, script_dir=tmp_path)
    assert time.monotonic() - started < 5
    assert code == 128 + 15
    assert runner.killed
    assert wait_gone(int(pid_file.read_text()))
    # Nothing runs after kill().
    assert runner.run(["touch started"], env=ENV, cwd=tmp_path, script_dir=tmp_path) == 128 + 15
    assert not (tmp_path / "started").exists()


def test_kill_escalates_to_sigkill_after_the_grace(tmp_path: Path) -> None:
    runner = ScriptRunner(Masker([]), Log(), kill_grace=0.3)
    threading.Timer(0.3, runner.kill).start()
    started = time.monotonic()
    code = runner.run(["trap '' TERM", "echo ready", "sleep 30"], env=ENV, cwd=tmp_path, script_dir=tmp_path)
    assert time.monotonic() - started < 5
    assert code == 128 + 9


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_exception_escaping_the_run_kills_the_process_group(tmp_path: Path, error: type[BaseException]) -> None:
    pid_file = tmp_path / "bg.pid"

    def emit(line: str) -> None:
        if line == "boom":
            raise error("interrupted")  # like Airflow's timeout raised by a signal handler

    runner = ScriptRunner(Masker([]), emit)
    started = time.monotonic()
    with pytest.raises(error):
        runner.run(
            [f"sleep 30 & echo $! > {pid_file}", "echo boom", "sleep 30"],
            env=ENV,
            cwd=tmp_path,
            script_dir=tmp_path,
        )
    assert time.monotonic() - started < 5
    assert wait_gone(int(pid_file.read_text()))


# --------------------------------------------------------------------------------------------
# run_job: before_script + script, after_script, $GITLAB_ENV
# --------------------------------------------------------------------------------------------


def test_before_script_and_script_share_one_shell_in_the_project_dir(tmp_path: Path) -> None:
    log = Log()
    with Workspace(None, root=tmp_path) as ws:
        outcome = run_job(
            before_script=["export FROM_BEFORE=yes"],
            script=['echo "$FROM_BEFORE"', "pwd"],
            after_script=[],
            env=ENV,
            workspace=ws,
            masker=Masker([]),
            emit=log,
        )
        project_dir = str(ws.project_dir)
    assert outcome == JobOutcome(0, None, False, {})
    assert log.lines == ["$ export FROM_BEFORE=yes", '$ echo "$FROM_BEFORE"', "yes", "$ pwd", project_dir]


def test_after_script_runs_after_success_with_status_success(tmp_path: Path) -> None:
    outcome, log = workspace_job(tmp_path, ["true"], ['echo "status=$CI_JOB_STATUS"'])
    assert (outcome.exit_code, outcome.after_script_exit_code) == (0, 0)
    assert "status=success" in log.lines


def test_after_script_runs_after_failure_with_status_failed(tmp_path: Path) -> None:
    outcome, log = workspace_job(tmp_path, ["exit 7"], ['echo "status=$CI_JOB_STATUS"'])
    assert (outcome.exit_code, outcome.after_script_exit_code) == (7, 0)
    assert "status=failed" in log.lines


def test_script_sees_status_running(tmp_path: Path) -> None:
    _, log = workspace_job(tmp_path, ['echo "status=$CI_JOB_STATUS"'])
    assert "status=running" in log.lines


def test_after_script_does_not_see_exports_from_script(tmp_path: Path) -> None:
    outcome, log = workspace_job(
        tmp_path, ["export FOO=bar", 'echo "script FOO=$FOO"'], ['echo "after FOO=${FOO:-unset}"']
    )
    assert outcome.exit_code == 0
    assert "script FOO=bar" in log.lines
    assert "after FOO=unset" in log.lines


def test_after_script_sees_gitlab_env_lines_written_by_script(tmp_path: Path) -> None:
    outcome, log = workspace_job(
        tmp_path,
        [
            'echo "ARCH=x86_64" >> "$GITLAB_ENV"',
            "echo 'URL=http://h/?a=b' >> $GITLAB_ENV",
            "echo not-a-pair >> $GITLAB_ENV",
        ],
        ['echo "arch=$ARCH url=$URL"', 'echo "file=$GITLAB_ENV"'],
        env={**ENV, "ARCH": "job-value"},
    )
    assert outcome.exit_code == 0
    assert outcome.gitlab_env == {"ARCH": "x86_64", "URL": "http://h/?a=b"}
    assert "arch=x86_64 url=http://h/?a=b" in log.lines
    assert any(line.startswith("file=/") and line.endswith("/project.tmp/gitlab_runner_env") for line in log.lines)


def test_after_script_cannot_change_the_exit_code(tmp_path: Path) -> None:
    ok, log = workspace_job(tmp_path, ["true"], ["exit 5"])
    assert (ok.exit_code, ok.after_script_exit_code) == (0, 5)
    assert log.lines[-1] == "WARNING: after_script failed, but job will continue unaffected: exit code 5"
    failed, _ = workspace_job(tmp_path, ["exit 2"], ["exit 0"])
    assert (failed.exit_code, failed.after_script_exit_code) == (2, 0)


def test_after_script_times_out_without_hanging(tmp_path: Path) -> None:
    started = time.monotonic()
    outcome, log = workspace_job(tmp_path, ["exit 4"], ["sleep 30"], after_script_timeout=0.3)
    assert time.monotonic() - started < 5
    assert outcome == JobOutcome(4, None, True, {})
    assert log.lines[-1] == "WARNING: after_script timed out after 0.3 seconds"


def test_after_script_output_is_masked(tmp_path: Path) -> None:
    _, log = workspace_job(
        tmp_path, ['echo "S=$S" >> $GITLAB_ENV'], ['echo "$S"'], env={**ENV, "S": SECRET}, secrets=[SECRET]
    )
    assert log.lines[-1] == "[MASKED]"
    assert SECRET not in log.text


def test_no_after_script_after_kill(tmp_path: Path) -> None:
    log = Log()
    runner = ScriptRunner(Masker([]), log)
    threading.Timer(0.3, runner.kill).start()
    with Workspace(None, root=tmp_path) as ws:
        outcome = run_job(
            script=["sleep 30"],
            after_script=["touch after-ran"],
            env=ENV,
            workspace=ws,
            masker=Masker([]),
            emit=log,
            runner=runner,
        )
        assert not (ws.project_dir / "after-ran").exists()
    assert outcome == JobOutcome(143, None, False, {})


def test_gitlab_env_parsing_follows_the_runners_read_loop() -> None:
    text = "A=1\n  B=two words  \nno equals\n1BAD=x\nC=x=y\n\nA=last\nD=\nE=no-newline"
    assert parse_gitlab_env(text) == {"A": "last", "B": "two words", "C": "x=y", "D": "", "E": "no-newline"}


# --------------------------------------------------------------------------------------------
# workspace
# --------------------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / ".git" / "objects").mkdir(parents=True)
    (src / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (src / "sub" / ".git").mkdir(parents=True)  # nested checkout: kept
    (src / ".gitlab-ci.yml").write_text("job: {script: [true]}\n")
    (src / "sub" / "data.txt").write_text("data")
    (src / "link").symlink_to("sub/data.txt")
    os.mkfifo(src / "fifo")
    (src / "readonly.txt").write_text("ro")
    (src / "readonly.txt").chmod(0o444)
    return src


def test_workspace_copies_the_project_without_git(project: Path, tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    with Workspace(project, root=tmp_path / "root") as ws:
        copy = ws.project_dir
        assert (copy / ".gitlab-ci.yml").read_text() == "job: {script: [true]}\n"
        assert (copy / "sub" / "data.txt").read_text() == "data"
        assert not (copy / ".git").exists()
        assert (copy / "sub" / ".git").is_dir()
        assert (copy / "link").is_symlink()
        assert os.readlink(copy / "link") == "sub/data.txt"
        assert not (copy / "fifo").exists()
        assert os.access(copy / "readonly.txt", os.W_OK)  # the job's copy is its own
        assert ws.path.parent == tmp_path / "root"


def test_workspace_layout_and_modes(tmp_path: Path) -> None:
    with Workspace(None, root=tmp_path, name="app") as ws:
        assert list(ws.project_dir.iterdir()) == []
        assert ws.project_dir.name == "app"
        assert ws.temp_dir == ws.project_dir.parent / "app.tmp"
        assert ws.gitlab_env_path.parent == ws.temp_dir
        assert ws.gitlab_env_path.read_text() == ""
        # Others may pass through the attempt's folder (a sandboxed job user must), never list it.
        assert stat.S_IMODE(ws.path.stat().st_mode) == 0o711
        assert stat.S_IMODE(ws.temp_dir.stat().st_mode) == 0o700
        base = ws.path
    assert not base.exists()
    with pytest.raises(RuntimeError):
        _ = ws.project_dir


def test_two_workspaces_on_the_same_source_are_isolated(project: Path, tmp_path: Path) -> None:
    with Workspace(project, root=tmp_path) as one, Workspace(project, root=tmp_path) as two:
        assert one.path != two.path
        (one.project_dir / "sub" / "data.txt").write_text("changed")
        (one.project_dir / "new.txt").write_text("new")
        assert (two.project_dir / "sub" / "data.txt").read_text() == "data"
        assert not (two.project_dir / "new.txt").exists()
    assert (project / "sub" / "data.txt").read_text() == "data"


def test_file_variables_are_0600_and_removed_even_when_the_body_raises(tmp_path: Path) -> None:
    ws = Workspace(None, root=tmp_path)
    with pytest.raises(RuntimeError, match="job failed"), ws:
        path = ws.temp_dir / "KUBECONFIG"
        ws.write_files([VariableFile("KUBECONFIG", str(path), "apiVersion: v1\n", masked=False)])
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_text() == "apiVersion: v1\n"
        raise RuntimeError("job failed")
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_workspace_is_removed_on_keyboard_interrupt_and_explicit_cleanup(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), Workspace(None, root=tmp_path):
        raise KeyboardInterrupt
    ws = Workspace(None, root=tmp_path).__enter__()
    ws.cleanup()
    ws.cleanup()  # idempotent
    assert list(tmp_path.iterdir()) == []


def test_workspace_is_removed_even_when_the_job_made_it_read_only(tmp_path: Path) -> None:
    outcome, _ = workspace_job(tmp_path, ["mkdir -p d/e && touch d/e/f && chmod -R a-w . && chmod 0 d"])
    assert outcome.exit_code == 0
    assert list(tmp_path.iterdir()) == []


def test_write_files_refuses_paths_outside_the_temp_dir(tmp_path: Path) -> None:
    with Workspace(None, root=tmp_path) as ws:
        for path in (
            tmp_path / "evil",
            ws.project_dir / "K",
            ws.temp_dir / ".." / "K",
            ws.temp_dir / "sub" / "K",
            ws.temp_dir,
        ):
            with pytest.raises(ValueError, match="outside the workspace temp dir"):
                ws.write_files([VariableFile("K", str(path), "v")])
        assert not (tmp_path / "evil").exists()


def test_write_files_never_overwrites_or_follows_a_planted_file(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("original")
    with Workspace(None, root=tmp_path) as ws:
        (ws.temp_dir / "K").symlink_to(target)
        with pytest.raises(FileExistsError):
            ws.write_files([VariableFile("K", str(ws.temp_dir / "K"), "v")])
    assert target.read_text() == "original"


def test_workspace_is_entered_once_and_names_one_component(tmp_path: Path) -> None:
    ws = Workspace(None, root=tmp_path)
    with ws, pytest.raises(RuntimeError):
        ws.__enter__()
    with pytest.raises(RuntimeError):
        ws.__enter__()
    for bad in ("", "..", "a/b"):
        with pytest.raises(ValueError):
            Workspace(None, name=bad)


def test_resolved_file_variable_is_read_by_the_job_and_masked(tmp_path: Path) -> None:
    log = Log()
    with Workspace(None, root=tmp_path) as ws:
        env = resolve(
            VariableLayers(project=[Variable("CERT", SECRET, variable_type=FILE, masked=True)]),
            RunContext(job_name="j"),
            temp_dir=str(ws.temp_dir),
        )
        ws.write_files(env.files)
        masker = Masker(env.masked_values)
        outcome = run_job(
            script=['test "$CERT" = "$RUNNER_TEMP_PROJECT_DIR/CERT"', 'cat "$CERT"; echo'],
            env={**ENV, **env.environment},
            workspace=ws,
            masker=masker,
            emit=log,
        )
        cert = ws.temp_dir / "CERT"
        assert stat.S_IMODE(cert.stat().st_mode) == 0o600
    assert outcome.exit_code == 0
    assert log.lines[-1] == "[MASKED]"
    assert SECRET not in log.text
    assert not cert.exists()
