"""The ``airflow-ci-vars`` command line: ``dotenv check``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_ci_vars import cli
from airflow_ci_vars.cli import main


@pytest.fixture
def good_env(tmp_path: Path) -> Path:
    path = tmp_path / "build.env"
    path.write_bytes(b'B=2\r\nA="quoted value"\nB=3\nURL=https://x/?a=b\n')
    return path


@pytest.fixture
def bad_env(tmp_path: Path) -> Path:
    path = tmp_path / "bad.env"
    path.write_text("A=1\nexport B=2\n")
    return path


def test_dotenv_check_prints_variables_in_file_order(good_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dotenv", "check", str(good_env)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == ["B=3", 'A="quoted value"', "URL=https://x/?a=b"]
    assert err == ""


def test_dotenv_check_reports_file_line_and_message(bad_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dotenv", "check", str(bad_env)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"{bad_env}:2: Validation failed: Key can contain only letters, digits and '_'.\n"


def test_dotenv_check_whole_file_error_has_no_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "many.env"
    path.write_text("".join(f"K{i}=v\n" for i in range(3)))
    assert main(["dotenv", "check", str(path), "--max-variables", "2"]) == 1
    assert capsys.readouterr().err == f"{path}: Dotenv files cannot have more than 2 variables\n"


def test_dotenv_check_max_bytes_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "big.env"
    path.write_text("A=123456789\n")
    assert main(["dotenv", "check", "--max-bytes", "5", str(path)]) == 1
    assert capsys.readouterr().err == f"{path}: Dotenv Artifact Too Big. Maximum Allowable Size: 5\n"
    assert main(["dotenv", "check", "--max-bytes", "0", str(path)]) == 0
    assert capsys.readouterr().out == "A=123456789\n"


def test_dotenv_check_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "missing.env"
    assert main(["dotenv", "check", str(path)]) == 1
    assert capsys.readouterr().err == f"{path}: No such file or directory\n"


def test_dotenv_check_error_does_not_print_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "secret.env"
    path.write_text("bad key=s3cr3t\n")
    assert main(["dotenv", "check", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "s3cr3t" not in out + err


@pytest.mark.parametrize(
    "argv",
    [[], ["dotenv"], ["dotenv", "check"], ["nope"], ["dotenv", "check", "f", "--max-bytes", "-1"]],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "usage:" in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dotenv", "check", "--help"]) == 0
    assert "--max-variables" in capsys.readouterr().out


def test_commands_are_registered_in_one_table() -> None:
    assert "dotenv" in cli.COMMANDS


def test_cli_does_not_import_airflow() -> None:
    code = (
        "import sys, airflow_ci_vars.cli; "
        "sys.exit(any(m == 'airflow' or m.startswith('airflow.') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def _console_script() -> str:
    bin_dir = Path(sys.executable).parent
    found = shutil.which("airflow-ci-vars", path=str(bin_dir))
    if found is None:
        pytest.skip(f"console script airflow-ci-vars not installed in {bin_dir}")
    return found


def test_installed_console_script(good_env: Path, bad_env: Path) -> None:
    script = _console_script()
    ok = subprocess.run([script, "dotenv", "check", str(good_env)], capture_output=True, text=True, check=False)
    assert (ok.returncode, ok.stdout.splitlines(), ok.stderr) == (
        0,
        ["B=3", 'A="quoted value"', "URL=https://x/?a=b"],
        "",
    )
    bad = subprocess.run([script, "dotenv", "check", str(bad_env)], capture_output=True, text=True, check=False)
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert bad.stderr == f"{bad_env}:2: Validation failed: Key can contain only letters, digits and '_'.\n"


def test_module_runs_as_a_script(bad_env: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow_ci_vars.cli", "dotenv", "check", str(bad_env)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"{bad_env}:2: ")
