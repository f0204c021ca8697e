"""CIJobOperator with the Vault store and the `secrets:` keyword, on a real Airflow and OpenBao."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import Vault, start_bao

from airflow_ci_vars.settings import load_settings
from airflow_ci_vars.stores.vault import VaultStore, reset_vault_clients

pytestmark = [pytest.mark.vault, pytest.mark.airflow]

DAGS = Path(__file__).resolve().parent.parent / "on_airflow" / "dags"
SECRET = "db-pass-Vault7734"
API_KEY = "api-key-Vault5521"


@pytest.fixture(scope="module", autouse=True)
def airflow_db() -> None:
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def use_vault(monkeypatch: pytest.MonkeyPatch, url: str, token: str) -> None:
    monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND", "airflow_ci_vars.secrets.vault.CIVaultBackend")
    kwargs = {"url": url, "auth_type": "token", "token": token, "ci_mount_point": "ci", "ci_retry_delay": "0.05"}
    monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND_KWARGS", json.dumps(kwargs))


def seed(url: str, token: str, root: Any) -> None:
    mounts = root.sys.list_mounted_secrets_engines()
    if "ci/" not in mounts.get("data", mounts):
        root.sys.enable_secrets_engine("kv", path="ci", options={"version": "2"})
    VaultStore(url=url, auth_type="token", token=token, mount_point="ci").import_settings(
        load_settings(DAGS / "settings.yml")
    )
    root.secrets.kv.v2.create_or_update_secret(path="production/db", secret={"password": SECRET}, mount_point="secret")
    root.secrets.kv.v2.create_or_update_secret(path="production/api", secret={"key": API_KEY}, mount_point="secret")


def run_dag(out: Path) -> str:
    spec = importlib.util.spec_from_file_location("ci_vault_under_test", DAGS / "ci_vault.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dr = module.dag.test(run_conf={"variables": {"OUT": str(out)}})
    (ti,) = dr.get_task_instances()
    return str(getattr(ti.state, "value", ti.state))


def test_secrets_keyword_and_vault_layers_reach_the_job(
    vault: Vault, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    seed(vault.url, vault.root_token, vault.root())
    use_vault(monkeypatch, vault.url, vault.root_token)
    assert run_dag(tmp_path) == "success"
    assert (tmp_path / "secret_file.txt").read_text() == SECRET  # file: true (the default)
    secret_path = Path((tmp_path / "secret_path.txt").read_text().strip())
    assert secret_path.name == "DB_PASSWORD" and not secret_path.exists()  # removed after the job
    assert (tmp_path / "api_key.txt").read_text().strip() == API_KEY  # file: false
    assert (tmp_path / "level.txt").read_text().strip() == "project"  # project layer from Vault
    output = capfd.readouterr()
    text = output.out + output.err
    assert "in the log: [MASKED] and [MASKED]" in text
    assert SECRET not in text and API_KEY not in text


def test_vault_outage_fails_the_task_naming_the_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    server = start_bao(tmp_path / "bao")
    try:
        seed(server.url, server.root_token, server.root())
        use_vault(monkeypatch, server.url, server.root_token)
    finally:
        server.stop()
    reset_vault_clients()
    assert run_dag(tmp_path) == "failed"
    output = capfd.readouterr()
    text = output.out + output.err
    assert "vault ci/" in text and "unavailable" in text
    assert SECRET not in text and API_KEY not in text and server.root_token not in text
    assert os.environ.get("AIRFLOW__SECRETS__BACKEND")  # still configured: the failure is the outage
