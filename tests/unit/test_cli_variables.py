"""``airflow-ci-vars variables list|set|unset`` against the configured store (here the file)."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_ci_vars import cli
from airflow_ci_vars.cli import main
from airflow_ci_vars.settings import Settings, load_settings
from airflow_ci_vars.stores import configured
from airflow_ci_vars.stores.base import LayerRef
from airflow_ci_vars.variables.model import Variable

HIDDEN = "hidden-Secret-9f8e7d"
MASKED = "masked-Secret-1a2b3c"
NEW_SECRET = "brand-new-Secret-42"

BASE = f"""\
project: g/p
groups:
  g:
    variables:
      - {{key: G, value: group-value}}
projects:
  g/p:
    variables:
      - {{key: PLAIN, value: plain-value, description: a plain one}}
      - {{key: MSK, value: {MASKED}, masked: true, protected: true}}
      - {{key: HID, value: {HIDDEN}, masked: true, hidden: true}}
      - {{key: CERT, value: "line1\\nline2", variable_type: file, environment_scope: production}}
"""


@pytest.fixture(autouse=True)
def file_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CIVaultBackend and no [ci_vars] settings_file: --settings picks the file store."""
    monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND", "")
    monkeypatch.delenv("AIRFLOW__CI_VARS__SETTINGS_FILE", raising=False)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    file = tmp_path / "settings.yml"
    file.write_text(BASE)
    return file


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in (HIDDEN, MASKED, NEW_SECRET):
            assert secret not in text


# --- list -----------------------------------------------------------------------------------


def test_list_prints_a_table_with_masked_values(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "variables", "list", "--layer", "project:g/p", "--settings", str(path))
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "KEY    VALUE         TYPE     SCOPE       FLAGS             DESCRIPTION",
        "PLAIN  plain-value   env_var  *           -                 a plain one",
        "MSK    [MASKED]      env_var  *           masked,protected",
        "HID    [MASKED]      env_var  *           masked,hidden",
        "CERT   line1\\nline2  file     production  -",
    ]
    assert_no_secret(out)


def test_list_json(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "variables", "list", "--layer", "project:g/p", "--settings", str(path), "--format", "json"
    )
    assert code == 0
    records = json.loads(out)
    assert [r["key"] for r in records] == ["PLAIN", "MSK", "HID", "CERT"]
    assert records[0] == {
        "key": "PLAIN",
        "value": "plain-value",
        "variable_type": "env_var",
        "masked": False,
        "hidden": False,
        "protected": False,
        "raw": False,
        "environment_scope": "*",
        "description": "a plain one",
    }
    assert records[1]["value"] == records[2]["value"] == "[MASKED]"
    assert records[3]["value"] == "line1\nline2"
    assert_no_secret(out)


def test_list_scope_filter_and_other_layers(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "variables", "list", "--layer", "project:g/p", "--scope", "production", "--settings", str(path)
    )
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == ["KEY", "CERT"]
    code, out, _ = run(capsys, "variables", "list", "--layer", "group:g", "--settings", str(path))
    assert out.splitlines()[1].split() == ["G", "group-value", "env_var", "*", "-"]
    code, out, _ = run(capsys, "variables", "list", "--layer", "instance", "--settings", str(path))
    assert (code, out) == (0, "KEY  VALUE  TYPE  SCOPE  FLAGS  DESCRIPTION\n")


def test_list_shortens_long_values_and_escapes_control_characters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.yml"
    path.write_text(
        f'instance: {{variables: [{{key: LONG, value: "{"x" * 100}"}}, {{key: ESC, value: "a\\e[31mb"}}]}}\n'
    )
    code, out, _ = run(capsys, "variables", "list", "--layer", "instance", "--settings", str(path))
    assert code == 0
    assert "x" * 57 + "..." in out
    assert "x" * 58 not in out
    assert "\x1b" not in out and "a\\x1b[31mb" in out
    code, out, _ = run(capsys, "variables", "list", "--layer", "instance", "--settings", str(path), "--format", "json")
    assert json.loads(out)[0]["value"] == "x" * 100


