"""Git repositories as include sources: refs and files read through a local cache of bare mirrors.

``include:project`` and ``include:component`` read a file of another project at a ref
(R: ``lib/gitlab/ci/config/external/file/project.rb``: ``project.commit(ref_name).sha`` then
``repository.blobs_at([[sha, location]])``). Without a GitLab server, the deployment maps a
project path to a git URL (``GitRemote``); ``GitCache`` keeps one bare mirror per URL under
``<directory>/git/<sha256(url)[:32]>.git`` and reads it with the real ``git`` client.

Refs (``refs``): the remote's branches and tags (annotated tags peeled to their commit) and its
default branch, kept in a JSON state file beside the mirror. Within ``refresh_seconds`` of the
last fetch no git process runs at all; after that the mirror is fetched again (``git fetch
--prune``, ``git ls-remote --symref HEAD``). An unreachable remote falls back to the cached refs
with a warning; ``offline`` never touches the network.

Ref names resolve as GitLab resolves them (``Repository#commit`` -> Gitaly ``FindCommit`` ->
git's own revision parsing, ``ref_rev_parse_rules``): a full 40-hex sha is a commit; otherwise
``HEAD``, then ``refs/tags/<name>`` before ``refs/heads/<name>`` (a name that is both a tag and a
branch is the TAG, as ``git rev-parse`` and GitLab resolve it), then an unambiguous abbreviated
sha (7 hex or more). ``refs/heads/x`` and ``refs/tags/x`` name one kind explicitly. Names GitLab
refuses before any lookup (``Gitlab::Git::Commit.valid?``: leading ``-``, ``:``, NUL,
whitespace) do not exist.

Safety: credentials travel only in the git process environment (``http.extraHeader`` through
``GIT_CONFIG_COUNT``), never on a command line, in a URL given to git or in a file; the worker's
git configuration and credential helpers are not read (isolated ``HOME``, no system/global
config, no prompts); only the ``file``, ``http``, ``https``, ``ssh`` and ``git`` transports are
allowed (no ``ext::`` remote helpers, no option-looking URLs); every git call has a timeout
after which its whole process group is killed; error texts are scrubbed of credentials.

Bounds: a blob read is at most ``max_file_bytes``; at most ``MAX_REFS`` branches and
``MAX_REFS`` tags are kept in the ref table (the most recently created ones; an older name still
resolves, by a lookup in the mirror); a commit lists at most ``MAX_FILES`` files; error texts
quote at most ``MAX_REASON_CHARS`` of git's stderr.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import TypeGuard
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from airflow_ci_vars.atomic_write import atomic_write
from airflow_ci_vars.errors import IncludeSourceError

__all__ = ["MAX_FILES", "MAX_REFS", "GitCache", "GitRemote", "RefTable", "Resolved"]

MAX_REFS = 10_000
"""Branches kept in a ref table, and tags kept (each: the most recently created ones)."""

MAX_FILES = 200_000
"""Files a commit may list (``GitCache.files``)."""

MAX_REASON_CHARS = 500
"""Characters of git's stderr quoted in an error or a warning."""

_ALLOWED_PROTOCOLS = "file:http:https:ssh:git"
_URL_SCHEMES = frozenset({"http", "https", "ssh", "git", "file"})
_HEX40 = re.compile(r"[0-9a-f]{40}")
_SHORT_HEX = re.compile(r"[0-9a-f]{7,40}")
_TRANSPORT_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s]*@")
_REGULAR_MODES = frozenset({"100644", "100755", "100664"})
_MAX_CACHED_TREES = 32
_MAX_CACHED_BLOBS = 1024
_STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class GitRemote:
    """A git repository: its URL and the credentials the Airflow shell resolved for it.

    ``url``: an ``https://``, ``http://``, ``ssh://``, ``git://`` or ``file://`` URL, or an
    absolute local path. Credentials belong in ``username``/``password``; a ``user:pass@``
    written in the URL is taken out of it and used as credentials when those fields are empty.
    """

    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def shown(self) -> str:
        """The URL for messages: without any userinfo."""
        return _URL_USERINFO.sub(r"\1", self.url)


