"""An on-disk cache of validated pipelines, keyed by everything a load reads.

Airflow's dag-processor parses each DAG file in a fresh process, and every task start parses its
DAG file again on the worker (docs/pipelines.md, "Parsing"), so an in-memory cache never hits: the
cache lives on disk. An entry is one file per (main file, load arguments), overwritten when
anything changes, so the directory never grows with edits. It holds a small header (what the
pipeline was built from) followed by the pickled ``Pipeline``. A lookup checks, in order: the
entry format, the load arguments, the code that built it (package version, Python version and
the package's source files), then re-hashes every file the load read and runs every search again
(wildcard includes, ``include:rules:exists``), and asks the include sources what each git ref,
component version and remote file is now (their own caches answer without a network call until
``include_git_refresh``/``include_remote_ttl`` pass); only when all agree is the pipeline unpickled. A hit
never parses YAML, resolves an include or validates anything.

Failures are never cached: a pipeline that does not load is loaded (and raises the same located
error) on every parse. Nor is a pipeline that read a source from its cache because the source could
not be reached: its warning would outlive the outage in every later hit. A lookup whose source
answers from its cache so still hits (the content is what the entry was built from) and logs that
source's warning naming the pipeline file, so an unreachable repository never goes unnoticed.

Writes go to a temporary file renamed over the entry (``os.replace``), so a reader never sees half
an entry; an entry that cannot be read or unpickled is a miss and is rewritten. The directory
belongs to the deployment (entries are pickles: anyone who can write there can run code in the
dag-processor), so it is created private (mode 0700).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from airflow_ci_vars.pipeline.loader import load_pipeline
from airflow_ci_vars.pipeline.model import Pipeline
from airflow_ci_vars.pipeline.sources import SourceLog

if TYPE_CHECKING:
    from airflow_ci_vars.pipeline.external.sources import IncludeSources

__all__ = ["FORMAT", "Loader", "ParseCache", "code_fingerprint"]

#: Bumped when the layout of an entry changes.
FORMAT = 2

logger = logging.getLogger(__name__)

_PACKAGE = Path(__file__).resolve().parent.parent


class Loader(Protocol):
    """What the cache calls on a miss: ``pipeline.loader.load_pipeline``'s signature (the one loader)."""

    def __call__(
        self,
        path: str | os.PathLike[str],
        *,
        seed: Mapping[str, str] | None = None,
        log: SourceLog | None = None,
        inputs: Mapping[str, object] | None = None,
        sources: IncludeSources | None = None,
        containers: bool = False,
    ) -> Pipeline: ...


