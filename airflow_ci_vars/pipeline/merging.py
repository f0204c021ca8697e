"""Positions and merges of composed YAML: where a value was written, and GitLab's ``deep_merge``.

Shared by the include processor (``pipeline.external.processor``) and the composition of a
configuration (``pipeline.config``: ``extends``, ``default:``). Nothing here imports Airflow.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from airflow_ci_vars.errors import PipelineError
from airflow_ci_vars.pipeline.limits import SizeBudget
from airflow_ci_vars.pipeline.yaml_loader import Pos, PosDict, new_dict

__all__ = ["UNKNOWN_POS", "deep_merge", "flatten_plain", "item_pos", "key_pos", "located_error", "merge_into", "pos_of"]

#: The position of a value that carries none.
UNKNOWN_POS: Pos = ("<unknown>", 1, 1)


def pos_of(value: object, fallback: Pos) -> Pos:
    """Where ``value`` was written (a ``PosDict``/``PosList`` knows), else ``fallback``."""
    return getattr(value, "pos", fallback)


def key_pos(mapping: Mapping[Any, object], key: object) -> Pos:
    """Where ``key`` of ``mapping`` was written, else where the mapping was."""
    positions = getattr(mapping, "key_pos", None)
    if positions is not None and key in positions:
        return positions[key]  # type: ignore[no-any-return]
    return pos_of(mapping, UNKNOWN_POS)


def item_pos(items: list[Any], index: int, fallback: Pos) -> Pos:
    """Where item ``index`` of a ``PosList`` was written, else ``fallback``."""
    positions = getattr(items, "item_pos", None)
    return positions[index] if positions is not None and index < len(positions) else fallback


def located_error(message: str, pos: Pos, *, job: str | None = None, key: str | None = None) -> PipelineError:
    """A ``PipelineError`` at ``pos``."""
    return PipelineError(message, file=pos[0], line=pos[1], column=pos[2], job=job, key=key)


def merge_into(target: PosDict, other: Mapping[Any, object], budget: SizeBudget, where: Pos) -> None:
    """ActiveSupport ``Hash#deep_merge!``: hashes merge recursively, other values replace.

    Each entry copied is counted in ``budget`` before it is copied (for the entry at ``where``).
    """
    budget.add_copies(len(other), where)
    positions = getattr(other, "key_pos", {})
    fallback = pos_of(other, target.pos)
    for key, value in other.items():
        current = target.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            value = deep_merge(current, value, budget, where)
        target[key] = value
        target.key_pos[key] = positions.get(key, fallback)


def deep_merge(base: Mapping[Any, object], other: Mapping[Any, object], budget: SizeBudget, where: Pos) -> PosDict:
    """ActiveSupport ``Hash#deep_merge`` into a new mapping (neither input is changed)."""
    budget.add_copies(len(base), where)
    out = new_dict(pos_of(other, pos_of(base, UNKNOWN_POS)), base, getattr(base, "key_pos", None))
    merge_into(out, other, budget, where)
    return out


def flatten_plain(items: list[Any]) -> Iterator[Any]:
    """Ruby's ``Array#flatten`` of nested lists, lazily."""
    for item in items:
        if isinstance(item, list):
            yield from flatten_plain(item)
        else:
            yield item
