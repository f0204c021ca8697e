"""What loading a pipeline read from disk: each file with the hash of its text, each search with its result.

The loader fills a ``SourceLog`` as it goes (``load_pipeline(..., log=)``); the parse cache keeps
it beside the pipeline and asks ``changed()`` before reusing the pipeline. Searches count as
sources because their result shapes the configuration: a new file matched by
``include: 'ci/*.yml'`` adds an include, a new file matched by ``include:rules:exists`` may turn
an include on. Hashes are of the text the loader parsed (not of the file read again later), so
a file edited while a load runs cannot be recorded with a hash it was not loaded with.

A git ref or component version is recorded with the git cache's state file its refs came from
(``GitCache.state``): while that file is unchanged and younger than ``include_git_refresh``, the
git cache would resolve the name from the same refs, so ``changed`` checks it with one ``stat``
and never imports the git machinery (a warm parse of a pipeline of components costs about what
one of ``include:local`` files costs). A name that may be a commit SHA is always asked of the
cache (its answer also depends on the mirror's objects).
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_ci_vars.errors import CIVarsError, PipelineError
from airflow_ci_vars.pipeline.limits import DEFAULT_LIMITS

if TYPE_CHECKING:
    from airflow_ci_vars.pipeline.external.sources import IncludeSources

__all__ = [
    "COMPONENT_VERSION",
    "GIT_REF",
    "REMOTE_FILE",
    "RULES_EXISTS",
    "WILDCARD_INCLUDE",
    "SourceLog",
    "text_digest",
]

#: ``include:local`` with a ``*``: the sorted paths GitLab's wildcard search finds.
WILDCARD_INCLUDE = "include:local wildcard"
#: ``include:rules:exists``: whether any of the patterns matches (``("found",)`` or ``()``).
RULES_EXISTS = "include:rules:exists"

#: ``include:project``: the commit a ref of a git repository resolved to.
GIT_REF = "git ref"
#: ``include:component``: the commit a component version (``~latest``, ``1.2``...) resolved to.
COMPONENT_VERSION = "component version"
#: ``include:remote``: the SHA-256 of the file fetched.
REMOTE_FILE = "remote file"

_FOUND = ("found",)
#: a ref or version that may name a commit (git's and GitLab's abbreviated or full SHAs)
_SHA_LIKE = re.compile(r"[0-9a-fA-F]{4,64}")

#: (kind, URL, ref or version): a source outside the checkout
ExternalKey = tuple[str, str, str]
#: (state file, fetched_at, (inode, mtime_ns, size)): the git refs a name was resolved from
RefsState = tuple[str, float, tuple[int, int, int]]

#: (kind, root directory, patterns)
SearchKey = tuple[str, str, tuple[str, ...]]


def text_digest(text: str) -> str:
    """The SHA-256 of a file's text (as the loader decoded it)."""
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(slots=True)
class SourceLog:
    """Every file a load read (path -> text digest) and every search it ran (key -> result)."""

    files: dict[str, str] = field(default_factory=dict)
    searches: dict[SearchKey, tuple[str, ...]] = field(default_factory=dict)
    #: (kind, URL, ref or version) -> commit SHA or content hash, for the sources outside the checkout
    external: dict[ExternalKey, str] = field(default_factory=dict)
    #: the git cache state each recorded ref or version was resolved from (``GitCache.state``)
    refs_states: dict[ExternalKey, RefsState] = field(default_factory=dict)
    #: the warnings of sources read from their cache because they could not be reached (not saved
    #: with a cache entry: a pipeline loaded so is not cached, see ``pipeline.cache``)
    stale: list[str] = field(default_factory=list)

    def read(self, path: str | os.PathLike[str], text: str) -> None:
        """Record that the loader parsed ``text`` from ``path``."""
        self.files[os.fspath(path)] = text_digest(text)

    def searched_wildcard(self, root: str | os.PathLike[str], pattern: str, found: Iterable[str]) -> None:
        """Record the paths a wildcard ``include:local`` found under ``root``."""
        self.searches[(WILDCARD_INCLUDE, os.fspath(root), (pattern,))] = tuple(found)

    def searched_exists(self, root: str | os.PathLike[str], patterns: Iterable[str], found: bool) -> None:
        """Record whether an ``include:rules:exists`` clause found a file under ``root``."""
        self.searches[(RULES_EXISTS, os.fspath(root), tuple(patterns))] = _FOUND if found else ()

    def resolved_ref(self, url: str, ref: str | None, sha: str, state: RefsState | None = None) -> None:
        """Record that ``ref`` (None: the default branch) of the git repository ``url`` was commit
        ``sha``, resolved from the refs of the git cache's ``state``."""
        self._external((GIT_REF, url, ref or ""), sha, state)

    def resolved_component(self, url: str, version: str, sha: str, state: RefsState | None = None) -> None:
        """Record that component version ``version`` of the repository ``url`` was commit ``sha``,
        resolved from the refs of the git cache's ``state``."""
        self._external((COMPONENT_VERSION, url, version), sha, state)

    def _external(self, key: ExternalKey, sha: str, state: RefsState | None) -> None:
        self.external[key] = sha
        if state is not None:
            self.refs_states[key] = state
        else:
            self.refs_states.pop(key, None)

    def fetched_remote(self, url: str, sha256: str) -> None:
        """Record that the remote file ``url`` had the content hash ``sha256``."""
        self.external[(REMOTE_FILE, url, "")] = sha256

    def used_stale(self, warning: str) -> None:
        """Record that a source could not be reached and its cached content was used (``warning`` says so)."""
        self.stale.append(warning)

    def changed(self, sources: IncludeSources | None = None, warn: Callable[[str], None] | None = None) -> str | None:
        """Why loading again could give another result (a file, a search result, a ref's commit or a
        remote file differs), or None. ``sources`` are the include sources the load used: a ref is
        only asked of its remote once its cached refs are older than ``git_refresh``; ``warn`` is
        given the warning of a source that answered from its cache because it could not be reached."""
        from airflow_ci_vars.pipeline.yaml_loader import read_text

        for path, digest in self.files.items():
            try:  # no further than the loader reads: a file grown past the limit is a change
                text = read_text(path, max_bytes=DEFAULT_LIMITS.max_yaml_size_bytes)
            except PipelineError as err:
                return f"{path} cannot be read: {err.message}"
            if text_digest(text) != digest:
                return f"{path} changed"
        for key, found in self.searches.items():
            if _search(key) != found:
                kind, root, patterns = key
                return f"{kind} {', '.join(patterns)} (in {root}) finds other files"
        if self.external:
            from airflow_ci_vars.pipeline.external.processor import source_checker

            checked_at = time.time()
            current = None  # made for the first source the state files cannot answer
            for (kind, url, ref), value in self.external.items():
                if self._same_refs((kind, url, ref), sources, checked_at):
                    continue
                try:
                    current = current or source_checker(sources, warn)
                    now = current(kind, url, ref or None)
                except CIVarsError as err:
                    return f"{kind} {ref} of {_shown(kind, url)} cannot be checked: {err}"
                if now != value:
                    return f"{kind} {ref} of {_shown(kind, url)} is now {now}"
        return None

    def _same_refs(self, key: ExternalKey, sources: IncludeSources | None, now: float) -> bool:
        """Whether ``key`` (a ref or component version) resolves from the very refs it was resolved
        from: its state file unchanged and, as ``GitCache`` decides, not older than ``git_refresh``."""
        state = self.refs_states.get(key)
        if state is None or sources is None or _SHA_LIKE.fullmatch(key[2]):
            return False
        path, fetched_at, stamp = state
        if not (sources.offline or now < fetched_at + sources.git_refresh):
            return False
        try:
            status = os.stat(path)
        except OSError:
            return False
        return (status.st_ino, status.st_mtime_ns, status.st_size) == tuple(stamp)


def _search(key: SearchKey) -> tuple[str, ...] | None:
    """Run a recorded search again, with the loader's own search functions."""
    kind, root, patterns = key
    if kind == WILDCARD_INCLUDE:
        from airflow_ci_vars.pipeline.external.tree import search_wildcard

        return tuple(search_wildcard(Path(root), patterns[0]))
    if kind == RULES_EXISTS:
        from airflow_ci_vars.pipeline.seed import paths_exist

        return _FOUND if paths_exist(Path(root), patterns) else ()
    return None  # a kind this version does not know: never equal to a recorded result


def _shown(kind: str, url: str) -> str:
    """A recorded source's URL as a log line may show it (no credentials, no tokens)."""
    if kind == REMOTE_FILE:
        from airflow_ci_vars.pipeline.external.remote import shown_url

        return shown_url(url)
    from airflow_ci_vars.pipeline.external.git_repo import GitRemote

    return GitRemote(url).shown()
