"""``include:remote`` through ``RemoteCache``: a real HTTP server on 127.0.0.1, scripted per test.

Covers the answers a server can give (200, 304, 404, 500, redirects, HTML, bytes that are not
UTF-8), the bounds (a dribbling server, a body past ``max_bytes``), ``integrity``, the TTL (with
the ``clock`` parameter, no sleeps), a server gone (stale copy with a warning), offline loads, the
allowlist against bypass attempts, and credentials that must never be written anywhere.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import socket
import ssl
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from airflow_ci_vars.errors import IncludeSourceError
from airflow_ci_vars.pipeline.external.remote import Fetched, RemoteCache, allowed_url, shown_url

YAML = b"build:\n  script: echo hi\n"
SECRET = "Bearer s3cr3t-T0KEN-value"

Script = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Server:
    """A ThreadingHTTPServer whose answer to each path is a function of the test's."""

    scheme: str = "http"
    routes: dict[str, Script] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    httpd: ThreadingHTTPServer | None = None

    @property
    def base(self) -> str:
        assert self.httpd is not None
        return f"{self.scheme}://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def allowed(self) -> list[str]:
        return [self.base + "/"]

    def url(self, path: str) -> str:
        return self.base + path

    def hits(self, path: str) -> int:
        return sum(1 for seen, _headers in self.requests if seen == path)

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


