"""``include:remote``: a file fetched over HTTP(S) into an on-disk cache refreshed on a TTL.

Mirrors GitLab's remote include (R: ``lib/gitlab/ci/config/external/file/remote.rb``, its
``integrity`` check, and the keyword's validation in
``lib/gitlab/ci/config/entry/concerns/base_include.rb``); messages copy GitLab's wording
("Remote file `URL` could not be fetched because of a timeout error!", "... because of HTTP code
`404` error!", "... failed integrity check!", "... does not have a valid address!"). URLs in
messages are shown as ``shown_url`` shows them: no userinfo, token query parameters
``[FILTERED]`` (GitLab masks them too; masking *masked variables* in an expanded URL is the
caller's business, as GitLab's ``context.mask_variables_from``).

Where this deliberately differs from GitLab:

- **Allowlist.** Nothing is fetched unless ``[ci_vars] include_remote_allowed`` allows the URL
  (GitLab fetches any public URL, blocking local networks). Entries are URL prefixes
  (``https://gitlab.example.com/group/``: scheme, host, port and a path prefix on a ``/``
  boundary) or host patterns (``example.com``, ``*.example.com`` for its subdomains, either with an
  optional ``:port``; without one only the scheme's default port). The URL is parsed once
  (scheme, host lowercased and IDNA-encoded, port) and the request is built from those very parts,
  so ``https://allowed.com@evil.com/``, ``https://evil.com/?allowed.com`` or
  ``https://allowed.com.evil.com/`` are refused, and no second URL parser can disagree.
  **Literal IPs** are matched only by an entry naming that same IP (a host pattern never matches
  an IP); non-canonical IPv4 forms (``127.1``, ``2130706433``, ``0x7f.0.0.1``) are not valid
  addresses. Host names are not resolved to check for private ranges: an allowed name is trusted,
  wherever it points (an internal GitLab is a normal target).
- **No credentials in the URL** (userinfo): GitLab's documentation says authentication with the
  remote URL is not supported; here it is refused, and the deployment gives a host credentials
  through ``headers_for`` (an Airflow connection, resolved by the shell).
- **Redirects are not followed** (GitLab's HTTP client follows them, checking each hop): a 3xx is
  an error naming the status and the (masked) target.
- **Bounds:** one attempt (GitLab retries 5xx and socket errors up to 3 times with a backoff), a
  total deadline of ``timeout`` seconds for name resolution, connect, headers and body together
  (however slowly a server dribbles), and ``max_bytes`` (reading stops at the limit; GitLab has no
  message for it, so the text is ours). A ``text/html`` (or XHTML) answer is refused as "an HTML
  page, not YAML" (GitLab hands it to the YAML loader). A body that is not UTF-8 is refused.
- **Messages** GitLab does not have: a malformed ``integrity`` gives GitLab's entry text ("integrity
  hash must start with 'sha256-'", "... must be base64 encoded") after the URL; a TLS failure adds
  its reason to "... because of HTTP error!"; a refused connection is GitLab's
  ``Errno::ECONNREFUSED`` text.
- **Cache.** GitLab caches only with ``include:cache`` (GitLab 18.9+, Rails cache); here every
  remote file is cached on disk (``directory/remote/<sha256(url)>/``, mode 0700: ``body`` and
  ``meta.json``, each replaced atomically) and reused for ``ttl_seconds``; then it is asked again
  with ``If-None-Match``/``If-Modified-Since``. When the server cannot be reached (connection,
  TLS, timeout, 408/429/5xx), a cached copy of any age is served with a ``warning``. ``integrity``
  is checked on every use, cached or not (as GitLab does with ``cache``); a cached copy that does
  not match is fetched again once. Bytes that fail the check are never stored.

Nothing here imports Airflow; header values from ``headers_for`` never reach a message, a warning,
the cache files or a ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import http.client
import ipaddress
import json
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from airflow_ci_vars.atomic_write import atomic_write
from airflow_ci_vars.errors import IncludeSourceError

__all__ = ["ALLOWED_SETTING", "Fetched", "RemoteCache", "allowed_url", "shown_url"]

#: The setting that lists what may be fetched (named in the refusals).
ALLOWED_SETTING = "[ci_vars] include_remote_allowed"

_PORTS = {"http": 80, "https": 443}
_FORMAT = 1
_USER_AGENT = "airflow-ci-vars (include:remote)"
# Control characters, space and backslash are never part of an address we fetch.
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f\\]")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\Z")
# A last label that inet_aton would read as a number: the host would be an IPv4 in disguise.
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)\Z")
_PATH_SAFE = "/!$&'()*+,;=:@~%-._"
_QUERY_SAFE = _PATH_SAFE + "?"
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_VALIDATOR = re.compile(r"[\x21-\x7e][\x20-\x7e]{0,1022}\Z")
_OURS = frozenset(
    {"host", "user-agent", "accept", "accept-encoding", "connection", "if-none-match", "if-modified-since"}
)
_TRANSIENT = frozenset({408, 429})
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Fetched:
    """A remote file's content: ``text`` (decoded), ``sha256`` (hex of the body bytes), when fetched.

    ``warning`` says why a copy was served past its TTL (the server could not be reached).
    """

    text: str
    sha256: str
    fetched_at: float
    warning: str | None = None


@dataclass(frozen=True, slots=True)
class _Target:
    """A URL as it is checked and requested: the request is built from these parts only."""

    scheme: str
    host: str  # lowercase ASCII (IDNA) name, or a canonical IP literal (IPv6 without brackets)
    is_ip: bool
    port: int
    path: str  # percent-encoded path
    target: str  # path and query, as sent on the request line

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _PORTS[self.scheme] else f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class _Entry:
    """One allowlist entry: a URL prefix (scheme, path) or a host pattern (wildcard, no scheme)."""

    scheme: str | None
    host: str
    wildcard: bool
    port: int | None
    path: str

    def matches(self, url: _Target) -> bool:
        if self.scheme is not None and self.scheme != url.scheme:
            return False
        if url.port != (self.port if self.port is not None else _PORTS[url.scheme]):
            return False
        if self.wildcard:
            if url.is_ip or not url.host.endswith("." + self.host):
                return False
        elif url.host != self.host:
            return False
        if self.path.endswith("/"):
            return url.path.startswith(self.path)
        return url.path == self.path or url.path.startswith(self.path + "/")


@dataclass(frozen=True, slots=True)
class _Copy:
    """What the disk cache holds for one URL."""

    text: str
    sha256: str
    digest: bytes
    fetched_at: float
    etag: str | None
    last_modified: str | None

    def fetched(self, warning: str | None = None) -> Fetched:
        return Fetched(text=self.text, sha256=self.sha256, fetched_at=self.fetched_at, warning=warning)


class _BadAddress(ValueError):
    """The URL (or an allowlist entry) is not an address this module fetches; the text says why."""


class _Unreachable(Exception):
    """The server could not be reached or answered that it cannot serve now: a cached copy may do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# -- showing URLs -----------------------------------------------------------------------------