@dataclass(frozen=True, slots=True)
class RefTable:
    """What the mirror knows of the remote's refs.

    ``head`` is the default branch (the remote's ``HEAD``), None if unknown; ``tags`` map to the
    commit (annotated tags peeled); ``warning`` is set when the remote could not be reached and
    the cached refs were used; ``stamp`` is the (inode, mtime_ns, size) of the state file these
    refs were read from or written to (None: not from a state file).
    """

    head: str | None
    branches: Mapping[str, str]
    tags: Mapping[str, str]
    fetched_at: float
    warning: str | None = None
    stamp: tuple[int, int, int] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Resolved:
    """A ref resolved to a commit: ``kind`` is ``"branch"``, ``"tag"`` or ``"sha"``."""

    sha: str
    ref: str
    kind: str
    warning: str | None = None


@dataclass(frozen=True, slots=True)
class _Target:
    """A remote as git is called for it: the URL given to git and the secrets to scrub."""

    shown: str
    git_url: str
    key: str
    config: tuple[tuple[str, str], ...]
    secrets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Entry:
    mode: str
    kind: str
    oid: str
    size: int


class _GitFailed(IncludeSourceError):
    """A git command failed; ``reason`` is its stderr, trimmed and scrubbed."""

    def __init__(self, command: str, reason: str, shown: str) -> None:
        super().__init__(f"git {command} failed for git remote {shown}: {reason}", source=shown)
        self.reason = reason


