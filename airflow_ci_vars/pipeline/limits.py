"""GitLab's limits on a configuration's size, and the one measure of it that loading counts as it builds.

GitLab refuses a configuration that is too big before it looks at its keywords:

- one file: ``max_yaml_size_bytes`` and ``max_yaml_depth`` (R: ``lib/gitlab/config/loader/yaml.rb``,
  ``lib/gitlab/utils/deep_size.rb``: the parsed YAML, every alias expanded, ``The parsed YAML is too
  big``);
- every file together: ``ci_max_includes`` (``Maximum of 150 nested includes are allowed!``) and
  ``ci_max_total_yaml_size_bytes`` (``Total size of combined CI/CD configuration is too big``)
  (R: ``lib/gitlab/ci/config/external/context.rb``, ``external/mapper/verifier.rb``);
- ``extends`` 10 levels deep (``config/extendable/entry.rb``) and scripts nested 10 levels deep, which
  is how far ``!reference`` tags may nest in them (``entry/commands.rb``, docs
  ``ci/yaml/yaml_optimization.md``);
- job instances: ``ci_pipeline_size`` (``lib/gitlab/ci/pipeline/quota/size.rb``; a plan limit, off by
  default on self-managed GitLab, 10,000 here, where each instance is an Airflow task).

The *size* here is the size of the configuration written out in full: every alias, merge key,
``extends``, ``!reference`` and ``default:`` replaced by what it stands for. A scalar counts its
text's length plus one, a mapping or a sequence one. It is counted as the configuration is
built, a shared value once per place that uses it (from a size remembered per object, never by
walking the copies), so a file that would expand to gigabytes is refused after reading it once.
Nothing here imports Airflow.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_ci_vars.errors import PipelineError

__all__ = [
    "COPY_SIZE",
    "DEFAULT_LIMITS",
    "MAX_PARALLEL",
    "TOO_BIG",
    "TOTAL_TOO_BIG",
    "ConfigLimits",
    "SizeBudget",
    "instance_count",
    "matrix_size",
    "scalar_size",
    "too_many_jobs",
]

#: GitLab's message for one file over ``max_yaml_size_bytes`` or ``max_yaml_depth``.
TOO_BIG = "The parsed YAML is too big"
#: GitLab's message for all files together over ``ci_max_total_yaml_size_bytes``.
TOTAL_TOO_BIG = "Total size of combined CI/CD configuration is too big"

_MIB = 1024 * 1024

#: (file, line, column), 1-based.
_Pos = tuple[str, int, int]


@dataclass(frozen=True, slots=True)
class ConfigLimits:
    """How big a configuration may be; GitLab's application settings of the same names (``max_nesting``
    and ``max_jobs``: see the module).

    ``max_yaml_size_bytes``: one file's text, and its size with every alias and merge key
    expanded. ``max_yaml_depth``: nesting of one file, aliases expanded. ``max_includes``: files
    included, nested ones too. ``max_total_yaml_size_bytes``: the texts of every file read, and
    the size of the merged configuration with ``extends``, ``!reference`` and ``default:``
    expanded. ``max_nesting``: levels of ``extends`` and of nested ``!reference`` tags.
    ``max_jobs``: job instances (``parallel`` counted) of a pipeline and its child pipelines.
    """

    max_yaml_size_bytes: int = _MIB
    max_yaml_depth: int = 100
    max_includes: int = 150
    max_total_yaml_size_bytes: int = 8 * _MIB
    max_nesting: int = 10
    max_jobs: int = 10_000


DEFAULT_LIMITS = ConfigLimits()

#: What an entry a deep merge copies counts: a copy costs about 40 bytes of memory, where a byte of
#: the file costs up to 55 once loaded (a flow list of one-letter items), and a shared value none.
COPY_SIZE = 16

#: GitLab's most instances of one job (``Entry::Product::Parallel``).
MAX_PARALLEL = 200


def matrix_size(matrix: list[Any]) -> int:
    """How many variable sets a ``parallel:matrix`` makes (a product per entry), without making them."""
    return sum(
        math.prod(len(v) if isinstance(v, (list, tuple)) else 1 for v in entry.values())
        for entry in matrix
        if isinstance(entry, Mapping)
    )


def instance_count(parallel: object) -> int:
    """How many instances ``parallel`` makes of a job (1 when absent, or invalid: the model refuses it)."""
    if isinstance(parallel, int) and not isinstance(parallel, bool) and 1 <= parallel <= MAX_PARALLEL:
        return parallel
    if isinstance(parallel, Mapping) and isinstance(parallel.get("matrix"), list):
        count = matrix_size(parallel["matrix"])
        return count if 1 <= count <= MAX_PARALLEL else 1
    return 1


def too_many_jobs(limit: int) -> str:
    """GitLab's message for more job instances than ``limit`` (``Pipeline::Quota::Size#message``)."""
    return f"The number of jobs has exceeded the limit of {limit} (child pipelines included)"


def scalar_size(value: object) -> int:
    """The size a scalar counts for: the length of its text, plus one."""
    if isinstance(value, str):
        return len(value) + 1
    if value is None or isinstance(value, bool):
        return 1
    return len(str(value)) + 1