def _secret_name(name: str) -> bool:
    lowered = unquote(name).strip().lower()
    return lowered == "token" or lowered.endswith("_token")


def _filter_params(text: str) -> str:
    parts = []
    for part in text.split("&"):
        name, equals, _value = part.partition("=")
        parts.append(f"{name}=[FILTERED]" if equals and _secret_name(name) else part)
    return "&".join(parts)


def shown_url(url: str) -> str:
    """``url`` as messages show it: userinfo removed, ``token``/``*_token`` parameters ``[FILTERED]``.

    Control characters and spaces are percent-escaped, so a URL cannot forge lines in a log.
    Works on any string, parseable or not.
    """
    text = re.sub(r"[\x00-\x20\x7f]", lambda m: f"%{ord(m.group()):02X}", url.strip())
    match = re.match(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*:)?(?P<slashes>//)?(?P<rest>.*)\Z", text, re.S)
    assert match is not None  # the pattern matches every string
    scheme, slashes, rest = match.group("scheme") or "", match.group("slashes") or "", match.group("rest")
    if not slashes:  # `user:secret@host/...` without `//`: what looks like a scheme may be userinfo
        scheme, rest = "", scheme + rest
    end = min([len(rest)] + [found for found in (rest.find(stop) for stop in "/?#") if found != -1])
    if "@" not in rest[:end]:
        # `https://user:pa/ss@host/`: a `/` in the password ends the authority early; a URL that does
        # not parse loses everything up to its last `@` before the query (valid URLs keep their path)
        before_query = min([len(rest)] + [found for found in (rest.find(stop) for stop in "?#") if found != -1])
        if "@" in rest[:before_query] and not _parses(text):
            end = before_query
    rest = rest[:end].rpartition("@")[2] + rest[end:]
    rest, hash_mark, fragment = rest.partition("#")
    path, question, query = rest.partition("?")
    shown = scheme + slashes + path + question + _filter_params(query)
    return shown + hash_mark + _filter_params(fragment) if hash_mark else shown


# -- parsing and the allowlist ----------------------------------------------------------------


def _parses(url: str) -> bool:
    try:
        _parse(url)
    except _BadAddress:
        return False
    return True


def _host(name: str | None) -> tuple[str, bool]:
    """The normalized host and whether it is an IP literal; raises ``_BadAddress``."""
    if not name:
        raise _BadAddress("it has no host")
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return ip.compressed, True
    if name.endswith("."):
        name = name[:-1]
    try:
        ascii_name = name.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise _BadAddress("its host is not a valid name") from None
    labels = ascii_name.split(".")
    if not all(_LABEL.match(label) for label in labels):
        raise _BadAddress("its host is not a valid name")
    if _NUMERIC_LABEL.match(labels[-1]):
        raise _BadAddress("its host is a number but not a canonical IP address")
    return ascii_name, False


def _parse(url: str) -> _Target:
    """Parse an http(s) URL into the parts that are checked and requested; raises ``_BadAddress``."""
    text = url.strip()
    if not text:
        raise _BadAddress("it is empty")
    if _FORBIDDEN.search(text):
        raise _BadAddress("it contains a space, a control character or a backslash")
    try:
        parts = urlsplit(text)
        explicit_port = parts.port
    except ValueError:
        raise _BadAddress("it cannot be parsed") from None
    scheme = parts.scheme.lower()
    if scheme not in _PORTS:
        raise _BadAddress("only http and https addresses are fetched")
    if "@" in parts.netloc:
        raise _BadAddress("credentials in the address are not supported; the deployment gives them per host")
    host, is_ip = _host(parts.hostname)
    if explicit_port == 0:
        raise _BadAddress("its port is 0")
    path = parts.path or "/"
    decoded = unquote(path)
    # `..;` is `..` to some servers (path parameters): no prefix entry may be climbed out of
    if any(segment.split(";")[0] in (".", "..") for segment in decoded.split("/")) or "\\" in decoded:
        raise _BadAddress("its path has `.` or `..` segments")
    path = quote(path, safe=_PATH_SAFE)
    target = path + ("?" + quote(parts.query, safe=_QUERY_SAFE) if parts.query else "")
    port = explicit_port if explicit_port is not None else _PORTS[scheme]
    return _Target(scheme=scheme, host=host, is_ip=is_ip, port=port, path=path, target=target)


def _entry(text: str) -> _Entry:
    """Parse one allowlist entry; raises ``_BadAddress``."""
    text = text.strip()
    if "://" in text:
        if "?" in text or "#" in text:
            raise _BadAddress("a URL prefix has no query or fragment")
        url = _parse(text)
        return _Entry(scheme=url.scheme, host=url.host, wildcard=False, port=url.port, path=url.path)
    wildcard = text.startswith("*.")
    rest = text[2:] if wildcard else text
    if not rest or _FORBIDDEN.search(rest) or any(c in rest for c in "/?#@*"):
        raise _BadAddress("a host pattern is `host`, `*.domain`, optionally with `:port`")
    try:
        parts = urlsplit("//" + rest)
        port = parts.port
    except ValueError:
        raise _BadAddress("a host pattern is `host`, `*.domain`, optionally with `:port`") from None
    host, is_ip = _host(parts.hostname)
    if wildcard and is_ip:
        raise _BadAddress("a wildcard names a domain, not an IP address")
    if port == 0:
        raise _BadAddress("its port is 0")
    return _Entry(scheme=None, host=host, wildcard=wildcard, port=port, path="/")


def _entries(allowed: Sequence[str]) -> tuple[_Entry, ...]:
    entries = []
    for text in allowed:
        with contextlib.suppress(_BadAddress):
            entries.append(_entry(text))
    return tuple(entries)


def allowed_url(url: str, allowed: Sequence[str]) -> bool:
    """Whether ``url`` is an http(s) address that an entry of ``allowed`` allows.

    Malformed URLs and entries never allow anything; an empty ``allowed`` allows nothing.
    """
    try:
        target = _parse(url)
    except _BadAddress:
        return False
    return any(entry.matches(target) for entry in _entries(allowed))


# -- integrity ----------------------------------------------------------------------------------


def _expected_hash(integrity: str, shown: str) -> str:
    """The base64 digest of ``sha256-<base64>``, with GitLab's messages for a malformed value."""
    if not isinstance(integrity, str) or not integrity.startswith("sha256-"):
        raise IncludeSourceError(f"Remote file `{shown}`: integrity hash must start with 'sha256-'", source=shown)
    encoded = integrity.removeprefix("sha256-")
    try:
        base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise IncludeSourceError(
            f"Remote file `{shown}`: integrity hash must be base64 encoded", source=shown
        ) from None
    return encoded


def _integrity_ok(digest: bytes, expected: str | None) -> bool:
    # GitLab compares the base64 texts (Rack::Utils.secure_compare), so must we.
    return expected is None or hmac.compare_digest(base64.b64encode(digest).decode("ascii"), expected)


def _integrity_failed(shown: str, *, offline: bool = False) -> IncludeSourceError:
    return IncludeSourceError(f"Remote file `{shown}` failed integrity check!", source=shown, offline=offline)


# -- the cache ----------------------------------------------------------------------------------


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # whatever the umask; a directory not ours stays as it is
        os.chmod(path, 0o700)


def _validator(value: str | None) -> str | None:
    """An ETag or Last-Modified worth sending back: printable ASCII on one line, bounded."""
    return value if value is not None and _VALIDATOR.match(value) else None


class RemoteCache:
    """Fetches ``include:remote`` files within the deployment's allowlist, through a disk cache.

    ``directory`` holds the cache (``remote/`` below it, mode 0700). A copy younger than
    ``ttl_seconds`` (by ``clock``) is used without a request; an older one is revalidated, and
    served with a ``warning`` when the server cannot be reached. ``timeout`` bounds a whole
    request (connect, headers, body), ``max_bytes`` the body. ``offline`` never touches the
    network: any cached copy is used, whatever its age. ``headers_for(url)`` adds headers to a
    request for ``url`` (an ``Authorization`` from the deployment's connection); their values are
    never written anywhere. Raises ``IncludeSourceError`` for every failure, with GitLab's text.
    """

    def __init__(
        self,
        directory: Path,
        *,
        ttl_seconds: float = 3600.0,
        timeout: float = 10.0,
        max_bytes: int = 4 * 1024 * 1024,
        allowed: Sequence[str] = (),
        offline: bool = False,
        clock: Callable[[], float] = time.time,
        headers_for: Callable[[str], Mapping[str, str]] | None = None,
    ) -> None:
        if timeout <= 0 or max_bytes <= 0 or ttl_seconds < 0:
            raise ValueError("timeout and max_bytes must be positive, ttl_seconds not negative")
        entries = []
        for text in allowed:
            try:
                entries.append(_entry(text))
            except _BadAddress as exc:
                raise IncludeSourceError(
                    f"{ALLOWED_SETTING}: `{shown_url(text)}` is neither a URL prefix "
                    f"(https://host/path/) nor a host pattern (host, *.domain, host:port): {exc}",
                    source=ALLOWED_SETTING,
                ) from None
        self._root = Path(directory) / "remote"
        self._ttl = float(ttl_seconds)
        self._timeout = float(timeout)
        self._max_bytes = int(max_bytes)
        self._entries = tuple(entries)
        self._offline = offline
        self._clock = clock
        self._headers_for = headers_for

    def __repr__(self) -> str:
        return (
            f"RemoteCache(directory={str(self._root.parent)!r}, ttl_seconds={self._ttl}, timeout={self._timeout}, "
            f"max_bytes={self._max_bytes}, allowed={len(self._entries)} entries, offline={self._offline})"
        )

    # -- public -------------------------------------------------------------------------------

    def fetch(self, url: str, *, integrity: str | None = None) -> Fetched:
        """The content of ``url``, from the cache or the server; ``integrity`` is ``sha256-<base64>``."""
        shown = shown_url(url)
        target = self._allowed_target(url, shown)
        expected = None if integrity is None else _expected_hash(integrity, shown)
        copy = self._read(url)
        if copy is not None and (self._offline or 0 <= self._clock() - copy.fetched_at < self._ttl):
            if _integrity_ok(copy.digest, expected):
                return copy.fetched()
            if self._offline:
                raise _integrity_failed(shown, offline=True)
            return self._download(url, target, shown, expected, previous=None)
        if self._offline:
            raise IncludeSourceError(
                f"Remote file `{shown}` could not be fetched because the load is offline and no copy is cached!",
                source=shown,
                offline=True,
            )
        usable = copy if copy is not None and _integrity_ok(copy.digest, expected) else None
        return self._download(url, target, shown, expected, previous=usable)

    def cached(self, url: str) -> Fetched | None:
        """What the disk cache holds for ``url`` (any age), or None; never a network call.

        None also when ``url`` is not (or no longer) allowed.
        """
        try:
            target = _parse(url)
        except _BadAddress:
            return None
        if not any(entry.matches(target) for entry in self._entries):
            return None
        copy = self._read(url)
        return None if copy is None else copy.fetched()

    # -- checks ---------------------------------------------------------------------------------

    def _allowed_target(self, url: str, shown: str) -> _Target:
        try:
            target = _parse(url)
        except _BadAddress as exc:
            raise IncludeSourceError(
                f"Remote file `{shown}` does not have a valid address! ({exc})", source=shown
            ) from None
        if not self._entries:
            raise IncludeSourceError(
                f"Remote file `{shown}` could not be fetched because URL is blocked: {ALLOWED_SETTING} "
                "is empty, so no remote file may be fetched!",
                source=shown,
            )
        if not any(entry.matches(target) for entry in self._entries):
            raise IncludeSourceError(
                f"Remote file `{shown}` could not be fetched because URL is blocked: its address matches "
                f"no entry of {ALLOWED_SETTING}!",
                source=shown,
            )
        return target

    # -- disk -----------------------------------------------------------------------------------

    def _entry_dir(self, url: str) -> Path:
        return self._root / hashlib.sha256(url.strip().encode("utf-8")).hexdigest()

    def _read(self, url: str) -> _Copy | None:
        entry = self._entry_dir(url)
        try:
            meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
            with open(entry / "body", "rb") as stream:
                body = stream.read(self._max_bytes + 1)
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT or len(body) > self._max_bytes:
            return None
        digest = hashlib.sha256(body).digest()
        fetched_at = meta.get("fetched_at")
        if meta.get("sha256") != digest.hex() or not isinstance(fetched_at, int | float):
            return None  # a torn pair of writes, or a file edited by hand: fetch again
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return None
        etag, modified = meta.get("etag"), meta.get("last_modified")
        return _Copy(
            text=text,
            sha256=digest.hex(),
            digest=digest,
            fetched_at=float(fetched_at),
            etag=_validator(etag) if isinstance(etag, str) else None,
            last_modified=_validator(modified) if isinstance(modified, str) else None,
        )

    def _write(self, url: str, body: bytes | None, copy: _Copy) -> str | None:
        """Store ``copy`` (and ``body`` when new); the warning to give when the disk refuses."""
        meta = {
            "format": _FORMAT,
            "url": shown_url(url),
            "fetched_at": copy.fetched_at,
            "sha256": copy.sha256,
            "etag": copy.etag,
            "last_modified": copy.last_modified,
        }
        entry = self._entry_dir(url)
        try:
            _private_dir(self._root)
            _private_dir(entry)
            if body is not None:
                atomic_write(entry / "body", body)
            atomic_write(entry / "meta.json", json.dumps(meta, indent=1).encode("utf-8"))
        except OSError as exc:
            return f"Remote file `{shown_url(url)}` was fetched but could not be cached in {entry}: {exc.strerror}"
        return None

    # -- network --------------------------------------------------------------------------------

    def _download(self, url: str, target: _Target, shown: str, expected: str | None, previous: _Copy | None) -> Fetched:
        try:
            status, headers, body = self._exchange(url, target, shown, previous)
        except _Unreachable as exc:
            if previous is None:
                raise IncludeSourceError(exc.message, source=shown) from None
            age = self._clock() - previous.fetched_at
            when = datetime.fromtimestamp(previous.fetched_at, tz=timezone.utc).isoformat(timespec="seconds")
            return previous.fetched(
                warning=f"{exc.message} Using the copy cached at {when} ({age:.0f} s old, "
                f"past its {self._ttl:.0f} s time to live)."
            )
        now = self._clock()
        etag = _validator(headers.get("ETag"))
        modified = _validator(headers.get("Last-Modified"))
        if status == 304 and previous is not None:
            copy = _Copy(
                text=previous.text,
                sha256=previous.sha256,
                digest=previous.digest,
                fetched_at=now,
                etag=etag or previous.etag,
                last_modified=modified or previous.last_modified,
            )
            return copy.fetched(warning=self._write(url, None, copy))
        digest = hashlib.sha256(body).digest()
        if not _integrity_ok(digest, expected):
            raise _integrity_failed(shown)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise IncludeSourceError(
                f"Remote file `{shown}` is not UTF-8 text (invalid byte at offset {exc.start})!", source=shown
            ) from None
        copy = _Copy(text=text, sha256=digest.hex(), digest=digest, fetched_at=now, etag=etag, last_modified=modified)
        return copy.fetched(warning=self._write(url, body, copy))

    def _request_headers(self, url: str, target: _Target, shown: str, previous: _Copy | None) -> dict[str, str]:
        headers: dict[str, str] = {}
        for name, value in (self._headers_for(url) if self._headers_for is not None else {}).items():
            if not isinstance(name, str) or not _HEADER_NAME.match(name):
                raise IncludeSourceError(
                    f"Remote file `{shown}` could not be fetched: the deployment gives a header with an invalid name",
                    source=shown,
                )
            if not isinstance(value, str) or re.search(r"[\x00-\x08\x0a-\x1f\x7f]", value) or not value.isascii():
                raise IncludeSourceError(
                    f"Remote file `{shown}` could not be fetched: the deployment's `{name}` header value is not "
                    "a valid HTTP header value",
                    source=shown,
                )
            if name.lower() not in _OURS:
                headers[name] = value
        headers.update(
            {
                "Host": target.authority,
                "User-Agent": _USER_AGENT,
                "Accept": "application/yaml, text/yaml, text/plain, */*;q=0.5",
                "Accept-Encoding": "identity",
                "Connection": "close",
            }
        )
        if previous is not None and previous.etag:
            headers["If-None-Match"] = previous.etag
        if previous is not None and previous.last_modified:
            headers["If-Modified-Since"] = previous.last_modified
        return headers

    def _exchange(
        self, url: str, target: _Target, shown: str, previous: _Copy | None
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        """One GET within the deadline: the status, headers and body of a usable answer.

        The exchange runs in a worker thread that this one waits for at most ``timeout`` seconds:
        name resolution, connect, headers and body all count, however slowly a server dribbles.
        At the deadline its socket is shut down (which wakes a blocked read) and the worker left to
        finish on its own. Raises ``_Unreachable`` when a cached copy may stand in,
        ``IncludeSourceError`` otherwise.
        """
        headers = self._request_headers(url, target, shown, previous)
        deadline = time.monotonic() + self._timeout
        expired = threading.Event()
        sockets: list[socket.socket] = []
        outcome: list[tuple[int, http.client.HTTPMessage, bytes] | BaseException] = []

        def converse() -> None:
            try:
                conditional = previous is not None
                outcome.append(self._converse(target, shown, headers, conditional, deadline, expired, sockets))
            except BaseException as exc:  # handed to the waiting thread
                outcome.append(exc)

        worker = threading.Thread(target=converse, name="include-remote", daemon=True)
        worker.start()
        worker.join(self._timeout)
        if worker.is_alive() or not outcome:
            expired.set()
            for sock in list(sockets):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            raise _Unreachable(f"Remote file `{shown}` could not be fetched because of a timeout error!")
        result = outcome[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def _converse(
        self,
        target: _Target,
        shown: str,
        headers: Mapping[str, str],
        conditional: bool,
        deadline: float,
        expired: threading.Event,
        sockets: list[socket.socket],
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        """The GET itself (in the worker thread), its failures told in GitLab's words."""
        conn: http.client.HTTPConnection
        if target.scheme == "https":
            conn = http.client.HTTPSConnection(
                target.host, target.port, timeout=self._timeout, context=ssl.create_default_context()
            )
        else:
            conn = http.client.HTTPConnection(target.host, target.port, timeout=self._timeout)
        response: http.client.HTTPResponse | None = None
        try:
            conn.connect()
            if conn.sock is not None:
                sockets.append(conn.sock)
            if expired.is_set():
                raise TimeoutError
            conn.request("GET", target.target, headers=dict(headers))
            response = conn.getresponse()
            status = response.status
            self._check_status(status, response.msg, shown, conditional=conditional)
            body = self._read_body(response, shown, deadline, sockets)
            if expired.is_set():
                raise TimeoutError
            return status, response.msg, body
        except IncludeSourceError:
            raise
        except TimeoutError:
            raise _Unreachable(f"Remote file `{shown}` could not be fetched because of a timeout error!") from None
        except ConnectionRefusedError:
            raise _Unreachable(
                f'Remote file could not be fetched because Connection refused - connect(2) for "{target.host}" '
                f"port {target.port}!"
            ) from None
        except ssl.SSLError as exc:
            reason = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or "TLS failure"
            raise _Unreachable(
                f"Remote file `{shown}` could not be fetched because of HTTP error! (TLS: {reason})"
            ) from None
        except (http.client.HTTPException, OSError) as exc:
            if expired.is_set():
                raise _Unreachable(f"Remote file `{shown}` could not be fetched because of a timeout error!") from None
            if isinstance(exc, http.client.HTTPException):
                raise _Unreachable(f"Remote file `{shown}` could not be fetched because of HTTP error!") from None
            raise _Unreachable(f"Remote file `{shown}` could not be fetched because of a socket error!") from None
        finally:
            if response is not None:
                response.close()
            conn.close()
            for sock in sockets:  # down now, even while a file object still refers to it
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def _check_status(self, status: int, headers: http.client.HTTPMessage, shown: str, *, conditional: bool) -> None:
        code = f"Remote file `{shown}` could not be fetched because of HTTP code `{status}` error!"
        if status == 304:
            if conditional:
                return
            raise IncludeSourceError(code, source=shown)
        if 300 <= status < 400:
            location = headers.get("Location")
            where = f" to `{shown_url(location)}`" if location else ""
            raise IncludeSourceError(
                f"{code} The server redirects{where}; redirects are not followed: include the final address.",
                source=shown,
            )
        if status in _TRANSIENT or status >= 500:
            raise _Unreachable(code)
        if not 200 <= status < 300 or status == 206:
            raise IncludeSourceError(code, source=shown)
        content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type in ("text/html", "application/xhtml+xml"):
            raise IncludeSourceError(
                f"Remote file `{shown}` answered with an HTML page, not YAML (Content-Type `{content_type}`): "
                "a sign-in page or a web view instead of the raw file?",
                source=shown,
            )
        length = headers.get("Content-Length")
        if length is not None and length.strip().isdigit() and int(length) > self._max_bytes:
            raise self._too_large(shown)

    def _too_large(self, shown: str) -> IncludeSourceError:
        return IncludeSourceError(
            f"Remote file `{shown}` could not be fetched because it is larger than {self._max_bytes} bytes!",
            source=shown,
        )

    def _read_body(
        self, response: http.client.HTTPResponse, shown: str, deadline: float, sockets: list[socket.socket]
    ) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            for sock in sockets:
                sock.settimeout(remaining)
            chunk = response.read1(min(_CHUNK, self._max_bytes + 1 - total))
            if not chunk:
                break
            total += len(chunk)
            if total > self._max_bytes:
                raise self._too_large(shown)
            chunks.append(chunk)
        if response.length:  # the server closed before the Content-Length it announced
            raise http.client.IncompleteRead(b"".join(chunks), response.length)
        return b"".join(chunks)