class GitCache:
    """Bare mirrors of git remotes under ``directory/git``, shared by processes (file locks).

    ``refresh_seconds``: how long fetched refs are used without asking the remote again (0:
    every time); ``timeout``: seconds allowed to each git command; ``offline``: never run a
    network git command (cached refs are used whatever their age); ``max_file_bytes``: the
    largest file ``read`` returns; ``clock``: the time source of ``fetched_at`` and of the
    refresh decision; ``once``: ask each remote at most once in this cache's life, whatever
    ``refresh_seconds`` (the cache of one load: every include of a remote sees the same refs,
    fetched at most once; an unreachable remote is tried once).
    """

    def __init__(
        self,
        directory: Path,
        *,
        refresh_seconds: float = 300.0,
        timeout: float = 30.0,
        offline: bool = False,
        max_file_bytes: int = 4 * 1024 * 1024,
        clock: Callable[[], float] = time.time,
        once: bool = False,
    ) -> None:
        self.root = Path(directory).absolute() / "git"
        self.once = once
        self.refresh_seconds = refresh_seconds
        self.timeout = timeout
        self.offline = offline
        self.max_file_bytes = max_file_bytes
        self.clock = clock
        # key -> (table, time after which the remote is asked again)
        self._tables: dict[str, tuple[RefTable, float]] = {}
        self._trees: OrderedDict[tuple[str, str], dict[str, _Entry]] = OrderedDict()
        self._blobs: OrderedDict[tuple[str, str, str], str | None] = OrderedDict()
        self._commits: set[tuple[str, str]] = set()  # (key, sha) of commits seen in a mirror

    # -- public API ---------------------------------------------------------------------------

    def refs(self, remote: GitRemote) -> RefTable:
        """The remote's refs: cached within ``refresh_seconds`` (no git call), else fetched."""
        return self._refs(_target(remote), force=False)

    def resolve(self, remote: GitRemote, ref: str | None) -> Resolved:
        """The commit ``ref`` names on the remote (None: the default branch).

        Raises ``IncludeSourceError`` naming the ref and the remote when it does not exist.
        """
        target = _target(remote)
        if ref is None or ref == "HEAD":
            return self._resolve_default(target)
        if not _valid_ref(ref):
            raise _unknown_ref(ref, target)
        hexa = ref.lower() if _SHORT_HEX.fullmatch(ref.lower()) else None
        if hexa is not None and len(hexa) == 40:
            return self._resolve_sha(target, ref, hexa)
        if hexa is not None:
            # an abbreviation the mirror knows, that no cached ref name shadows: no network trip
            cached = self._fresh_table(target) or self._load_state(target)
            if cached is not None and ref not in cached.tags and ref not in cached.branches:
                sha = self._commit_for(target, hexa)
                if sha is not None:
                    return Resolved(sha, ref, "sha")
        table = self._refs(target, force=False)
        found = self._lookup_name(target, table, ref)
        if found is not None:
            return found
        if hexa is not None:
            return self._resolve_sha(target, ref, hexa)
        raise _unknown_ref(ref, target)

    def read(self, remote: GitRemote, sha: str, path: str) -> str | None:
        """The text of the file ``path`` at commit ``sha``; None when no regular file is there.

        Paths with ``..``, ``.`` or empty segments or a leading ``/`` and symlinks give None;
        a file larger than ``max_file_bytes`` or not UTF-8 raises ``IncludeSourceError``.
        """
        target = _target(remote)
        if not _safe_path(path):
            return None
        full = self._known_commit(target, sha)
        cache_key = (target.key, full, path)
        if cache_key in self._blobs:
            self._blobs.move_to_end(cache_key)
            return self._blobs[cache_key]
        tree = self._trees.get((target.key, full))
        entry = tree.get(path) if tree is not None else self._tree_entry(target, full, path)
        text = None if entry is None else self._blob_text(target, full, path, entry)
        self._blobs[cache_key] = text
        if len(self._blobs) > _MAX_CACHED_BLOBS:
            self._blobs.popitem(last=False)
        return text

    def files(self, remote: GitRemote, sha: str) -> tuple[str, ...]:
        """Every regular file at commit ``sha`` (no symlinks, no submodules), sorted."""
        target = _target(remote)
        full = self._known_commit(target, sha)
        return tuple(sorted(self._tree(target, full)))

    def state(self, remote: GitRemote) -> tuple[str, float, tuple[int, int, int]] | None:
        """(state file, ``fetched_at``, stamp) of the refs this cache last used for ``remote``; no I/O.

        While that file keeps its stamp and ``fetched_at + refresh_seconds`` has not passed, any
        ``GitCache`` of this directory answers ``refs`` with the same refs and runs no git (the
        parse cache checks a name resolved from them with one ``stat``). None when no refs were
        used yet or they are the cached ones of an unreachable remote.
        """
        held = self._tables.get(_target(remote).key)
        if held is None or held[0].stamp is None or held[0].warning is not None:
            return None
        return str(self._state_path(_target(remote))), held[0].fetched_at, held[0].stamp

    def has_commit(self, remote: GitRemote, sha: str) -> bool:
        """Whether the mirror holds the commit ``sha`` (full, or a unique abbreviation of 7+ hex).

        An unknown sha fetches the remote when the refs are older than ``refresh_seconds``.
        """
        target = _target(remote)
        sha = sha.lower()
        if not _SHORT_HEX.fullmatch(sha):
            return False
        if self._mirror_ready(target) and self._commit_for(target, sha) is not None:
            return True
        if self.offline or self._fresh_table(target) is not None:
            return False
        table = self._refs(target, force=False)
        if table.warning is not None:
            return False
        return self._commit_for(target, sha) is not None

    # -- refs ---------------------------------------------------------------------------------

    def _fresh_table(self, target: _Target) -> RefTable | None:
        held = self._tables.get(target.key)
        if held is not None and (self.once or self.clock() < held[1]):
            return held[0]
        return None

    def _refs(self, target: _Target, *, force: bool) -> RefTable:
        if not force:
            fresh = self._fresh_table(target)
            if fresh is not None:
                return fresh
            stored = self._load_state(target)
            if stored is not None and (self.offline or self._is_fresh(stored)):
                return self._keep(target, stored, stored.fetched_at)
        if self.offline:
            stored = self._load_state(target)
            if stored is not None:
                return self._keep(target, stored, stored.fetched_at)
            raise IncludeSourceError(
                f"git remote {target.shown} has never been fetched and the load is offline",
                source=target.shown,
                offline=True,
            )
        with self._locked(target), _cache_errors(self.root):
            stored = self._load_state(target)
            if stored is not None and not force and self._is_fresh(stored):
                return self._keep(target, stored, stored.fetched_at)
            failed_at, reason = self._last_failure(target)
            if stored is not None and not force and self.clock() < failed_at + self.refresh_seconds:
                # Another process (or this one) found the remote unreachable moments ago: waiting for
                # its timeout again on every parse would hold the dag-processor; ask again later.
                return self._keep(target, self._stale(target, stored, reason), failed_at)
            try:
                table = self._fetch(target)
            except _GitFailed as failed:
                if stored is None:
                    raise IncludeSourceError(
                        f"git remote {target.shown} is unreachable: {failed.reason}", source=target.shown
                    ) from None
                self._record_failure(target, failed.reason)
                # ask again no sooner than refresh_seconds from now
                return self._keep(target, self._stale(target, stored, failed.reason), self.clock())
            table = replace(table, stamp=self._write_state(target, table))
            self._failure_path(target).unlink(missing_ok=True)
        return self._keep(target, table, table.fetched_at)

    def _stale(self, target: _Target, stored: RefTable, reason: str) -> RefTable:
        """The cached refs, with the warning that says the remote could not be reached."""
        when = datetime.fromtimestamp(stored.fetched_at, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        warning = f"git remote {target.shown} is unreachable ({reason}); using the cached refs fetched at {when}"
        return RefTable(stored.head, stored.branches, stored.tags, stored.fetched_at, warning)

    def _failure_path(self, target: _Target) -> Path:
        return self.root / f"{target.key}.unreachable.json"

    def _last_failure(self, target: _Target) -> tuple[float, str]:
        """When the remote was last found unreachable (by any process) and why; ``(-inf, "")`` if not."""
        try:
            raw = json.loads(self._failure_path(target).read_text(encoding="utf-8"))
            return float(raw["failed_at"]), str(raw["reason"])[:MAX_REASON_CHARS]
        except (OSError, ValueError, KeyError, TypeError):
            return float("-inf"), ""

    def _record_failure(self, target: _Target, reason: str) -> None:
        """Remember (for every process of the deployment) that the remote could not be reached now."""
        with contextlib.suppress(OSError):  # a marker that cannot be written: every process asks again
            failure = {"failed_at": self.clock(), "reason": reason}
            atomic_write(self._failure_path(target), json.dumps(failure).encode("utf-8"))

    def _keep(self, target: _Target, table: RefTable, since: float) -> RefTable:
        self._tables[target.key] = (table, since + self.refresh_seconds)
        return table

    def _is_fresh(self, table: RefTable) -> bool:
        return self.clock() < table.fetched_at + self.refresh_seconds

    def _fetch(self, target: _Target) -> RefTable:
        mirror = self._ensure_mirror(target)
        fetched_at = self.clock()
        listed = self._git(target, ["ls-remote", "--symref", "--end-of-options", target.git_url, "HEAD"], cwd=mirror)
        head = _symref_head(listed)
        self._git(
            target,
            [
                "fetch",
                "--prune",
                "--no-tags",
                "--no-write-fetch-head",
                "--no-recurse-submodules",
                "--update-head-ok",
                "--quiet",
                "--end-of-options",
                target.git_url,
                "+refs/heads/*:refs/heads/*",
                "+refs/tags/*:refs/tags/*",
            ],
            cwd=mirror,
        )
        branches = self._ref_map(target, "refs/heads/", "-committerdate")
        tags = self._ref_map(target, "refs/tags/", "-creatordate")
        if head is None:
            head = _detached_head(listed, branches)
        return RefTable(head, MappingProxyType(branches), MappingProxyType(tags), fetched_at)

    def _ref_map(self, target: _Target, prefix: str, sort: str) -> dict[str, str]:
        """``name -> commit`` of the refs under ``prefix`` (at most ``MAX_REFS``, newest first)."""
        fmt = "%(refname)%00%(objecttype)%00%(objectname)%00%(*objecttype)%00%(*objectname)"
        out = self._git(
            target,
            ["for-each-ref", f"--count={MAX_REFS}", f"--sort={sort}", f"--format={fmt}", prefix],
            cwd=self._mirror(target),
        )
        refs: dict[str, str] = {}
        nested: list[str] = []
        for line in out.splitlines():
            parts = line.split("\0")
            if len(parts) != 5:
                continue
            refname, kind, oid, peeled_kind, peeled = parts
            name = refname[len(prefix) :]
            if kind == "commit":
                refs[name] = oid
            elif kind == "tag" and peeled_kind == "commit":
                refs[name] = peeled
            elif kind == "tag" and peeled_kind == "tag":
                nested.append(name)
        for name in nested:  # a tag of a tag: rare, peeled one by one
            sha = self._peel(target, f"{prefix}{name}")
            if sha is not None:
                refs[name] = sha
        return dict(sorted(refs.items()))

    def _peel(self, target: _Target, refname: str) -> str | None:
        try:
            out = self._git(
                target,
                ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{refname}^{{commit}}"],
                cwd=self._mirror(target),
            )
        except _GitFailed:
            return None
        sha = out.strip()
        return sha if _HEX40.fullmatch(sha) else None

    # -- resolve ------------------------------------------------------------------------------

    def _resolve_default(self, target: _Target) -> Resolved:
        table = self._refs(target, force=False)
        if table.head is None:
            raise IncludeSourceError(
                f"git remote {target.shown} has no default branch (its HEAD names no branch)", source=target.shown
            )
        sha = table.branches.get(table.head)
        if sha is None and len(table.branches) >= MAX_REFS:
            sha = self._peel(target, f"refs/heads/{table.head}")
        if sha is None:
            raise _unknown_ref(table.head, target)
        return Resolved(sha, table.head, "branch", table.warning)

    def _lookup_name(self, target: _Target, table: RefTable, ref: str) -> Resolved | None:
        if ref.startswith("refs/tags/"):
            order = [("tag", ref[len("refs/tags/") :])]
        elif ref.startswith("refs/heads/"):
            order = [("branch", ref[len("refs/heads/") :])]
        else:
            order = [("tag", ref), ("branch", ref)]
        for kind, name in order:
            refs, prefix = (table.tags, "refs/tags/") if kind == "tag" else (table.branches, "refs/heads/")
            sha = refs.get(name)
            if sha is None and len(refs) >= MAX_REFS and name:
                sha = self._peel(target, prefix + name)
            if sha is not None:
                return Resolved(sha, name, kind, table.warning)
        return None

    def _resolve_sha(self, target: _Target, ref: str, prefix: str) -> Resolved:
        """A commit by its sha: from the mirror, else after one fetch (forced: a new commit)."""
        if self._mirror_ready(target):
            sha = self._commit_for(target, prefix)
            if sha is not None:
                return Resolved(sha, ref, "sha")
        if not self.offline:
            fetched = self._refs(target, force=True)
            warning = fetched.warning
            sha = self._commit_for(target, prefix)
            if sha is None and len(prefix) == 40 and fetched.warning is None:
                sha = self._fetch_one(target, prefix)
            if sha is not None:
                return Resolved(sha, ref, "sha", warning)
        raise _unknown_ref(ref, target)

    def _fetch_one(self, target: _Target, sha: str) -> str | None:
        """Fetch a commit no branch or tag reaches (servers allowing any sha in ``want``)."""
        with self._locked(target):
            try:
                self._git(
                    target,
                    [
                        "fetch",
                        "--no-tags",
                        "--no-write-fetch-head",
                        "--quiet",
                        "--end-of-options",
                        target.git_url,
                        f"+{sha}:refs/ci-vars/keep/{sha}",
                    ],
                    cwd=self._mirror(target),
                )
            except _GitFailed:
                return None
        return self._commit_for(target, sha)

    def _commit_for(self, target: _Target, prefix: str) -> str | None:
        """The one commit of the mirror whose sha starts with ``prefix``; None if none or several."""
        if (target.key, prefix) in self._commits:
            return prefix
        if len(prefix) == 40:
            candidates = [prefix]
        else:
            try:
                out = self._git(target, ["rev-parse", f"--disambiguate={prefix}"], cwd=self._mirror(target))
            except _GitFailed:
                return None
            candidates = [line for line in out.split() if _HEX40.fullmatch(line)][:100]
        if not candidates:
            return None
        out = self._git(
            target,
            ["cat-file", "--batch-check=%(objectname) %(objecttype)"],
            cwd=self._mirror(target),
            stdin="".join(f"{c}\n" for c in candidates),
        )
        commits = [line.split()[0] for line in out.splitlines() if line.endswith(" commit")]
        if len(commits) != 1:
            return None
        if len(self._commits) < 100_000:
            self._commits.add((target.key, commits[0]))
        return commits[0]

    def _known_commit(self, target: _Target, sha: str) -> str:
        lowered = sha.lower()
        if (target.key, lowered) in self._commits:
            return lowered
        if _SHORT_HEX.fullmatch(lowered) and self._mirror_ready(target):
            full = self._commit_for(target, lowered)
            if full is not None:
                return full
        raise IncludeSourceError(
            f"commit {sha!r} is not in the cache of git remote {target.shown}; resolve a ref first",
            source=target.shown,
        )

    # -- files --------------------------------------------------------------------------------

    def _tree(self, target: _Target, sha: str) -> dict[str, _Entry]:
        cached = self._trees.get((target.key, sha))
        if cached is not None:
            self._trees.move_to_end((target.key, sha))
            return cached
        out = self._git(target, ["ls-tree", "-r", "-z", "-l", "--full-tree", sha], cwd=self._mirror(target))
        entries: dict[str, _Entry] = {}
        for record in out.split("\0"):
            parsed = _parse_ls_tree(record)
            if parsed is None:
                continue
            path, entry = parsed
            if entry.kind == "blob" and entry.mode in _REGULAR_MODES:
                entries[path] = entry
                if len(entries) > MAX_FILES:
                    raise IncludeSourceError(
                        f"git remote {target.shown} has more than {MAX_FILES} files at {sha}", source=target.shown
                    )
        self._trees[(target.key, sha)] = entries
        if len(self._trees) > _MAX_CACHED_TREES:
            self._trees.popitem(last=False)
        return entries

    def _tree_entry(self, target: _Target, sha: str, path: str) -> _Entry | None:
        out = self._git(target, ["ls-tree", "-z", "-l", "--full-tree", sha, "--", path], cwd=self._mirror(target))
        for record in out.split("\0"):
            parsed = _parse_ls_tree(record)
            if parsed is not None and parsed[0] == path:
                entry = parsed[1]
                return entry if entry.kind == "blob" and entry.mode in _REGULAR_MODES else None
        return None

    def _blob_text(self, target: _Target, sha: str, path: str, entry: _Entry) -> str:
        if entry.size > self.max_file_bytes:
            raise IncludeSourceError(
                f"file `{path}` at {sha} of git remote {target.shown} is too large "
                f"({entry.size} bytes; at most {self.max_file_bytes})",
                source=target.shown,
            )
        data = self._git_bytes(target, ["cat-file", "blob", entry.oid], cwd=self._mirror(target))
        if len(data) > self.max_file_bytes:
            raise IncludeSourceError(
                f"file `{path}` at {sha} of git remote {target.shown} is too large", source=target.shown
            )
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise IncludeSourceError(
                f"file `{path}` at {sha} of git remote {target.shown} is not UTF-8 text (byte {exc.start})",
                source=target.shown,
            ) from None

    # -- mirror, state, lock ------------------------------------------------------------------

    def _mirror(self, target: _Target) -> Path:
        return self.root / f"{target.key}.git"

    def _state_path(self, target: _Target) -> Path:
        return self.root / f"{target.key}.json"

    def _home(self) -> Path:
        return self.root / ".home"

    def _mirror_ready(self, target: _Target) -> bool:
        return (self._mirror(target) / "HEAD").is_file()

    def _ensure_root(self) -> None:
        try:
            for path in (self.root.parent, self.root, self._home()):
                path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise IncludeSourceError(
                f"the git cache directory {self.root} cannot be created: {exc.strerror}", source=str(self.root)
            ) from None

    def _ensure_mirror(self, target: _Target) -> Path:
        mirror = self._mirror(target)
        if self._mirror_ready(target):
            return mirror
        if mirror.exists():  # a half-made mirror of a crashed process
            shutil.rmtree(mirror)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.key}.", dir=self.root))
        try:
            self._git(target, ["init", "--bare", "--quiet", "--template=", str(staging)], cwd=staging)
            os.replace(staging, mirror)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return mirror

    @contextlib.contextmanager
    def _locked(self, target: _Target) -> Iterator[None]:
        """An exclusive ``flock`` on the mirror's lock file (waits at most a few timeouts)."""
        self._ensure_root()
        with _cache_errors(self.root):
            fd = os.open(self.root / f"{target.key}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + 3 * self.timeout + 5
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise IncludeSourceError(
                            f"git remote {target.shown}: another process holds the cache lock too long",
                            source=target.shown,
                        ) from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _load_state(self, target: _Target) -> RefTable | None:
        try:  # the stamp of the very file read (a writer replaces it, never rewrites it)
            with self._state_path(target).open("rb") as handle:
                status = os.fstat(handle.fileno())
                raw = json.loads(handle.read().decode("utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(raw, dict) or raw.get("version") != _STATE_VERSION or not self._mirror_ready(target):
            return None
        head, branches, tags, fetched_at = raw.get("head"), raw.get("branches"), raw.get("tags"), raw.get("fetched_at")
        if not (
            (head is None or isinstance(head, str))
            and _is_ref_map(branches)
            and _is_ref_map(tags)
            and isinstance(fetched_at, int | float)
        ):
            return None
        stamp = (status.st_ino, status.st_mtime_ns, status.st_size)
        return RefTable(
            head, MappingProxyType(dict(branches)), MappingProxyType(dict(tags)), float(fetched_at), stamp=stamp
        )

    def _write_state(self, target: _Target, table: RefTable) -> tuple[int, int, int]:
        """Write the state file (under the mirror's lock); returns its stamp."""
        state = {
            "version": _STATE_VERSION,
            "url": target.shown,
            "head": table.head,
            "branches": dict(table.branches),
            "tags": dict(table.tags),
            "fetched_at": table.fetched_at,
        }
        atomic_write(self._state_path(target), json.dumps(state, sort_keys=True).encode("utf-8"))
        status = os.stat(self._state_path(target))
        return status.st_ino, status.st_mtime_ns, status.st_size

    # -- running git --------------------------------------------------------------------------

    def _git(self, target: _Target, args: list[str], *, cwd: Path | None = None, stdin: str | None = None) -> str:
        data = self._git_bytes(target, args, cwd=cwd, stdin=None if stdin is None else stdin.encode())
        return data.decode("utf-8", "replace")

    def _git_bytes(
        self, target: _Target, args: list[str], *, cwd: Path | None = None, stdin: bytes | None = None
    ) -> bytes:
        self._ensure_root()
        command = [
            "git",
            "-c", "protocol.ext.allow=never",
            "-c", "credential.helper=",
            "-c", "core.askPass=",
            "-c", "gc.auto=0",
            "-c", "maintenance.auto=false",
            "-c", "core.fsmonitor=false",
            "-c", "core.hooksPath=/dev/null",
            *args,
        ]  # fmt: skip
        try:
            process = subprocess.Popen(
                command,
                cwd=cwd,
                env=self._env(target),
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise IncludeSourceError(
                f"cannot run git for {target.shown}: {exc.strerror}", source=target.shown
            ) from None
        try:
            out, err = process.communicate(stdin, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise _GitFailed(args[0], f"git {args[0]} timed out after {self.timeout:g} s", target.shown) from None
        if process.returncode != 0:
            reason = _scrub(err.decode("utf-8", "replace"), target) or f"git {args[0]} exited {process.returncode}"
            raise _GitFailed(args[0], reason, target.shown)
        return out

    def _env(self, target: _Target) -> dict[str, str]:
        home = str(self._home())
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": home,
            "XDG_CONFIG_HOME": home,
            "LC_ALL": "C",
            "LANG": "C",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "",
            "SSH_ASKPASS": "",
            "GCM_INTERACTIVE": "never",
            "GIT_ALLOW_PROTOCOL": _ALLOWED_PROTOCOLS,
            "GIT_SSH_COMMAND": "ssh -o BatchMode=yes",
            "GIT_LITERAL_PATHSPECS": "1",
            "GIT_NO_REPLACE_OBJECTS": "1",
            "GIT_OPTIONAL_LOCKS": "0",
        }
        # the deployment's network settings: proxies, CA bundles, ssh agent
        for name in (
            "http_proxy", "https_proxy", "no_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
            "ALL_PROXY", "GIT_SSL_CAINFO", "GIT_SSL_CAPATH", "SSL_CERT_FILE", "SSL_CERT_DIR", "SSH_AUTH_SOCK",
        ):  # fmt: skip
            if name in os.environ:
                env[name] = os.environ[name]
        env["GIT_CONFIG_COUNT"] = str(len(target.config))
        for index, (key, value) in enumerate(target.config):
            env[f"GIT_CONFIG_KEY_{index}"] = key
            env[f"GIT_CONFIG_VALUE_{index}"] = value
        return env


# -- helpers ------------------------------------------------------------------------------------


def _target(remote: GitRemote) -> _Target:
    """Check the remote's URL and split it into what git is given and what git never sees."""
    url = remote.url
    shown = remote.shown()
    if not isinstance(url, str) or not url or _CONTROL.search(url):
        raise IncludeSourceError(f"git remote {shown!r} is not a valid URL", source=shown)
    username, password = remote.username, remote.password
    if url.startswith("/"):
        git_url = url
    else:
        if url.startswith("-") or _TRANSPORT_PREFIX.match(url):
            raise IncludeSourceError(
                f"git remote {shown} is refused: only {', '.join(sorted(_URL_SCHEMES))} URLs "
                "and absolute paths are allowed",
                source=shown,
            )
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _URL_SCHEMES or "://" not in url:
            raise IncludeSourceError(
                f"git remote {shown} is refused: only {', '.join(sorted(_URL_SCHEMES))} URLs "
                "and absolute paths are allowed (write user@host:path as ssh://user@host/path)",
                source=shown,
            )
        host = parts.hostname or ""
        if scheme != "file" and (not host or host.startswith("-")):
            raise IncludeSourceError(f"git remote {shown} is refused: it has no valid host", source=shown)
        if parts.username is not None and username is None:
            username = unquote(parts.username)
        if parts.password is not None and password is None:
            password = unquote(parts.password)
        netloc = parts.netloc.rpartition("@")[2]
        if scheme == "ssh" and username:  # ssh takes the user from the URL; a user name is no secret
            netloc = f"{quote(username, safe='')}@{netloc}"
        git_url = urlunsplit((scheme, netloc, parts.path, parts.query, parts.fragment))
    config: list[tuple[str, str]] = []
    secrets: list[str] = []
    if password:
        user = username or "oauth2"
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        config.append(("http.extraHeader", f"Authorization: Basic {token}"))
        secrets += [password, token]
    if username and len(username) >= 4:  # shorter names ("git") would mask ordinary words
        secrets.append(username)
    key = hashlib.sha256(shown.encode("utf-8")).hexdigest()[:32]
    return _Target(shown, git_url, key, tuple(config), tuple(s for s in secrets if s))


@contextlib.contextmanager
def _cache_errors(root: Path) -> Iterator[None]:
    """OS errors of the cache directory (full disk, permissions) as ``IncludeSourceError``."""
    try:
        yield
    except OSError as exc:
        raise IncludeSourceError(
            f"the git cache directory {root} cannot be written: {exc.strerror}", source=str(root)
        ) from None


def _scrub(text: str, target: _Target) -> str:
    """``text`` (git's stderr) without credentials or URL userinfo, trimmed to one short line."""
    text = _URL_USERINFO.sub(r"\1", text)
    for secret in sorted(target.secrets, key=len, reverse=True):
        text = text.replace(secret, "[MASKED]")
    lines = (" ".join(_CONTROL.sub(" ", line).split()) for line in text.splitlines())
    reason = "; ".join(line for line in lines if line)
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 3] + "..."
    return reason


def _unknown_ref(ref: str, target: _Target) -> IncludeSourceError:
    return IncludeSourceError(f"reference `{ref}` does not exist in git remote {target.shown}", source=target.shown)


def _valid_ref(ref: str) -> bool:
    """GitLab's ``Gitlab::Git::Commit.valid?``: names it refuses before any lookup."""
    return bool(ref) and not ref.startswith("-") and ":" not in ref and "\0" not in ref and not re.search(r"\s", ref)


def _safe_path(path: str) -> bool:
    if not isinstance(path, str) or not path or path.startswith("/") or "\0" in path:
        return False
    return all(segment not in ("", ".", "..") for segment in path.split("/"))


def _is_ref_map(value: object) -> TypeGuard[dict[str, str]]:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) and _HEX40.fullmatch(v) for k, v in value.items()
    )


def _symref_head(listed: str) -> str | None:
    """The default branch from ``git ls-remote --symref <url> HEAD``."""
    for line in listed.splitlines():
        target, _, name = line.partition("\t")
        if name == "HEAD" and target.startswith("ref: refs/heads/"):
            return target[len("ref: refs/heads/") :]
    return None


def _detached_head(listed: str, branches: Mapping[str, str]) -> str | None:
    """A detached remote HEAD names the default branch when exactly one branch is at its commit."""
    for line in listed.splitlines():
        sha, _, name = line.partition("\t")
        if name == "HEAD" and _HEX40.fullmatch(sha):
            at_head = [branch for branch, commit in branches.items() if commit == sha]
            return at_head[0] if len(at_head) == 1 else None
    return None


def _parse_ls_tree(record: str) -> tuple[str, _Entry] | None:
    """``<mode> SP <type> SP <oid> SP+ <size> TAB <path>`` from ``git ls-tree -l -z``."""
    meta, tab, path = record.partition("\t")
    if not tab:
        return None
    fields = meta.split()
    if len(fields) != 4:
        return None
    mode, kind, oid, size = fields
    return path, _Entry(mode, kind, oid, int(size) if size.isdigit() else -1)
