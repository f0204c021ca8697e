"""GitCache on real repositories: file://, plain paths, git daemon (git://), git http-backend (Basic auth)."""

from __future__ import annotations

import base64
import contextlib
import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from airflow_ci_vars.errors import IncludeSourceError
from airflow_ci_vars.pipeline.external import git_repo
from airflow_ci_vars.pipeline.external.git_repo import GitCache, GitRemote, Resolved

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}
USER, PASSWORD = "deploy-bot", "s3cr3t-T0ken-xyz"


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A work repository: main (default), feature, tags v1 (light) and v2 (annotated), odd files."""
    repo = tmp_path / "src" / "group" / "project"
    repo.mkdir(parents=True)
    git(repo, "init", "--quiet", "--initial-branch=main")
    (repo / "ci" / "templates").mkdir(parents=True)
    (repo / ".gitlab-ci.yml").write_text("stages: [build]\n")
    (repo / "ci" / "templates" / "job.yml").write_text("job:\n  script: echo v1\n")
    (repo / "big.yml").write_text("x: " + "a" * 5000 + "\n")
    (repo / "latin1.yml").write_bytes(b"x: caf\xe9\n")
    os.symlink("ci/templates/job.yml", repo / "link.yml")
    os.symlink("/etc/passwd", repo / "passwd.yml")
    os.symlink("ci", repo / "dirlink")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "one")
    git(repo, "tag", "v1")
    git(repo, "tag", "-a", "v2", "-m", "annotated")
    git(repo, "branch", "feature")
    (repo / "ci" / "templates" / "job.yml").write_text("job:\n  script: echo v3\n")
    git(repo, "commit", "--quiet", "-am", "two")
    return repo


def sha_of(repo: Path, rev: str) -> str:
    return git(repo, "rev-parse", f"{rev}^{{commit}}").strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


@contextlib.contextmanager
def git_daemon(base: Path) -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={base}", "--listen=127.0.0.1",
         f"--port={port}", str(base)],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_port(port)
        yield port
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()


class _Backend(BaseHTTPRequestHandler):
    """``git http-backend`` as a CGI behind HTTP Basic auth (USER/PASSWORD)."""

    root: Path
    seen_auth: list[str]

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._cgi()

    def do_POST(self) -> None:
        self._cgi()

    def _cgi(self) -> None:
        auth = self.headers.get("Authorization", "")
        self.seen_auth.append(auth)
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if auth != expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = {
            "PATH": os.environ["PATH"],
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": USER,
            "REMOTE_ADDR": "127.0.0.1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
        }
        for header in ("Content-Encoding", "Git-Protocol"):
            if header in self.headers:
                env["HTTP_" + header.upper().replace("-", "_")] = self.headers[header]
        out = subprocess.run(["git", "http-backend"], input=body, capture_output=True, env=env).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@contextlib.contextmanager
def http_backend(root: Path) -> Iterator[tuple[int, list[str]]]:
    seen: list[str] = []
    handler = type("Handler", (_Backend,), {"root": root, "seen_auth": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


def bare_copy(origin: Path, root: Path) -> Path:
    """A bare clone of ``origin`` at ``root/group/project.git`` (what a server serves)."""
    target = root / "group" / "project.git"
    target.parent.mkdir(parents=True, exist_ok=True)
    git(origin.parent, "clone", "--quiet", "--bare", str(origin), str(target))
    return target


# -- refs and resolve ---------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["file_url", "path"])
def test_refs_and_resolve_local_remote(origin: Path, tmp_path: Path, form: str) -> None:
    url = origin.as_uri() if form == "file_url" else str(origin)
    cache = GitCache(tmp_path / "cache")
    remote = GitRemote(url)
    table = cache.refs(remote)
    assert table.head == "main"
    assert table.branches == {"main": sha_of(origin, "main"), "feature": sha_of(origin, "feature")}
    # annotated v2 is peeled to its commit, as the lightweight v1
    assert table.tags == {"v1": sha_of(origin, "v1"), "v2": sha_of(origin, "v1")}
    assert table.warning is None

    assert cache.resolve(remote, None) == Resolved(sha_of(origin, "main"), "main", "branch")
    assert cache.resolve(remote, "feature") == Resolved(sha_of(origin, "feature"), "feature", "branch")
    assert cache.resolve(remote, "v2") == Resolved(sha_of(origin, "v1"), "v2", "tag")
    assert cache.resolve(remote, "refs/heads/main").kind == "branch"
    assert cache.resolve(remote, "refs/tags/v1") == Resolved(sha_of(origin, "v1"), "v1", "tag")
    full = sha_of(origin, "feature")
    assert cache.resolve(remote, full) == Resolved(full, full, "sha")
    assert cache.resolve(remote, full[:8]) == Resolved(full, full[:8], "sha")
    assert cache.resolve(remote, full.upper()).sha == full

    text = cache.read(remote, sha_of(origin, "main"), "ci/templates/job.yml")
    assert text == "job:\n  script: echo v3\n"
    assert cache.read(remote, sha_of(origin, "v1"), "ci/templates/job.yml") == "job:\n  script: echo v1\n"
    assert cache.files(remote, sha_of(origin, "main")) == (
        ".gitlab-ci.yml",
        "big.yml",
        "ci/templates/job.yml",
        "latin1.yml",
    )
    assert cache.read(remote, full, "missing.yml") is None
    assert cache.read(remote, full, "ci/templates") is None  # a directory is not a file


def test_tag_wins_over_branch_of_the_same_name_as_in_git_and_gitlab(origin: Path, tmp_path: Path) -> None:
    git(origin, "tag", "release", "v1")
    git(origin, "branch", "release", "main")
    cache = GitCache(tmp_path / "cache")
    remote = GitRemote(str(origin))
    assert cache.resolve(remote, "release") == Resolved(sha_of(origin, "v1"), "release", "tag")
    assert cache.resolve(remote, "refs/heads/release") == Resolved(sha_of(origin, "main"), "release", "branch")


def test_unknown_refs_name_the_ref_and_the_remote(origin: Path, tmp_path: Path) -> None:
    cache = GitCache(tmp_path / "cache")
    remote = GitRemote(str(origin))
    for ref in ("nope", "deadbeef" * 5, "deadbee", "-main", "main:x", "ma in", "refs/heads/nope", "v1^{tree}",
                "--upload-pack=touch /tmp/pwned", "--output=x", "main\0"):  # fmt: skip
        with pytest.raises(IncludeSourceError) as caught:
            cache.resolve(remote, ref)
        assert f"reference `{ref}` does not exist in git remote {origin}" == caught.value.message
        assert caught.value.source == str(origin)


def test_branch_moved_is_seen_only_after_refresh_seconds(origin: Path, tmp_path: Path) -> None:
    clock = Clock()
    cache = GitCache(tmp_path / "cache", refresh_seconds=300, clock=clock)
    remote = GitRemote(origin.as_uri())
    before = cache.resolve(remote, "main").sha
    (origin / "new.yml").write_text("a: 1\n")
    git(origin, "add", "new.yml")
    git(origin, "commit", "--quiet", "-m", "three")
    clock.now += 299
    assert cache.resolve(remote, "main").sha == before
    # another GitCache (another process) reads the same state file: still within refresh_seconds
    assert GitCache(tmp_path / "cache", clock=clock).resolve(remote, "main").sha == before
    clock.now += 2
    after = cache.resolve(remote, "main").sha
    assert after == sha_of(origin, "main") != before
    assert cache.read(remote, after, "new.yml") == "a: 1\n"
    # refresh_seconds=0: every call asks the remote
    eager = GitCache(tmp_path / "cache", refresh_seconds=0, clock=clock)
    git(origin, "branch", "-f", "feature", "main")
    assert eager.resolve(remote, "feature").sha == after


def test_state_names_the_refs_file_a_resolution_used_and_changes_with_every_fetch(origin: Path, tmp_path: Path) -> None:
    clock = Clock()
    remote = GitRemote(origin.as_uri())
    cache = GitCache(tmp_path / "cache", refresh_seconds=0, clock=clock)
    assert cache.state(remote) is None  # nothing used yet
    cache.resolve(remote, "main")
    first = cache.state(remote)
    assert first is not None
    path, fetched_at, stamp = first
    assert json.loads(Path(path).read_text())["fetched_at"] == fetched_at == clock.now
    # another cache reading the same file (no fetch) has the same state
    reader = GitCache(tmp_path / "cache", refresh_seconds=60, clock=clock)
    reader.refs(remote)
    assert reader.state(remote) == first
    clock.now += 1
    cache.resolve(remote, "main")  # refresh 0: fetched again, the file replaced
    second = cache.state(remote)
    assert second is not None and second[0] == path and (second[1], second[2]) != (fetched_at, stamp)
    shutil.rmtree(origin)
    assert cache.resolve(remote, "main").warning is not None
    assert cache.state(remote) is None  # the cached refs of an unreachable remote: always asked again


def test_a_cache_made_once_asks_each_remote_once_whatever_the_refresh_interval(origin: Path, tmp_path: Path) -> None:
    remote = GitRemote(origin.as_uri())
    load = GitCache(tmp_path / "cache", refresh_seconds=0, once=True)
    before = load.resolve(remote, "main").sha
    (origin / "new.yml").write_text("a: 1\n")
    git(origin, "add", "new.yml")
    git(origin, "commit", "--quiet", "-m", "pushed while a load runs")
    assert load.resolve(remote, "main").sha == before  # one load sees one state of the remote
    assert load.refs(remote).branches["main"] == before
    assert GitCache(tmp_path / "cache", refresh_seconds=0, once=True).resolve(remote, "main").sha != before
    shutil.rmtree(origin)
    unreachable = GitCache(tmp_path / "cache", refresh_seconds=0, once=True)
    first = unreachable.resolve(remote, "main")
    assert first.warning is not None and "is unreachable" in first.warning
    assert unreachable.resolve(remote, "feature").warning == first.warning  # tried once, not per include


def test_sha_not_yet_fetched_is_fetched_once(origin: Path, tmp_path: Path) -> None:
    clock = Clock()
    cache = GitCache(tmp_path / "cache", refresh_seconds=3600, clock=clock)
    remote = GitRemote(str(origin))
    cache.refs(remote)
    (origin / "n.yml").write_text("n: 1\n")
    git(origin, "add", "n.yml")
    git(origin, "commit", "--quiet", "-m", "pinned")
    pinned = sha_of(origin, "main")
    assert not GitCache(tmp_path / "cache", offline=True).has_commit(remote, pinned)
    assert cache.resolve(remote, pinned) == Resolved(pinned, pinned, "sha")
    assert cache.has_commit(remote, pinned[:7])
    assert cache.read(remote, pinned, "n.yml") == "n: 1\n"


def test_warm_refs_run_no_git_process(origin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    GitCache(tmp_path / "cache", clock=clock).refs(GitRemote(str(origin)))
    v1, feature = sha_of(origin, "v1"), sha_of(origin, "feature")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))

    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a process was started: {args}")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    monkeypatch.setattr(subprocess, "run", no_process)
    clock.now += 100
    fresh = GitCache(tmp_path / "cache", clock=clock)  # state file only
    assert fresh.refs(GitRemote(str(origin))).head == "main"
    assert fresh.resolve(GitRemote(str(origin)), "v2").sha == v1
    assert fresh.refs(GitRemote(str(origin))).branches["feature"] == feature


# -- unreachable and offline --------------------------------------------------------------------


def test_git_daemon_remote_then_daemon_stopped_uses_cached_refs(origin: Path, tmp_path: Path) -> None:
    served = tmp_path / "served"
    bare_copy(origin, served)
    clock = Clock()
    cache = GitCache(tmp_path / "cache", refresh_seconds=60, timeout=10, clock=clock)
    with git_daemon(served) as port:
        remote = GitRemote(f"git://127.0.0.1:{port}/group/project.git")
        assert cache.resolve(remote, None).sha == sha_of(origin, "main")
        assert cache.read(remote, sha_of(origin, "v1"), ".gitlab-ci.yml") == "stages: [build]\n"
    clock.now += 61
    got = cache.resolve(remote, "feature")
    assert got.sha == sha_of(origin, "feature")
    assert got.warning is not None
    assert got.warning.startswith(f"git remote git://127.0.0.1:{port}/group/project.git is unreachable (")
    assert got.warning.endswith("using the cached refs fetched at 2027-01-15 08:00:00 UTC")
    # files already in the mirror are still readable
    assert cache.read(remote, got.sha, "ci/templates/job.yml") == "job:\n  script: echo v1\n"


def test_deleted_remote_with_cache_warns_and_without_cache_fails(origin: Path, tmp_path: Path) -> None:
    clock = Clock()
    cache = GitCache(tmp_path / "cache", refresh_seconds=0, clock=clock)
    remote = GitRemote(origin.as_uri())
    first = cache.resolve(remote, "main")
    shutil.rmtree(origin)
    again = cache.resolve(remote, "main")
    assert again.sha == first.sha and again.warning and "is unreachable" in again.warning
    with pytest.raises(IncludeSourceError) as caught:
        GitCache(tmp_path / "other").refs(remote)
    assert caught.value.message.startswith(f"git remote {origin.as_uri()} is unreachable: ")
    assert caught.value.source == origin.as_uri() and not caught.value.offline
    port = free_port()  # nobody listens
    with pytest.raises(IncludeSourceError, match=f"git remote git://127.0.0.1:{port}/x.git is unreachable"):
        GitCache(tmp_path / "other").resolve(GitRemote(f"git://127.0.0.1:{port}/x.git"), None)


def test_offline_uses_any_age_cache_and_never_the_network(origin: Path, tmp_path: Path) -> None:
    clock = Clock()
    GitCache(tmp_path / "cache", clock=clock).refs(GitRemote(str(origin)))
    git(origin, "branch", "-f", "feature", "main")
    clock.now += 10 * 86400
    offline = GitCache(tmp_path / "cache", offline=True, clock=clock)
    got = offline.resolve(GitRemote(str(origin)), "feature")
    assert got.sha != sha_of(origin, "feature")  # the cached, old value
    with pytest.raises(IncludeSourceError) as caught:
        offline.resolve(GitRemote(str(origin)), "0" * 40)
    assert not caught.value.offline  # the remote is cached: the sha is just unknown
    with pytest.raises(IncludeSourceError) as never:
        offline.refs(GitRemote("https://git.example.invalid/x.git"))
    assert never.value.offline is True
    assert "git.example.invalid" in never.value.message


# -- files ----------------------------------------------------------------------------------------


def test_path_traversal_symlinks_big_and_binary_files(origin: Path, tmp_path: Path) -> None:
    cache = GitCache(tmp_path / "cache", max_file_bytes=4096)
    remote = GitRemote(str(origin))
    sha = cache.resolve(remote, "main").sha
    for path in ("../x", "ci/../.gitlab-ci.yml", "/etc/passwd", "./.gitlab-ci.yml", "ci//templates/job.yml",
                 "ci/templates/", "", "link.yml", "passwd.yml", "ci/templates/job.yml\0", "dirlink/templates/job.yml",
                 "--help", "-p", ":(glob)**/job.yml", "ci/*/job.yml"):  # fmt: skip
        assert cache.read(remote, sha, path) is None, path
    assert "link.yml" not in cache.files(remote, sha)
    with pytest.raises(IncludeSourceError, match=r"file `big.yml` .* is too large \(5004 bytes; at most 4096\)"):
        cache.read(remote, sha, "big.yml")
    with pytest.raises(IncludeSourceError, match=r"file `latin1.yml` .* is not UTF-8 text"):
        cache.read(remote, sha, "latin1.yml")
    with pytest.raises(IncludeSourceError, match="is not in the cache"):
        cache.read(remote, "f" * 40, ".gitlab-ci.yml")


# -- credentials and hostile URLs ---------------------------------------------------------------


def test_http_basic_auth_credentials_never_leak(origin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served = tmp_path / "served"
    bare_copy(origin, served)
    # a git wrapper that records every command line git is given (what `ps` would show)
    argv_log = tmp_path / "argv.log"
    wrapper_dir = tmp_path / "wrapper"
    wrapper_dir.mkdir()
    real_git = shutil.which("git")
    (wrapper_dir / "git").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {argv_log}\nexec {real_git} "$@"\n')
    (wrapper_dir / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper_dir}:{os.environ['PATH']}")
    with http_backend(served) as (port, seen):
        url = f"http://127.0.0.1:{port}/group/project.git"
        cache = GitCache(tmp_path / "cache", refresh_seconds=0)
        remote = GitRemote(url, USER, PASSWORD)
        assert PASSWORD not in repr(remote)
        assert cache.resolve(remote, "v2").sha == sha_of(origin, "v1")
        assert cache.read(remote, sha_of(origin, "main"), ".gitlab-ci.yml") == "stages: [build]\n"
        assert any(auth.startswith("Basic ") for auth in seen)
        # credentials written in the URL are taken out of it and used the same way
        inline = GitRemote(f"http://{USER}:{PASSWORD}@127.0.0.1:{port}/group/project.git")
        assert inline.shown() == url
        assert GitCache(tmp_path / "cache2").resolve(inline, None).sha == sha_of(origin, "main")
        # wrong password: an error naming the URL, without any secret
        with pytest.raises(IncludeSourceError) as caught:
            GitCache(tmp_path / "cache3").refs(GitRemote(url, USER, "wrong-password-123"))
        assert url in caught.value.message
        assert "wrong-password-123" not in str(caught.value)
        # no credentials at all
        with pytest.raises(IncludeSourceError, match="unreachable"):
            GitCache(tmp_path / "cache4").refs(GitRemote(url))
    argv = argv_log.read_text()
    assert "fetch" in argv and url in argv
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    for secret in (PASSWORD, token):
        assert secret not in argv
        for path in (tmp_path / "cache").rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path
    config = next((tmp_path / "cache" / "git").glob("*.git")) / "config"
    assert PASSWORD not in config.read_text() and url not in config.read_text()
    state = json.loads(next((tmp_path / "cache" / "git").glob("*.json")).read_text())
    assert state["url"] == url and state["head"] == "main"


def test_the_workers_git_config_and_credential_helpers_are_not_used(
    origin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    marker = tmp_path / "helper-ran"
    (home / ".gitconfig").write_text(
        f'[credential]\n\thelper = "!touch {marker}"\n[url "{tmp_path}/nowhere/"]\n\tinsteadOf = {origin}\n'
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("GIT_CONFIG_GLOBAL", raising=False)
    cache = GitCache(tmp_path / "cache")
    assert cache.resolve(GitRemote(str(origin)), None).sha == sha_of(origin, "main")  # insteadOf ignored
    assert not marker.exists()


@pytest.mark.parametrize(
    "url",
    [
        "ext::sh -c touch% /tmp/pwned",
        "--upload-pack=touch /tmp/pwned",
        "-oProxyCommand=touch /tmp/pwned",
        "ssh://-oProxyCommand=touch%20/tmp/pwned/x.git",
        "fd::3",
        "git@host.example:group/project.git",
        "relative/path",
        "ftp://host.example/x.git",
        "https:///no-host.git",
        "https://host.example/x.git\n--upload-pack=x",
    ],
)
def test_hostile_or_unsupported_urls_are_refused_before_git_runs(tmp_path: Path, url: str) -> None:
    cache = GitCache(tmp_path / "cache")
    with pytest.raises(IncludeSourceError, match=r"refused|not a valid URL"):
        cache.refs(GitRemote(url))
    assert not (tmp_path / "cache" / "git").exists() or not list((tmp_path / "cache" / "git").glob("*.git"))
    assert not Path("/tmp/pwned").exists()


def test_shown_removes_userinfo() -> None:
    remote = GitRemote("https://user:tok@gitlab.example/g/p.git", password="pw")
    assert remote.shown() == "https://gitlab.example/g/p.git"
    # an unencoded @ in the password does not leave a piece of it behind
    assert GitRemote("https://u:p@ss@gitlab.example/g/p.git").shown() == "https://gitlab.example/g/p.git"
    assert GitRemote("https://gitlab.example/g/p@2.git").shown() == "https://gitlab.example/g/p@2.git"
    assert "pw" not in repr(remote)


# -- concurrency --------------------------------------------------------------------------------


def _fetch_in_child(directory: str, url: str, barrier: multiprocessing.synchronize.Barrier, queue: object) -> None:
    barrier.wait(timeout=30)
    try:
        cache = GitCache(Path(directory), refresh_seconds=0)
        remote = GitRemote(url)
        sha = cache.resolve(remote, "main").sha
        text = cache.read(remote, sha, "ci/templates/job.yml")
        queue.put((sha, text))  # type: ignore[attr-defined]
    except Exception as exc:  # reported to the parent
        queue.put(("error", repr(exc)))  # type: ignore[attr-defined]


@pytest.mark.skipif(sys.platform != "linux", reason="fork")
def test_two_processes_fetch_the_same_remote_at_once(origin: Path, tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(2)
    queue = context.Queue()
    children = [
        context.Process(target=_fetch_in_child, args=(str(tmp_path / "cache"), origin.as_uri(), barrier, queue))
        for _ in range(2)
    ]
    for child in children:
        child.start()
    results = [queue.get(timeout=60) for _ in children]
    for child in children:
        child.join(timeout=30)
    expected = (sha_of(origin, "main"), "job:\n  script: echo v3\n")
    assert results == [expected, expected]
    assert len(list((tmp_path / "cache" / "git").glob("*.git"))) == 1


# -- bounds and odd repositories ----------------------------------------------------------------


def test_tag_of_a_tag_is_peeled_and_the_ref_table_is_bounded(
    origin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git(origin, "tag", "-a", "v3", "-m", "a tag of a tag", "v2")
    for index in range(6):
        git(origin, "tag", f"old-{index}", "v1")
    monkeypatch.setattr(git_repo, "MAX_REFS", 5)
    cache = GitCache(tmp_path / "cache")
    remote = GitRemote(str(origin))
    table = cache.refs(remote)
    assert len(table.tags) == 5
    # every tag still resolves, from the mirror, also those the table left out
    for name in ("v1", "v2", "v3", *(f"old-{index}" for index in range(6))):
        assert cache.resolve(remote, name) == Resolved(sha_of(origin, "v1"), name, "tag"), name


def test_files_are_bounded(origin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(git_repo, "MAX_FILES", 2)
    cache = GitCache(tmp_path / "cache")
    remote = GitRemote(str(origin))
    with pytest.raises(IncludeSourceError, match="has more than 2 files"):
        cache.files(remote, cache.resolve(remote, None).sha)


def test_hanging_remote_is_cut_at_the_timeout(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)  # accepts, never answers
    port = listener.getsockname()[1]
    try:
        cache = GitCache(tmp_path / "cache", timeout=1.0)
        started = time.monotonic()
        with pytest.raises(IncludeSourceError, match=r"unreachable: git ls-remote timed out after 1 s"):
            cache.refs(GitRemote(f"git://127.0.0.1:{port}/x.git"))
        assert time.monotonic() - started < 5
    finally:
        listener.close()


def test_corrupt_state_file_is_fetched_again(origin: Path, tmp_path: Path) -> None:
    cache = GitCache(tmp_path / "cache")
    remote = GitRemote(str(origin))
    cache.refs(remote)
    state = next((tmp_path / "cache" / "git").glob("*.json"))
    state.write_text('{"version": 1, "head": "main", "branches": {"main": "not-a-sha"}}')
    again = GitCache(tmp_path / "cache")
    assert again.resolve(remote, "main").sha == sha_of(origin, "main")
    assert json.loads(state.read_text())["branches"]["main"] == sha_of(origin, "main")
    assert (tmp_path / "cache" / "git").stat().st_mode & 0o777 == 0o700


def test_ssh_remote_never_prompts(tmp_path: Path) -> None:
    port = free_port()  # nothing listens: ssh fails at once (BatchMode, no prompt)
    cache = GitCache(tmp_path / "cache", timeout=10)
    with pytest.raises(IncludeSourceError) as caught:
        cache.refs(GitRemote(f"ssh://127.0.0.1:{port}/group/project.git", "someone", "ignored-pass"))
    assert caught.value.message.startswith(f"git remote ssh://127.0.0.1:{port}/group/project.git is unreachable")
    assert "ignored-pass" not in caught.value.message


def test_relative_cache_directory(origin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cache = GitCache(Path("rel-cache"))
    assert cache.resolve(GitRemote(str(origin)), "v1").sha == sha_of(origin, "v1")
    assert len(list((tmp_path / "rel-cache" / "git").glob("*.git"))) == 1


def test_unwritable_cache_and_corrupt_mirror_are_include_source_errors(origin: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(IncludeSourceError, match="cannot be created"):
        GitCache(blocker / "cache").refs(GitRemote(str(origin)))
    cache = GitCache(tmp_path / "cache")
    remote = GitRemote(str(origin))
    sha = cache.resolve(remote, None).sha
    mirror = next((tmp_path / "cache" / "git").glob("*.git"))
    shutil.rmtree(mirror / "objects")
    (mirror / "objects").mkdir()
    with pytest.raises(IncludeSourceError) as caught:
        GitCache(tmp_path / "cache").files(remote, sha)
    assert caught.value.source == str(origin)


def test_an_unreachable_remote_is_not_asked_again_by_any_process_until_the_refresh_interval(
    origin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A remote that hangs costs `timeout` per fetch: every parse of every dag-processor process
    # waiting for it again would hold parsing for the whole outage.
    clock = Clock()
    remote = GitRemote(origin.as_uri())
    GitCache(tmp_path / "cache", clock=clock, refresh_seconds=300).resolve(remote, "main")
    moved = tmp_path / "moved"
    origin.rename(moved)
    clock.now += 301
    first = GitCache(tmp_path / "cache", clock=clock, refresh_seconds=300).resolve(remote, "main")
    assert first.warning is not None and "is unreachable" in first.warning
    calls: list[object] = []
    real_popen = subprocess.Popen

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(args)
        return real_popen(*args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(subprocess, "Popen", counting)
    clock.now += 100  # another process, within the interval after the failure: no fetch, same warning
    other = GitCache(tmp_path / "cache", clock=clock, refresh_seconds=300).resolve(remote, "main")
    assert (other.sha, other.warning) == (first.sha, first.warning)
    assert calls == []
    moved.rename(origin)
    clock.now += 201  # the interval passed: asked again, reachable, the warning gone
    back = GitCache(tmp_path / "cache", clock=clock, refresh_seconds=300).resolve(remote, "main")
    assert back.warning is None and calls != []
    assert not list((tmp_path / "cache").rglob("*.unreachable.json"))


def test_a_worker_without_git_fails_loudly_naming_the_remote(
    origin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "no-git-here"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(IncludeSourceError) as raised:
        GitCache(tmp_path / "cache").resolve(GitRemote(origin.as_uri()), "main")
    assert str(raised.value).startswith(f"cannot run git for {origin.as_uri()}: ")
    assert not raised.value.offline  # an error, not an include skipped as "not checked offline"