def test_list_missing_settings_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.yml"
    code, out, err = run(capsys, "variables", "list", "--layer", "instance", "--settings", str(missing))
    assert (code, out, err) == (1, "", f"{missing}: settings file not found\n")


def test_list_invalid_settings_file_reports_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(f"instance:\n  variables:\n    - {{key: K, value: {NEW_SECRET}, bogus: 1}}\n")
    code, _, err = run(capsys, "variables", "list", "--layer", "instance", "--settings", str(bad))
    assert code == 1
    assert err.startswith(f"{bad}:3: instance variable 'K': unknown field 'bogus'")
    assert_no_secret(err)


def test_settings_file_from_airflow_configuration(
    path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIRFLOW__CI_VARS__SETTINGS_FILE", str(path))
    code, out, _ = run(capsys, "variables", "list", "--layer", "group:g")
    assert code == 0
    assert "group-value" in out


def test_no_settings_file_lists_nothing_and_cannot_set(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "variables", "list", "--layer", "instance")
    assert (code, out.splitlines()) == (0, ["KEY  VALUE  TYPE  SCOPE  FLAGS  DESCRIPTION"])
    code, out, err = run(capsys, "variables", "set", "K", "v", "--layer", "instance")
    assert (code, out) == (1, "")
    assert err == "no settings file is configured ([ci_vars] settings_file)\n"


# --- set ------------------------------------------------------------------------------------


def test_set_creates_a_variable(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "variables",
        "set",
        "NEW",
        "new-value",
        "--layer",
        "project:g/p",
        "--protected",
        "--raw",
        "--file",
        "--scope",
        "review/*",
        "--description",
        "made by the CLI",
        "--settings",
        str(path),
    )
    assert (code, err) == (0, "")
    assert out == "Set variable 'NEW' (environment scope 'review/*') in project:g/p.\n"
    (new,) = [v for v in load_settings(path).projects["g/p"] if v.key == "NEW"]
    assert (new.value, new.variable_type, new.protected, new.raw, new.masked) == (
        "new-value",
        "file",
        True,
        True,
        False,
    )
    assert (new.environment_scope, new.description) == ("review/*", "made by the CLI")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_set_creates_the_settings_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fresh.yml"
    code, _, _ = run(capsys, "variables", "set", "K", "v", "--layer", "instance", "--settings", str(path))
    assert code == 0
    assert load_settings(path).instance[0].value == "v"


def test_set_replaces_same_key_and_scope(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(capsys, "variables", "set", "PLAIN", "other", "--layer", "project:g/p", "--settings", str(path))
    assert code == 0
    plain = [v for v in load_settings(path).projects["g/p"] if v.key == "PLAIN"]
    assert [(v.value, v.description) for v in plain] == [("other", None)]


def test_set_reads_the_value_from_stdin(
    path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(NEW_SECRET + "\n"))
    code, out, err = run(
        capsys, "variables", "set", "TOKEN", "-", "--masked", "--hidden", "--layer", "group:g", "--settings", str(path)
    )
    assert code == 0
    assert_no_secret(out, err)
    (token,) = [v for v in load_settings(path).groups["g"] if v.key == "TOKEN"]
    assert (token.value, token.masked, token.hidden) == (NEW_SECRET, True, True)


def test_set_file_from_stdin_keeps_the_content(
    path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    content = "-----BEGIN KEY-----\nabc\n-----END KEY-----\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(content))
    code, _, _ = run(
        capsys, "variables", "set", "KEY_FILE", "-", "--file", "--layer", "group:g", "--settings", str(path)
    )
    assert code == 0
    (key_file,) = [v for v in load_settings(path).groups["g"] if v.key == "KEY_FILE"]
    assert (key_file.value, key_file.variable_type) == (content, "file")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bad-key", NEW_SECRET], "instance variable 'bad-key': Validation failed: Key can contain only letters"),
        (["K", NEW_SECRET + " space", "--masked"], "instance variable 'K': "),
        (["K", NEW_SECRET, "--hidden"], "Validation failed: Masked of 'K' should be true when variable is hidden"),
        (["K", NEW_SECRET, "--scope", "production"], "instance variables cannot have an environment scope"),
        (["K", NEW_SECRET, "--scope", "a|b"], "instance variables cannot have an environment scope"),
        (["K", NEW_SECRET, "--description", "d" * 256], "Description is too long (maximum is 255 characters)"),
        (["K", "x" * 10_001], "Value of 'K' is too long (maximum is 10000 characters)"),
    ],
)
def test_set_refuses_invalid_variables(
    path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    before = path.read_bytes()
    code, out, err = run(capsys, "variables", "set", *argv, "--layer", "instance", "--settings", str(path))
    assert (code, out) == (1, "")
    assert message in err
    assert err.count("\n") == 1
    assert_no_secret(err)
    assert path.read_bytes() == before


def test_set_hidden_update_rules(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "variables", "set", "HID", NEW_SECRET, "--masked", "--layer", "project:g/p", "--settings", str(path)
    )
    assert (code, out) == (1, "")
    assert err == "project:g/p variable 'HID': Updating hidden attribute is not allowed on updates.\n"
    code, out, err = run(
        capsys, "variables", "set", "HID", NEW_SECRET, "--hidden", "--layer", "project:g/p", "--settings", str(path)
    )
    assert (
        err == "project:g/p variable 'HID': Updating masked attribute is not allowed on updates for hidden variables.\n"
    )
    code, out, err = run(
        capsys,
        "variables",
        "set",
        "HID",
        NEW_SECRET,
        "--masked",
        "--hidden",
        "--layer",
        "project:g/p",
        "--settings",
        str(path),
    )
    assert code == 0
    assert_no_secret(out, err)


def test_hidden_and_masked_values_never_printed(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every command, every format: the stored secrets never reach stdout or stderr."""
    outputs: list[str] = []
    for argv in (
        ["list", "--layer", "project:g/p"],
        ["list", "--layer", "project:g/p", "--format", "json"],
        ["set", "HID", HIDDEN, "--masked", "--hidden", "--layer", "project:g/p"],
        ["set", "HID", HIDDEN, "--masked", "--layer", "project:g/p"],
        ["set", "HID", HIDDEN + " x", "--masked", "--hidden", "--layer", "project:g/p"],
        ["set", "MSK", MASKED, "--masked", "--protected", "--layer", "project:g/p"],
        ["set", "bad key", MASKED, "--masked", "--layer", "project:g/p"],
        ["unset", "HID", "--layer", "project:g/p"],
        ["list", "--layer", "project:g/p"],
    ):
        main(["variables", *argv, "--settings", str(path)])
        outputs.extend(capsys.readouterr())
    assert_no_secret(*outputs)


# --- unset ----------------------------------------------------------------------------------


def test_unset(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "variables", "unset", "CERT", "--scope", "production", "--layer", "project:g/p", "--settings", str(path)
    )
    assert (code, out, err) == (0, "Removed variable 'CERT' (environment scope 'production') from project:g/p.\n", "")
    assert "CERT" not in [v.key for v in load_settings(path).projects["g/p"]]


def test_unset_nothing_exits_1(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = path.read_bytes()
    code, out, err = run(capsys, "variables", "unset", "CERT", "--layer", "project:g/p", "--settings", str(path))
    assert (code, out, err) == (1, "", "project:g/p: no variable 'CERT' with environment scope '*'\n")
    assert path.read_bytes() == before


# --- usage and help -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["variables"],
        ["variables", "list"],  # --layer is required
        ["variables", "list", "--layer", "team:x"],
        ["variables", "list", "--layer", "group:"],
        ["variables", "list", "--layer", "instance", "--format", "xml"],
        ["variables", "set", "K", "--layer", "instance"],
        ["variables", "unset", "--layer", "instance"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "usage:" in capsys.readouterr().err


def test_invalid_layer_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["variables", "list", "--layer", "team:x"]) == 2
    assert "invalid layer 'team:x': use instance, group:PATH or project:PATH" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["variables", "--help"], "Manage the stored CI/CD variables"),
        (["variables", "list", "--help"], "--format"),
        (["variables", "set", "--help"], "--hidden"),
        (["variables", "unset", "--help"], "--scope"),
        (["--help"], "list, set and unset instance, group and project variables"),
    ],
)
def test_help_exits_0(argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 0
    assert expected in capsys.readouterr().out


def test_variables_is_registered() -> None:
    assert "variables" in cli.COMMANDS and "dotenv" in cli.COMMANDS


def test_invalid_set_fails_before_airflow_is_imported(tmp_path: Path) -> None:
    code = (
        "import sys; from airflow_ci_vars.cli import main; "
        f"rc = main(['variables', 'set', 'bad key', 'v', '--layer', 'instance', '--settings', {str(tmp_path)!r}]); "
        "sys.exit(10 + rc if any(m == 'airflow' or m.startswith('airflow.') for m in sys.modules) else rc)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 1, result.stderr


# --- any store: the CLI only uses the VariableStore protocol --------------------------------


class MemoryStore:
    """A stand-in for the Vault store."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.variables: dict[tuple[str, str, str], Variable] = {}
        self.fail = fail

    def load(self, project: str | None = None) -> Settings:
        return Settings()

    def list_variables(self, ref: LayerRef) -> tuple[Variable, ...]:
        return tuple(v for (layer, _, _), v in self.variables.items() if layer == str(ref))

    def set_variable(self, ref: LayerRef, variable: Variable) -> None:
        if self.fail is not None:
            raise self.fail
        self.variables[(str(ref), variable.key, variable.environment_scope)] = variable

    def unset_variable(self, ref: LayerRef, key: str, environment_scope: str = "*") -> bool:
        return self.variables.pop((str(ref), key, environment_scope), None) is not None


def test_other_stores_and_ignored_settings_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    memory = MemoryStore()
    monkeypatch.setattr(configured, "configured_store", lambda settings_file=None: memory)
    code, _, err = run(capsys, "variables", "set", "K", NEW_SECRET, "--masked", "--layer", "group:g")
    assert (code, err) == (0, "")
    code, out, err = run(capsys, "variables", "list", "--layer", "group:g", "--settings", str(tmp_path / "x.yml"))
    assert code == 0
    assert "[MASKED]" in out
    assert err == "warning: --settings is ignored: the configured secrets backend is CIVaultBackend\n"
    assert_no_secret(out, err)


def test_store_errors_are_reported_without_the_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    memory = MemoryStore(fail=ConnectionError(f"lost connection while writing {NEW_SECRET}"))
    monkeypatch.setattr(configured, "configured_store", lambda settings_file=None: memory)
    code, out, err = run(capsys, "variables", "set", "K", NEW_SECRET, "--masked", "--layer", "group:g")
    assert (code, out) == (1, "")
    assert err == "group:g: ConnectionError: lost connection while writing [MASKED]\n"


# --- the installed console script ---------------------------------------------------------


def _console_script() -> str:
    found = shutil.which("airflow-ci-vars", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("console script airflow-ci-vars not installed next to the interpreter")
    return found


def test_installed_console_script(path: Path) -> None:
    script = _console_script()
    env = {**os.environ, "AIRFLOW__SECRETS__BACKEND": ""}
    env.pop("AIRFLOW__CI_VARS__SETTINGS_FILE", None)
    common = ["--layer", "project:g/p", "--settings", str(path)]
    created = subprocess.run(
        [script, "variables", "set", "TOKEN", "-", "--masked", "--hidden", *common],
        input=NEW_SECRET + "\n",
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert (created.returncode, created.stderr) == (0, "")
    assert created.stdout == "Set variable 'TOKEN' (environment scope '*') in project:g/p.\n"
    listed = subprocess.run(
        [script, "variables", "list", *common, "--format", "json"], capture_output=True, text=True, env=env, check=False
    )
    assert listed.returncode == 0
    assert {r["key"]: r["value"] for r in json.loads(listed.stdout)}["TOKEN"] == "[MASKED]"
    refused = subprocess.run(
        [script, "variables", "set", "TOKEN", NEW_SECRET, "--masked", *common],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert refused.returncode == 1
    assert refused.stderr == "project:g/p variable 'TOKEN': Updating hidden attribute is not allowed on updates.\n"
    assert_no_secret(created.stdout, created.stderr, listed.stdout, listed.stderr, refused.stdout, refused.stderr)
    assert [v.value for v in load_settings(path).projects["g/p"] if v.key == "TOKEN"] == [NEW_SECRET]