def code_fingerprint() -> str:
    """The package version, Python's version and the size and mtime of every source file of the package.

    An editable install keeps its version while its code changes; a pipeline pickled by other code
    could lack a field or carry stale validation, so any change to the package is a miss.
    """
    from airflow_ci_vars import __version__

    digest = hashlib.sha256(f"{__version__}\0{sys.version}".encode())
    for path in sorted(_PACKAGE.rglob("*.py")):
        stat = path.stat()
        digest.update(f"\0{path.relative_to(_PACKAGE)}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class ParseCache:
    """Validated pipelines cached in ``directory``; ``loader`` loads one on a miss; ``sources`` are
    the include sources every load uses (their configuration is part of the key); ``containers``
    whether jobs run in containers (``load_pipeline``'s flag: it decides the pipeline's warnings,
    so it is part of the key too)."""

    directory: Path
    loader: Loader = field(default=load_pipeline)
    sources: IncludeSources | None = None
    containers: bool = False

    def load(
        self,
        path: str | os.PathLike[str],
        *,
        seed: Mapping[str, str] | None = None,
        inputs: Mapping[str, object] | None = None,
    ) -> Pipeline:
        """The pipeline of ``path`` as ``load_pipeline`` returns it: cached when nothing it was built from changed.

        Raises what the loader raises (``PipelineError``, ``PipelineInvalidError``); failures are not cached.
        """
        key = self._key(path, seed, inputs)
        entry = self.entry(path, seed=seed, inputs=inputs)
        code = code_fingerprint()
        pipeline = self._read(entry, key, code)
        if pipeline is not None:
            return pipeline
        log = SourceLog()
        pipeline = self.loader(
            path, seed=seed, log=log, inputs=inputs, sources=self.sources, containers=self.containers
        )
        if log.stale:  # module docstring: an unreachable source's warning must not be replayed
            return pipeline
        header = {
            "format": FORMAT,
            "key": key,
            "code": code,
            "files": log.files,
            "searches": log.searches,
            "external": log.external,
            "refs_states": log.refs_states,
        }
        self._write(entry, header, pipeline)
        return pipeline

    def lookup(
        self,
        path: str | os.PathLike[str],
        *,
        seed: Mapping[str, str] | None = None,
        inputs: Mapping[str, object] | None = None,
    ) -> Pipeline | None:
        """The cached pipeline of ``path`` when it is still what a load would give, else None (never loads)."""
        return self._read(self.entry(path, seed=seed, inputs=inputs), self._key(path, seed, inputs), code_fingerprint())

    def entry(
        self,
        path: str | os.PathLike[str],
        *,
        seed: Mapping[str, str] | None = None,
        inputs: Mapping[str, object] | None = None,
    ) -> Path:
        """The file that holds the entry of ``path`` loaded with ``seed`` and ``inputs``."""
        name = hashlib.sha256(json.dumps(self._key(path, seed, inputs)).encode()).hexdigest()[:32]
        return self.directory / f"{name}.pickle"

    def _read(self, entry: Path, key: dict[str, Any], code: str) -> Pipeline | None:
        try:
            with entry.open("rb") as stream:
                # The directory belongs to the deployment, as the DAG files do (module docstring).
                header = pickle.load(stream)  # noqa: S301
                made_by = (
                    (header.get("format"), header.get("key"), header.get("code")) if isinstance(header, dict) else ()
                )
                if made_by != (FORMAT, key, code):
                    return None
                log = SourceLog(
                    header["files"], header["searches"], header.get("external", {}), header.get("refs_states", {})
                )
                stale: list[str] = []
                reason = log.changed(self.sources, stale.append)
                if reason is not None:
                    logger.debug("parse cache miss for %s: %s", key["path"], reason)
                    return None
                pipeline = pickle.load(stream)  # noqa: S301
        except FileNotFoundError:
            return None
        except Exception as err:  # any unreadable entry (truncated, foreign, old classes) is a miss
            logger.info(
                "parse cache entry %s is unreadable (%s: %s); loading the pipeline", entry, type(err).__name__, err
            )
            return None
        if not isinstance(pipeline, Pipeline):
            return None
        for warning in dict.fromkeys(stale):  # what the load would have warned about
            logger.warning("%s: warning: %s", key["path"], warning)
        return pipeline

    def _key(
        self, path: str | os.PathLike[str], seed: Mapping[str, str] | None, inputs: Mapping[str, object] | None
    ) -> dict[str, Any]:
        key = _key(path, seed, inputs)
        key["sources"] = self.sources.fingerprint() if self.sources is not None else None
        key["containers"] = self.containers
        return key

    def _write(self, entry: Path, header: dict[str, Any], pipeline: Pipeline) -> None:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as stream:
                    pickle.dump(header, stream, protocol=pickle.HIGHEST_PROTOCOL)
                    pickle.dump(pipeline, stream, protocol=pickle.HIGHEST_PROTOCOL)
                os.replace(temporary, entry)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except Exception as err:  # a cache that cannot be written must never fail a parse
            logger.warning("parse cache: cannot write %s (%s: %s)", entry, type(err).__name__, err)


def _key(
    path: str | os.PathLike[str], seed: Mapping[str, str] | None, inputs: Mapping[str, object] | None
) -> dict[str, Any]:
    # The path as given is part of the key too: it is the file name every position and error shows.
    given = os.fspath(path)
    return {
        "path": given,
        "absolute": os.path.abspath(given),
        "seed": sorted((seed or {}).items()),
        # Input values are YAML values (strings, numbers, booleans, arrays): JSON tells them apart.
        "inputs": json.dumps(inputs or {}, sort_keys=True, default=repr),
    }
