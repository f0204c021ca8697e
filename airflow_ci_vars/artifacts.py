"""Which files a job's ``artifacts:`` keep (GitLab's ``paths``, ``exclude``, ``untracked``, ``when``).

Pure: selection only. Storing and restoring the files (Airflow's ``ObjectStoragePath``) is done by
the operator. Paths are relative to the job's working directory and may not leave it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from airflow_ci_vars.jobs import Artifacts

__all__ = ["ArtifactSelection", "relative_paths", "select_artifacts", "should_upload", "snapshot"]


@dataclass(frozen=True, slots=True)
class ArtifactSelection:
    """Relative POSIX paths of the files to keep, and GitLab-style warnings for missing paths."""

    files: tuple[str, ...]
    warnings: tuple[str, ...]


def should_upload(artifacts: Artifacts, succeeded: bool) -> bool:
    """``artifacts:when``: ``on_success`` (default), ``on_failure`` or ``always``."""
    if artifacts.when == "always":
        return True
    return succeeded if artifacts.when == "on_success" else not succeeded


def snapshot(directory: str | os.PathLike[str]) -> frozenset[str]:
    """Relative paths of every file under ``directory`` (before the job: what is "tracked")."""
    root = Path(directory)
    return frozenset(_files_under(root, root))


def _files_under(root: Path, start: Path) -> Iterable[str]:
    if start.is_file() or start.is_symlink():
        yield start.relative_to(root).as_posix()
        return
    for dirpath, _dirnames, filenames in os.walk(start):
        for name in filenames:
            yield (Path(dirpath) / name).relative_to(root).as_posix()


def _expand(root: Path, pattern: str) -> set[str] | None:
    """Files matched by one pattern (a directory matches everything under it); None if it escapes."""
    clean = pattern.strip()
    if not clean:
        return set()
    pure = PurePosixPath(clean)
    if pure.is_absolute() or ".." in pure.parts:
        return None
    found: set[str] = set()
    text = clean.rstrip("/") or "."
    for match in root.glob(text) if any(c in text for c in "*?[") else [root / text]:
        if match.exists() or match.is_symlink():
            found.update(_files_under(root, match))
    return found


def select_artifacts(
    project_dir: str | os.PathLike[str],
    artifacts: Artifacts,
    *,
    tracked: frozenset[str] = frozenset(),
) -> ArtifactSelection:
    """Select the files to keep: ``paths`` (globs, ``**``, directories), plus every file created by
    the job when ``untracked`` (files not in ``tracked``, the snapshot taken before the job), minus
    ``exclude``. A path matching nothing gives a warning, as in GitLab; a path outside the working
    directory is refused with a warning."""
    root = Path(project_dir)
    warnings: list[str] = []
    chosen: set[str] = set()
    for pattern in artifacts.paths:
        found = _expand(root, pattern)
        if found is None:
            warnings.append(f"WARNING: {pattern}: path is outside the project directory, ignored")
        elif not found:
            warnings.append(
                f"WARNING: {pattern}: no matching files. "
                "Ensure that the artifact path is relative to the working directory"
            )
        else:
            chosen |= found
    if artifacts.untracked:
        chosen |= snapshot(root) - tracked
    for pattern in artifacts.exclude:
        chosen -= _expand(root, pattern) or set()
    return ArtifactSelection(tuple(sorted(chosen)), tuple(warnings))


def relative_paths(files: Sequence[str]) -> tuple[str, ...]:
    """Validate stored relative paths before restoring them (no absolute paths, no ``..``)."""
    out = []
    for f in files:
        pure = PurePosixPath(f)
        if pure.is_absolute() or ".." in pure.parts or not pure.parts:
            raise ValueError(f"artifact path {f!r} is not a relative path inside the project")
        out.append(pure.as_posix())
    return tuple(out)