class SizeBudget:
    """What loading one pipeline has built so far, against ``ConfigLimits.max_total_yaml_size_bytes``.

    Three counts, each against that limit: the bytes of every file read (GitLab's own measure), the
    entries deep merges copied (``include``, ``extends``; ``COPY_SIZE`` each), and the size of the
    merged configuration (``measure_all``). Sizes of containers are remembered by identity: the
    configuration is read-only once built, so a value shared by many places is walked once. Also
    the job instances built (``jobs``, against ``max_jobs``). One budget serves a pipeline and its
    child pipelines.
    """

    __slots__ = ("_sizes", "_totals", "copied", "jobs", "limits", "read")

    def __init__(self, limits: ConfigLimits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self.read = 0
        self.copied = 0
        self.jobs = 0  # job instances built so far (against ``max_jobs``)
        self._totals: dict[str, int] = {}
        self._sizes: dict[int, tuple[object, int, int]] = {}

    @property
    def limit(self) -> int:
        """``max_total_yaml_size_bytes``."""
        return self.limits.max_total_yaml_size_bytes

    def add_text(self, size: int, pos: _Pos) -> None:
        """Count a file's text (``size`` bytes, read for the include written at ``pos``)."""
        self.read += size
        if self.read > self.limit:
            raise _too_big(pos, key="include")

    def add_copies(self, count: int, pos: _Pos, *, job: str | None = None, key: str | None = None) -> None:
        """Count ``count`` entries a deep merge is about to copy, ``COPY_SIZE`` each (for the entry at ``pos``)."""
        self.copied += count * COPY_SIZE
        if self.copied > self.limit:
            raise _too_big(pos, job=job, key=key)

    def measure_all(self, entries: Iterable[tuple[str, object, _Pos, int]], phase: str) -> None:
        """Add the sizes of top-level ``entries`` (name, value, where it is written, how many times
        it counts: a job's instances) to the running total of ``phase`` (each load of a pipeline
        and its child pipelines adds to the same)."""
        total = self._totals.get(phase, 0)
        for name, value, pos, times in entries:
            total = self.measure(value, pos, job=name, start=total, times=times)
        self._totals[phase] = total

    def measure(self, node: object, pos: _Pos, *, job: str | None = None, start: int = 0, times: int = 1) -> int:
        """``start`` plus ``times`` the size of ``node`` (a top-level value at ``pos``), everything expanded.

        Raises ``PipelineError`` (GitLab's ``Total size of combined CI/CD configuration is too
        big``) at the entry whose size brings a container, or the running total, over the limit:
        the deepest such entry, which is where a fan-out (an alias, a ``!reference``) is written.
        Nesting deeper than ``max_yaml_depth`` (pieces joined by ``!reference``) is ``The parsed
        YAML is too big``.
        """
        try:
            size = self._size(node, 2)[0] if isinstance(node, (dict, list)) else scalar_size(node)
        except _Over as over:
            where = over.pos or pos
            message = TOO_BIG if over.deep else TOTAL_TOO_BIG
            raise PipelineError(message, file=where[0], line=where[1], column=where[2], job=job) from None
        total = start + size * times
        if total > self.limit:
            raise _too_big(pos, job=job)
        return total

    def _size(self, node: dict[Any, Any] | list[Any], depth: int) -> tuple[int, int]:
        """(size, height) of a container at ``depth`` (the top-level mapping is 1), remembered.

        Recursion is bounded: nothing deeper than ``max_yaml_depth`` is entered. Positions are
        looked up only for an error (``_Over`` without one gets its entry's from the caller).
        """
        known = self._sizes.get(id(node))
        max_depth = self.limits.max_yaml_depth
        if known is not None and known[0] is node:
            if depth + known[2] - 1 > max_depth:
                raise _Over(deep=True)
            return known[1], known[2]
        if depth > max_depth:
            raise _Over(deep=True)
        limit = self.limit
        size, height = 1, 0
        entries = node.items() if isinstance(node, dict) else enumerate(node)
        keyed = isinstance(node, dict)
        for key, child in entries:
            if keyed:
                size += len(key) + 1 if type(key) is str else scalar_size(key)
            if type(child) is str:
                size += len(child) + 1
            elif isinstance(child, (dict, list)):
                try:
                    child_size, child_height = self._size(child, depth + 1)
                except _Over as over:
                    if over.pos is None:
                        over.pos = _entry_pos(node, key)
                    raise
                size += child_size
                if child_height > height:
                    height = child_height
                if size > limit:
                    raise _Over(_entry_pos(node, key))
            else:
                size += scalar_size(child)
        if size > limit:
            raise _Over()
        self._sizes[id(node)] = (node, size, height + 1)
        return size, height + 1


def _entry_pos(node: object, key: object) -> _Pos | None:
    """Where the entry ``key`` of a mapping (or item ``key`` of a sequence) is written, if known."""
    if isinstance(node, dict):
        positions = getattr(node, "key_pos", None)
        return positions.get(key) if positions else getattr(node, "pos", None)
    item_pos = getattr(node, "item_pos", None)
    if item_pos and isinstance(key, int) and key < len(item_pos):
        return item_pos[key]  # type: ignore[no-any-return]
    return getattr(node, "pos", None)


class _Over(Exception):
    """Internal: a limit was passed at ``pos`` (None: at the entry holding the container; ``deep``: depth)."""

    def __init__(self, pos: _Pos | None = None, *, deep: bool = False) -> None:
        super().__init__(pos)
        self.pos = pos
        self.deep = deep


def _too_big(pos: _Pos, *, job: str | None = None, key: str | None = None) -> PipelineError:
    return PipelineError(TOTAL_TOO_BIG, file=pos[0], line=pos[1], column=pos[2], job=job, key=key)
