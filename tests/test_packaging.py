"""The package as Airflow and users see it: import cost, purity of the core, provider discovery."""

from __future__ import annotations

import ast
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import airflow_ci_vars

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "airflow_ci_vars"
BIN = Path(sys.executable).parent

# Sub-packages of the Airflow shell; everything else is the pure core.
AIRFLOW_SHELL = {
    "airflow_ci_vars.auth",
    "airflow_ci_vars.executors",
    "airflow_ci_vars.operators",
    "airflow_ci_vars.plugins",
    "airflow_ci_vars.secrets",
    "airflow_ci_vars.dag_factory",
    "airflow_ci_vars.local_run",
    "airflow_ci_vars.include_settings",
    "airflow_ci_vars.stores.configured",
    "airflow_ci_vars.stores.vault",
}


def core_modules() -> list[str]:
    names = [
        m.name
        for m in pkgutil.walk_packages([str(PACKAGE)], prefix="airflow_ci_vars.")
        if not any(m.name == s or m.name.startswith(s + ".") for s in AIRFLOW_SHELL)
    ]
    assert "airflow_ci_vars.variables.resolve" in names
    return names


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, **env},
    )


def test_importing_the_package_does_not_import_airflow() -> None:
    proc = run_python(
        "import sys, airflow_ci_vars\n"
        "loaded = sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.'))\n"
        "print(loaded)\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_core_works_when_airflow_is_unimportable() -> None:
    modules = core_modules()
    code = (
        "import sys, importlib\n"
        "sys.modules['airflow'] = None  # any 'import airflow...' now raises ImportError\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "from airflow_ci_vars import RunContext, VariableLayers, resolve, Masker\n"
        "env = resolve(VariableLayers(project={'A': 'x'}, job={'B': '$A-y'}), RunContext(job_name='j'))\n"
        "print(env.environment['B'], Masker(['s3cr3t-value']).mask('a s3cr3t-value b'))\n"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "x-y a [MASKED] b"


def test_no_core_module_imports_airflow() -> None:
    offenders = []
    for name in core_modules():
        rel = name.replace(".", "/")
        path = ROOT / f"{rel}.py"
        if not path.exists():
            path = ROOT / rel / "__init__.py"
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module]
            offenders += [f"{path.name}: {t}" for t in targets if t == "airflow" or t.startswith("airflow.")]
    assert offenders == []


def test_provider_info_package_name_matches_distribution() -> None:
    from importlib.metadata import distribution

    from packaging.utils import canonicalize_name

    info = airflow_ci_vars.get_provider_info()
    assert info["package-name"] == canonicalize_name(distribution("airflow-ci-vars").metadata["Name"])


def test_entry_point_is_declared() -> None:
    from importlib.metadata import entry_points

    eps = entry_points(group="apache_airflow_provider")
    ours = [ep for ep in eps if ep.dist is not None and ep.dist.name in ("airflow-ci-vars", "airflow_ci_vars")]
    assert len(ours) == 1
    assert ours[0].load() is airflow_ci_vars.get_provider_info


def airflow_providers(command: str, home: Path) -> subprocess.CompletedProcess[str]:
    """``airflow providers COMMAND --output plain`` in a private AIRFLOW_HOME; must succeed."""
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
    }
    proc = subprocess.run(
        [str(BIN / "airflow"), "providers", command, "--output", "plain"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.airflow
def test_airflow_providers_list_finds_the_provider(tmp_path: Path) -> None:
    proc = airflow_providers("list", tmp_path)
    lines = [line.split() for line in proc.stdout.splitlines()]
    ours = [parts for parts in lines if parts and parts[0] == "airflow-ci-vars"]
    assert ours, proc.stdout
    assert airflow_ci_vars.__version__ in ours[0]


def test_console_script_is_installed() -> None:
    proc = subprocess.run([str(BIN / "airflow-ci-vars"), "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "dotenv" in proc.stdout


@pytest.mark.airflow
def test_airflow_lists_the_extra_link(tmp_path: Path) -> None:
    proc = airflow_providers("links", tmp_path)
    assert "airflow_ci_vars.operators.ci_job.EnvironmentLink" in proc.stdout


def test_airflow_loads_the_permission_gate_on_the_api_server() -> None:
    """The plugin's middleware is what Airflow's api-server adds to its root app (docs/security.md)."""
    proc = run_python(
        "from airflow import plugins_manager\n"
        "apps, middlewares = plugins_manager.get_fastapi_plugins()\n"
        "print([m['middleware'].__module__ + '.' + m['middleware'].__name__ for m in middlewares])\n",
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "['airflow_ci_vars.plugins.gate.PermissionGate']"
