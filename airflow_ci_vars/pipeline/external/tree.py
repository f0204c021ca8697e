"""The files ``include:local`` sees: the project's working tree, or a git project at a commit.

GitLab reads ``include:local`` from the context's project at the context's SHA (R:
``external/file/local.rb``, ``context.rb``): the pipeline's own project for the main file, the
included project for a file of ``include:project`` or ``include:component``, and no project at
all inside a ``remote`` or ``template`` file ("does not have project!"). ``WorktreeTree`` is the
checkout next to the ``.gitlab-ci.yml`` the DAG factory reads; ``GitTree`` a project of the
deployment's map at a commit. Both refuse ``.``/``..`` segments and anything outside the tree.

Nothing here imports Airflow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from airflow_ci_vars.pipeline.yaml_loader import read_text
from airflow_ci_vars.untrusted_regexp import wildcard_regexp

if TYPE_CHECKING:
    from airflow_ci_vars.pipeline.external.git_repo import GitCache, GitRemote
    from airflow_ci_vars.pipeline.sources import SourceLog

__all__ = ["GitTree", "Tree", "WorktreeTree", "safe_location", "search_wildcard"]


class Tree(Protocol):
    """Where ``include:local`` paths resolve."""

    #: what tells this tree from another (a document parsed in one is not reused in another)
    label: str

    def read(self, location: str) -> str | None:
        """The text of ``location`` (relative, no leading ``/``), or None where GitLab finds no blob."""
        ...

    def search(self, pattern: str) -> list[str]:
        """GitLab's wildcard search (``*``, ``**``): the matching paths, sorted."""
        ...

    def shown(self, location: str) -> str:
        """The file name positions and errors show for ``location``."""
        ...


def safe_location(location: str) -> list[str] | None:
    """``location``'s path segments, or None when one is empty, ``.`` or ``..`` (never a blob)."""
    parts = location.split("/")
    return None if any(part in ("", ".", "..") for part in parts) else parts


def search_wildcard(root: Path, pattern: str) -> list[str]:
    """``Repository#search_files_by_wildcard_path``: ``**`` = ``.*?``, ``*`` = ``[^/]*?``, sorted.

    Matched by RE2 (a whole path, so laziness does not matter): linear whatever the pattern."""
    regex = wildcard_regexp(pattern, star="[^/]*", double_star=".*")
    prefix = pattern[: pattern.index("*")]
    base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
    start = root.joinpath(*base.split("/")) if base else root
    found = []
    for directory, dirnames, filenames in os.walk(start):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        relative_dir = os.path.relpath(directory, root).replace(os.sep, "/")
        for name in filenames:
            relative = name if relative_dir == "." else f"{relative_dir}/{name}"
            if regex.fullmatch(relative):
                found.append(relative)
    return sorted(found)


@dataclass(slots=True)
class WorktreeTree:
    """The checkout under ``root_dir``; files are shown under ``shown_dir`` (as the main file was named)."""

    root_dir: Path
    shown_dir: str
    max_bytes: int
    log: SourceLog | None = None
    label: str = ""
    _texts: dict[str, str | None] = field(default_factory=dict)
    _resolved_root: Path | None = None

    def shown(self, location: str) -> str:
        return os.path.join(self.shown_dir, location) if self.shown_dir else location

    def read(self, location: str) -> str | None:
        if location in self._texts:
            return self._texts[location]
        text = None
        parts = safe_location(location)
        if parts is not None:
            if self._resolved_root is None:
                self._resolved_root = self.root_dir.resolve()
            try:
                resolved = self.root_dir.joinpath(*parts).resolve()
                inside = resolved.is_relative_to(self._resolved_root) and resolved.is_file()
            except OSError:
                inside = False
            if inside:
                text = read_text(resolved, self.shown(location), max_bytes=self.max_bytes)
                if self.log is not None:
                    self.log.read(resolved, text)
        self._texts[location] = text
        return text

    def search(self, pattern: str) -> list[str]:
        found = search_wildcard(self.root_dir, pattern)
        if self.log is not None:
            self.log.searched_wildcard(self.root_dir, pattern, found)
        return found


@dataclass(slots=True)
class GitTree:
    """Project ``project`` of the deployment's map at commit ``sha`` (read through the git cache).

    A commit never changes, so nothing read here is logged for the parse cache: the ref that
    chose ``sha`` is.
    """

    cache: GitCache
    remote: GitRemote
    project: str
    sha: str
    ref: str
    label: str = ""

    def __post_init__(self) -> None:
        self.label = f"{self.project}@{self.sha}"

    def shown(self, location: str) -> str:
        return f"{self.project}@{self.ref}:{location}"

    def read(self, location: str) -> str | None:
        if safe_location(location) is None:
            return None
        return self.cache.read(self.remote, self.sha, location)

    def search(self, pattern: str) -> list[str]:
        regex = wildcard_regexp(pattern, star="[^/]*", double_star=".*")
        return [path for path in self.cache.files(self.remote, self.sha) if regex.fullmatch(path)]