def _start(tls: ssl.SSLContext | None = None) -> Server:
    server = Server(scheme="https" if tls else "http")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server.requests.append((self.path, dict(self.headers.items())))
            script = server.routes.get(self.path)
            if script is None:
                self.send_error(404)
                return
            script(self)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
        httpd.handle_error = lambda request, address: None  # type: ignore[method-assign]  # refused handshakes
    server.httpd = httpd
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@pytest.fixture
def server() -> Iterator[Server]:
    started = _start()
    yield started
    started.stop()


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def answer(body: bytes, status: int = 200, **headers: str) -> Script:
    def script(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", headers.pop("content_type", "text/plain; charset=utf-8"))
        for name, value in headers.items():
            handler.send_header(name.replace("_", "-"), value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return script


def sri(body: bytes) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode()


def cache_for(server: Server, tmp_path: Path, **options: object) -> RemoteCache:
    options.setdefault("allowed", server.allowed)
    options.setdefault("timeout", 2.0)
    return RemoteCache(tmp_path / "cache", **options)  # type: ignore[arg-type]


def cache_files(tmp_path: Path) -> list[Path]:
    return [path for path in (tmp_path / "cache").rglob("*") if path.is_file()]


# -- answers ------------------------------------------------------------------------------------


def test_a_yaml_file_is_fetched_cached_privately_and_reused_within_the_ttl(server: Server, tmp_path: Path) -> None:
    server.routes["/ci.yml"] = answer(YAML)
    clock = Clock()
    cache = cache_for(server, tmp_path, clock=clock, ttl_seconds=60)

    first = cache.fetch(server.url("/ci.yml"))
    assert first == Fetched(text=YAML.decode(), sha256=hashlib.sha256(YAML).hexdigest(), fetched_at=clock.now)

    clock.now += 59
    assert cache.fetch(server.url("/ci.yml")) == first
    assert server.hits("/ci.yml") == 1
    assert cache.cached(server.url("/ci.yml")) == first

    remote = tmp_path / "cache" / "remote"
    assert stat.S_IMODE(remote.stat().st_mode) == 0o700
    (entry,) = remote.iterdir()
    assert entry.name == hashlib.sha256(server.url("/ci.yml").encode()).hexdigest()
    assert stat.S_IMODE(entry.stat().st_mode) == 0o700
    assert (entry / "body").read_bytes() == YAML
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["sha256"] == first.sha256 and meta["fetched_at"] == first.fetched_at
    assert not [p for p in entry.iterdir() if p.name.endswith(".tmp")]


def test_after_the_ttl_an_etag_revalidation_answered_304_keeps_the_copy(server: Server, tmp_path: Path) -> None:
    def script(handler: BaseHTTPRequestHandler) -> None:
        if handler.headers.get("If-None-Match") == '"v1"':
            handler.send_response(304)
            handler.send_header("ETag", '"v1"')
            handler.end_headers()
            return
        answer(YAML, ETag='"v1"', Last_Modified="Mon, 07 Dec 2026 10:00:00 GMT")(handler)

    server.routes["/ci.yml"] = script
    clock = Clock()
    cache = cache_for(server, tmp_path, clock=clock, ttl_seconds=60)
    cache.fetch(server.url("/ci.yml"))

    clock.now += 61
    again = cache.fetch(server.url("/ci.yml"))
    assert again.text == YAML.decode() and again.fetched_at == clock.now and again.warning is None
    _path, headers = server.requests[-1]
    assert headers["If-None-Match"] == '"v1"'
    assert headers["If-Modified-Since"] == "Mon, 07 Dec 2026 10:00:00 GMT"

    clock.now += 30  # the revalidation restarted the TTL
    cache.fetch(server.url("/ci.yml"))
    assert server.hits("/ci.yml") == 2


def test_a_changed_file_is_fetched_again_after_the_ttl(server: Server, tmp_path: Path) -> None:
    server.routes["/ci.yml"] = answer(YAML)
    clock = Clock()
    cache = cache_for(server, tmp_path, clock=clock, ttl_seconds=60)
    cache.fetch(server.url("/ci.yml"))
    server.routes["/ci.yml"] = answer(b"new: file\n")
    clock.now += 60
    assert cache.fetch(server.url("/ci.yml")).text == "new: file\n"
    assert cache.cached(server.url("/ci.yml")).text == "new: file\n"  # type: ignore[union-attr]


def test_404_is_gitlabs_http_code_error(server: Server, tmp_path: Path) -> None:
    url = server.url("/missing.yml")
    with pytest.raises(IncludeSourceError) as caught:
        cache_for(server, tmp_path).fetch(url)
    assert caught.value.message == f"Remote file `{url}` could not be fetched because of HTTP code `404` error!"
    assert caught.value.source == url and not caught.value.offline


def test_404_after_the_ttl_is_an_error_even_with_a_cached_copy(server: Server, tmp_path: Path) -> None:
    server.routes["/ci.yml"] = answer(YAML)
    clock = Clock()
    cache = cache_for(server, tmp_path, clock=clock, ttl_seconds=60)
    cache.fetch(server.url("/ci.yml"))
    del server.routes["/ci.yml"]
    clock.now += 61
    with pytest.raises(IncludeSourceError, match="HTTP code `404` error!"):
        cache.fetch(server.url("/ci.yml"))


def test_500_without_a_copy_is_an_error_and_with_one_serves_the_stale_copy(server: Server, tmp_path: Path) -> None:
    url = server.url("/ci.yml")
    server.routes["/ci.yml"] = answer(b"oops", status=500)
    clock = Clock()
    cache = cache_for(server, tmp_path, clock=clock, ttl_seconds=60)
    with pytest.raises(IncludeSourceError) as caught:
        cache.fetch(url)
    assert caught.value.message == f"Remote file `{url}` could not be fetched because of HTTP code `500` error!"

    server.routes["/ci.yml"] = answer(YAML)
    fresh = cache.fetch(url)
    server.routes["/ci.yml"] = answer(b"oops", status=503)
    clock.now += 7200
    stale = cache.fetch(url)
    assert stale.text == YAML.decode() and stale.fetched_at == fresh.fetched_at
    assert stale.warning is not None
    assert stale.warning.startswith(f"Remote file `{url}` could not be fetched because of HTTP code `503` error!")
    assert "7200 s old" in stale.warning


def test_a_redirect_is_refused_and_never_followed(server: Server, tmp_path: Path) -> None:
    other = _start()
    try:
        other.routes["/target.yml"] = answer(YAML)
        server.routes["/ci.yml"] = answer(
            b"", status=302, Location=other.url("/target.yml?private_token=abc")
        )  # both servers are allowed: still not followed
        cache = cache_for(server, tmp_path, allowed=[*server.allowed, *other.allowed])
        with pytest.raises(IncludeSourceError) as caught:
            cache.fetch(server.url("/ci.yml"))
        message = caught.value.message
        assert message.startswith(
            f"Remote file `{server.url('/ci.yml')}` could not be fetched because of HTTP code `302`"
        )
        assert "redirects are not followed" in message
        assert other.url("/target.yml?private_token=[FILTERED]") in message and "abc" not in message
        assert other.requests == []
    finally:
        other.stop()


def test_an_html_page_is_refused_as_not_yaml(server: Server, tmp_path: Path) -> None:
    server.routes["/ci.yml"] = answer(b"<html><body>Sign in</body></html>", content_type="text/html; charset=utf-8")
    with pytest.raises(IncludeSourceError, match="answered with an HTML page, not YAML"):
        cache_for(server, tmp_path).fetch(server.url("/ci.yml"))
    assert cache_files(tmp_path) == []


def test_a_body_that_is_not_utf8_is_refused(server: Server, tmp_path: Path) -> None:
    server.routes["/ci.yml"] = answer(b"key: caf\xe9\n")
    with pytest.raises(IncludeSourceError, match=r"is not UTF-8 text \(invalid byte at offset 8\)"):
        cache_for(server, tmp_path).fetch(server.url("/ci.yml"))
    assert cache_files(tmp_path) == []


# -- bounds ---------------------------------------------------------------------------------------


def test_a_server_dribbling_the_body_is_cut_at_the_total_timeout(server: Server, tmp_path: Path) -> None:
    def dribble(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        for _ in range(100):  # one byte every 0.1 s: each read is quick, the whole is 10 s
            try:
                handler.wfile.write(b"a")
                handler.wfile.flush()
            except OSError:
                return
            time.sleep(0.1)

    server.routes["/ci.yml"] = dribble
    url = server.url("/ci.yml")
    started = time.monotonic()
    with pytest.raises(IncludeSourceError) as caught:
        cache_for(server, tmp_path, timeout=0.5).fetch(url)
    assert time.monotonic() - started < 1.5
    assert caught.value.message == f"Remote file `{url}` could not be fetched because of a timeout error!"


def test_a_server_dribbling_its_headers_is_cut_at_the_total_timeout(server: Server, tmp_path: Path) -> None:
    def dribble(handler: BaseHTTPRequestHandler) -> None:
        for byte in b"HTTP/1.0 200 OK\r\nX-Slow: " + b"a" * 100:
            try:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
            except OSError:
                return
            time.sleep(0.05)

    server.routes["/ci.yml"] = dribble
    started = time.monotonic()
    with pytest.raises(IncludeSourceError, match="because of a timeout error!"):
        cache_for(server, tmp_path, timeout=0.5).fetch(server.url("/ci.yml"))
    assert time.monotonic() - started < 1.5


def test_a_server_that_never_accepts_is_cut_at_the_total_timeout(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)  # never accepted: the backlog fills, later connects and requests hang
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        url = f"http://127.0.0.1:{port}/ci.yml"
        started = time.monotonic()
        with pytest.raises(IncludeSourceError) as caught:
            RemoteCache(tmp_path, allowed=[url], timeout=0.5).fetch(url)
        assert time.monotonic() - started < 1.5
        assert caught.value.message == f"Remote file `{url}` could not be fetched because of a timeout error!"
    finally:
        for sock in [*fillers, listener]:
            sock.close()


@pytest.mark.parametrize("announce_length", [False, True])
def test_a_body_past_max_bytes_stops_the_read(server: Server, tmp_path: Path, announce_length: bool) -> None:
    total = 64 * 1024 * 1024
    sent = {"bytes": 0}
    done = threading.Event()

    def huge(handler: BaseHTTPRequestHandler) -> None:
        try:
            handler.send_response(200)
            if announce_length:
                handler.send_header("Content-Length", str(total))
            handler.end_headers()
            chunk = b"a: b\n" * (64 * 1024 // 5)
            while sent["bytes"] < total:
                handler.wfile.write(chunk)
                sent["bytes"] += len(chunk)
        except OSError:
            pass
        finally:
            done.set()

    server.routes["/big.yml"] = huge
    url = server.url("/big.yml")
    with pytest.raises(IncludeSourceError) as caught:
        cache_for(server, tmp_path, max_bytes=10_000).fetch(url)
    assert caught.value.message == f"Remote file `{url}` could not be fetched because it is larger than 10000 bytes!"
    assert done.wait(10), "the server kept sending after the client gave up"
    assert sent["bytes"] < total
    assert cache_files(tmp_path) == []


def chunked(pieces: list[bytes]) -> Script:
    def script(handler: BaseHTTPRequestHandler) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        try:
            for piece in pieces:
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            handler.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass

    return script


def test_a_chunked_body_is_read_whole_and_bounded(server: Server, tmp_path: Path) -> None:
    server.routes["/ci.yml"] = chunked([YAML[:5], YAML[5:]])
    server.routes["/big.yml"] = chunked([b"a: b\n" * 1000] * 100)
    cache = cache_for(server, tmp_path, max_bytes=10_000)
    assert cache.fetch(server.url("/ci.yml")).text == YAML.decode()
    with pytest.raises(IncludeSourceError, match="larger than 10000 bytes!"):
        cache.fetch(server.url("/big.yml"))


def test_a_body_cut_short_of_its_content_length_is_an_error(server: Server, tmp_path: Path) -> None:
    def short(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        handler.wfile.write(YAML)

    server.routes["/ci.yml"] = short
    with pytest.raises(IncludeSourceError, match="because of HTTP error!"):
        cache_for(server, tmp_path).fetch(server.url("/ci.yml"))
    assert cache_files(tmp_path) == []


def test_a_body_of_exactly_max_bytes_is_accepted(server: Server, tmp_path: Path) -> None:
    server.routes["/ci.yml"] = answer(YAML)
    assert cache_for(server, tmp_path, max_bytes=len(YAML)).fetch(server.url("/ci.yml")).text == YAML.decode()


# -- integrity ----------------------------------------------------------------------------------


def test_integrity_that_matches_is_accepted(server: Server, tmp_path: Path) -> None:
    server.routes["/ci.yml"] = answer(YAML)
    assert cache_for(server, tmp_path).fetch(server.url("/ci.yml"), integrity=sri(YAML)).text == YAML.decode()


def test_integrity_mismatch_is_gitlabs_error_and_nothing_is_cached(server: Server, tmp_path: Path) -> None:
    server.routes["/ci.yml"] = answer(YAML)
    url = server.url("/ci.yml")
    with pytest.raises(IncludeSourceError) as caught:
        cache_for(server, tmp_path).fetch(url, integrity=sri(b"something else"))
    assert caught.value.message == f"Remote file `{url}` failed integrity check!"
    assert cache_files(tmp_path) == []


@pytest.mark.parametrize(
    ("integrity", "message"),
    [
        ("sha512-" + base64.b64encode(b"x" * 64).decode(), "integrity hash must start with 'sha256-'"),
        (base64.b64encode(hashlib.sha256(YAML).digest()).decode(), "integrity hash must start with 'sha256-'"),
        ("sha256-not*base64!", "integrity hash must be base64 encoded"),
        ("sha256-" + base64.b64encode(hashlib.sha256(YAML).digest()).decode().rstrip("="), "must be base64 encoded"),
    ],
)
def test_a_malformed_integrity_is_refused_before_any_request(
    server: Server, tmp_path: Path, integrity: str, message: str
) -> None:
    server.routes["/ci.yml"] = answer(YAML)
    with pytest.raises(IncludeSourceError, match=message):
        cache_for(server, tmp_path).fetch(server.url("/ci.yml"), integrity=integrity)
    assert server.requests == []


def test_a_cached_copy_that_fails_a_new_integrity_is_fetched_again_once(server: Server, tmp_path: Path) -> None:
    server.routes["/ci.yml"] = answer(YAML)
    url = server.url("/ci.yml")
    cache = cache_for(server, tmp_path, ttl_seconds=3600)
    cache.fetch(url)
    server.routes["/ci.yml"] = answer(b"v: 2\n")

    assert cache.fetch(url, integrity=sri(b"v: 2\n")).text == "v: 2\n"  # within the TTL, yet fetched
    assert server.hits("/ci.yml") == 2
    assert cache.fetch(url, integrity=sri(b"v: 2\n")).text == "v: 2\n"  # now the copy matches
    assert server.hits("/ci.yml") == 2

    with pytest.raises(IncludeSourceError, match="failed integrity check!"):
        cache.fetch(url, integrity=sri(b"v: 3\n"))
    assert server.hits("/ci.yml") == 3  # one more request, no loop
    assert cache.cached(url).text == "v: 2\n"  # type: ignore[union-attr]


# -- the server gone, offline ---------------------------------------------------------------------


def test_a_stopped_server_serves_the_stale_copy_with_a_warning(server: Server, tmp_path: Path) -> None:
    server.routes["/ci.yml"] = answer(YAML)
    url = server.url("/ci.yml")
    clock = Clock()
    cache = cache_for(server, tmp_path, clock=clock, ttl_seconds=60)
    fresh = cache.fetch(url)
    server.stop()
    clock.now += 3600
    stale = cache.fetch(url)
    assert (stale.text, stale.sha256, stale.fetched_at) == (fresh.text, fresh.sha256, fresh.fetched_at)
    assert stale.warning is not None and "Connection refused" in stale.warning
    assert "Using the copy cached at" in stale.warning and "3600 s old" in stale.warning


def test_a_stopped_server_without_a_copy_is_gitlabs_connection_refused(server: Server, tmp_path: Path) -> None:
    url = server.url("/ci.yml")
    port = url.split(":")[2].split("/")[0]
    cache = cache_for(server, tmp_path)
    server.stop()
    with pytest.raises(IncludeSourceError) as caught:
        cache.fetch(url)
    assert caught.value.message == (
        f'Remote file could not be fetched because Connection refused - connect(2) for "127.0.0.1" port {port}!'
    )


def test_a_stale_copy_failing_the_integrity_is_not_served(server: Server, tmp_path: Path) -> None:
    server.routes["/ci.yml"] = answer(YAML)
    url = server.url("/ci.yml")
    clock = Clock()
    cache = cache_for(server, tmp_path, clock=clock, ttl_seconds=60)
    cache.fetch(url)
    server.stop()
    clock.now += 3600
    with pytest.raises(IncludeSourceError, match="Connection refused"):
        cache.fetch(url, integrity=sri(b"other"))


def test_offline_uses_any_cached_copy_and_never_the_network(server: Server, tmp_path: Path) -> None:
    server.routes["/ci.yml"] = answer(YAML)
    url = server.url("/ci.yml")
    clock = Clock()
    cache_for(server, tmp_path, clock=clock, ttl_seconds=60).fetch(url)
    clock.now += 10**7
    offline = cache_for(server, tmp_path, clock=clock, ttl_seconds=60, offline=True)
    got = offline.fetch(url, integrity=sri(YAML))
    assert got.text == YAML.decode() and got.warning is None
    with pytest.raises(IncludeSourceError) as caught:
        offline.fetch(url, integrity=sri(b"other"))
    assert caught.value.offline
    assert server.hits("/ci.yml") == 1


def test_offline_without_a_copy_says_so(server: Server, tmp_path: Path) -> None:
    server.routes["/ci.yml"] = answer(YAML)
    url = server.url("/ci.yml")
    with pytest.raises(IncludeSourceError) as caught:
        cache_for(server, tmp_path, offline=True).fetch(url)
    assert caught.value.offline and caught.value.source == url
    assert "offline" in caught.value.message
    assert server.requests == []


def test_a_torn_cache_entry_is_a_miss(server: Server, tmp_path: Path) -> None:
    server.routes["/ci.yml"] = answer(YAML)
    url = server.url("/ci.yml")
    cache = cache_for(server, tmp_path)
    cache.fetch(url)
    (body,) = [p for p in cache_files(tmp_path) if p.name == "body"]
    body.write_bytes(b"tampered: true\n")
    assert cache.cached(url) is None
    assert cache.fetch(url).text == YAML.decode()
    assert server.hits("/ci.yml") == 2


# -- the allowlist --------------------------------------------------------------------------------


def test_an_empty_allowlist_fetches_nothing_and_names_the_setting(server: Server, tmp_path: Path) -> None:
    server.routes["/ci.yml"] = answer(YAML)
    url = server.url("/ci.yml")
    with pytest.raises(IncludeSourceError) as caught:
        cache_for(server, tmp_path, allowed=()).fetch(url)
    assert "[ci_vars] include_remote_allowed" in caught.value.message and f"`{url}`" in caught.value.message
    assert server.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "https://allowed.com@evil.com/ci.yml",
        "https://allowed.com:443@evil.com/ci.yml",
        "https://evil.com/?allowed.com",
        "https://evil.com/allowed.com/ci.yml",
        "https://evil.com#@allowed.com/ci.yml",
        "https://allowed.com.evil.com/ci.yml",
        "https://evilallowed.com/ci.yml",
        "https://allowed.com\\@evil.com/ci.yml",
        "https://allowed.com%2f@evil.com/ci.yml",
        "https://allowed.com:8443/ci.yml",
        "ftp://allowed.com/ci.yml",
        "file:///etc/passwd",
        "//allowed.com/ci.yml",
        "https://allowed.com /ci.yml",
        "https://allowed.com\n.evil.com/ci.yml",
        "https://gitlab.example.com/group/../other/ci.yml",
        "https://gitlab.example.com/group/%2e%2e/other/ci.yml",
        "https://gitlab.example.com/group/..%2fother/ci.yml",
        "https://gitlab.example.com/group/..;/other/ci.yml",
        "https://gitlab.example.com/groupie/ci.yml",
        "http://gitlab.example.com/group/ci.yml",
        "https://example.org/ci.yml",
        "http://2130706433/ci.yml",
        "http://127.1/ci.yml",
        "http://0x7f.0.0.1/ci.yml",
        "http://10.0.0.1/ci.yml",
        "http://[::1]/ci.yml",
    ],
)
def test_allowlist_bypass_attempts_are_refused(url: str) -> None:
    allowed = ["allowed.com", "https://gitlab.example.com/group/", "*.example.org", "127.0.0.1"]
    assert not allowed_url(url, allowed)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://allowed.com/ci.yml", ["allowed.com"]),
        ("http://ALLOWED.com./ci.yml", ["allowed.com"]),
        ("https://allowed.com:8443/ci.yml", ["allowed.com:8443"]),
        ("https://a.b.example.org/ci.yml", ["*.example.org"]),
        ("https://gitlab.example.com/group/ci.yml?ref=main", ["https://gitlab.example.com/group/"]),
        ("https://gitlab.example.com/group/sub/ci.yml", ["https://gitlab.example.com/group"]),
        ("https://xn--bcher-kva.example/ci.yml", ["bücher.example"]),
        ("https://bücher.example/ci.yml", ["xn--bcher-kva.example"]),
        ("http://127.0.0.1:8080/ci.yml", ["http://127.0.0.1:8080/"]),
        ("http://[::1]:8080/ci.yml", ["[::1]:8080"]),
    ],
)
def test_allowlist_matches(url: str, allowed: list[str]) -> None:
    assert allowed_url(url, allowed)


def test_a_wildcard_does_not_match_the_bare_domain_nor_an_empty_list_anything() -> None:
    assert not allowed_url("https://example.org/ci.yml", ["*.example.org"])
    assert not allowed_url("https://allowed.com/ci.yml", [])


def test_a_refused_address_makes_no_request(server: Server, tmp_path: Path) -> None:
    server.routes["/ci.yml"] = answer(YAML)
    port = server.base.rsplit(":", 1)[1]
    cache = cache_for(server, tmp_path, allowed=[f"localhost:{port}"])
    for url in (server.url("/ci.yml"), f"http://localhost:{port}@127.0.0.1:{port}/ci.yml"):
        with pytest.raises(IncludeSourceError):
            cache.fetch(url)
    assert cache.cached(server.url("/ci.yml")) is None
    assert server.requests == []


def test_credentials_in_the_address_are_refused_without_showing_them(server: Server, tmp_path: Path) -> None:
    url = server.url("/ci.yml").replace("http://", "http://user:hunter2@")
    with pytest.raises(IncludeSourceError) as caught:
        cache_for(server, tmp_path).fetch(url)
    assert "does not have a valid address!" in caught.value.message
    assert "hunter2" not in caught.value.message and "user" not in caught.value.message
    assert server.requests == []


def test_a_malformed_allowlist_entry_names_the_setting(tmp_path: Path) -> None:
    for entry in ("https://host/path?x=1", "*.", "host/path", "*.127.0.0.1", "ho st"):
        with pytest.raises(IncludeSourceError, match=r"\[ci_vars\] include_remote_allowed"):
            RemoteCache(tmp_path, allowed=[entry])


# -- credentials ----------------------------------------------------------------------------------


def test_headers_for_reach_the_server_and_nothing_else(server: Server, tmp_path: Path) -> None:
    server.routes["/ci.yml"] = answer(YAML)
    asked: list[str] = []

    def headers_for(url: str) -> dict[str, str]:
        asked.append(url)
        return {"Authorization": SECRET, "Host": "evil.example"}

    clock = Clock()
    cache = cache_for(server, tmp_path, headers_for=headers_for, clock=clock, ttl_seconds=60)
    cache.fetch(server.url("/ci.yml"))
    _path, headers = server.requests[-1]
    assert headers["Authorization"] == SECRET
    assert headers["Host"] == server.base.removeprefix("http://")  # ours, not the callable's

    with pytest.raises(IncludeSourceError) as caught:
        cache.fetch(server.url("/missing.yml"))
    clock.now += 120
    server.routes["/ci.yml"] = answer(b"", status=500)
    stale = cache.fetch(server.url("/ci.yml"))
    texts = [caught.value.message, str(caught.value), stale.warning or "", repr(cache), repr(stale)]
    texts += [path.read_text(errors="replace") for path in cache_files(tmp_path)]
    assert all("s3cr3t" not in text for text in texts)
    assert asked == [server.url("/ci.yml"), server.url("/missing.yml"), server.url("/ci.yml")]


def test_a_header_value_that_would_break_the_request_is_refused_without_showing_it(
    server: Server, tmp_path: Path
) -> None:
    server.routes["/ci.yml"] = answer(YAML)
    cache = cache_for(server, tmp_path, headers_for=lambda url: {"Authorization": "Bearer s3cr3t\r\nX-Evil: 1"})
    with pytest.raises(IncludeSourceError) as caught:
        cache.fetch(server.url("/ci.yml"))
    assert "`Authorization`" in caught.value.message and "s3cr3t" not in caught.value.message
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert server.requests == []


def test_a_token_in_the_query_is_sent_but_filtered_from_messages_and_cache(server: Server, tmp_path: Path) -> None:
    server.routes["/ci.yml?private_token=tok3n-SECRET"] = answer(YAML)
    url = server.url("/ci.yml?private_token=tok3n-SECRET")
    cache = cache_for(server, tmp_path)
    cache.fetch(url)
    assert server.hits("/ci.yml?private_token=tok3n-SECRET") == 1
    with pytest.raises(IncludeSourceError) as caught:
        cache.fetch(server.url("/gone.yml?access_token=tok3n-SECRET&ref=main"))
    assert server.url("/gone.yml?access_token=[FILTERED]&ref=main") in caught.value.message
    texts = [caught.value.message, *(path.read_text() for path in cache_files(tmp_path))]
    assert all("tok3n" not in text for text in texts)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pass@host.example/ci.yml", "https://host.example/ci.yml"),
        ("https://a@b@host.example/ci.yml", "https://host.example/ci.yml"),
        ("user:pass@host.example/ci.yml", "host.example/ci.yml"),
        ("https://user:pa/ss@host.example/ci.yml", "https://host.example/ci.yml"),
        ("https://host.example/group/@scope/ci.yml", "https://host.example/group/@scope/ci.yml"),
        (
            "https://h/ci.yml?private_token=x&token=y&ref=main",
            "https://h/ci.yml?private_token=[FILTERED]&token=[FILTERED]&ref=main",
        ),
        (
            "https://h/ci.yml?JOB_TOKEN=x#access_token=z",
            "https://h/ci.yml?JOB_TOKEN=[FILTERED]#access_token=[FILTERED]",
        ),
        ("https://h/ci.yml\nFAKE LOG LINE", "https://h/ci.yml%0AFAKE%20LOG%20LINE"),
        ("https://h/ci.yml", "https://h/ci.yml"),
    ],
)
def test_shown_url(url: str, shown: str) -> None:
    assert shown_url(url) == shown


def test_the_cache_directory_is_created_private_whatever_the_umask(server: Server, tmp_path: Path) -> None:
    server.routes["/ci.yml"] = answer(YAML)
    old = os.umask(0o000)
    try:
        cache_for(server, tmp_path).fetch(server.url("/ci.yml"))
    finally:
        os.umask(old)
    for path in (tmp_path / "cache" / "remote").rglob("*"):
        expected = 0o700 if path.is_dir() else 0o600
        assert stat.S_IMODE(path.stat().st_mode) == expected, path


# -- https ----------------------------------------------------------------------------------------


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    """An HTTPS server with a self-signed certificate for 127.0.0.1 (made by the real openssl)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    started = _start(context)
    yield started, cert
    started.stop()


def test_https_verifies_the_certificate(tls_server: tuple[Server, Path], tmp_path: Path) -> None:
    server, _cert = tls_server
    server.routes["/ci.yml"] = answer(YAML)
    url = server.url("/ci.yml")
    with pytest.raises(IncludeSourceError) as caught:
        cache_for(server, tmp_path).fetch(url)
    assert caught.value.message.startswith(f"Remote file `{url}` could not be fetched because of HTTP error! (TLS: ")
    assert "certificate" in caught.value.message
    assert server.requests == []


def test_https_with_a_trusted_certificate(
    tls_server: tuple[Server, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, cert = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # how a deployment trusts its internal CA
    server.routes["/ci.yml"] = answer(YAML)
    assert cache_for(server, tmp_path).fetch(server.url("/ci.yml")).text == YAML.decode()
    _path, headers = server.requests[-1]
    assert headers["Host"] == server.base.removeprefix("https://")
