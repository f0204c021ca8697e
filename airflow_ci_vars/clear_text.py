"""What the package writes in clear, and the one check that none of it holds a masked value.

XCom values, Asset event extras and the ``conf`` of a run a trigger job starts are stored in
Airflow's metadata database and served in clear (UI, REST API, logs of the reading task). Every
such write goes through :func:`check_clear` first: a masked value anywhere in it -- a value, a
dictionary key, an item of a list -- refuses the write with a
:class:`~airflow_ci_vars.errors.SecretInClearTextError` that names *where* only (``FILE:LINE``, a
conf field), never the value and never a key (a key may itself be the secret).

Finding the secrets is the job's :class:`~airflow_ci_vars.masking.Masker`'s work (its phrases,
encoded forms and GitLab's token sanitizers): "holds a masked value" means the masker would change
the text. Pure: no Airflow import, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import TYPE_CHECKING

from airflow_ci_vars.errors import SecretInClearTextError
from airflow_ci_vars.masking import Masker

if TYPE_CHECKING:
    from airflow_ci_vars.settings import LayerArguments

__all__ = ["check_clear", "holds_secret", "stored_masker"]


def holds_secret(value: object, masker: Masker) -> bool:
    """True if ``value`` holds text ``masker`` would mask: a string, or mappings (keys included),
    lists, tuples and sets of them, at any depth; numbers are read as their text."""
    if isinstance(value, str):
        return masker.mask(value) != value
    if isinstance(value, Mapping):
        return any(holds_secret(k, masker) or holds_secret(v, masker) for k, v in value.items())
    if isinstance(value, (list, tuple, Set)):
        return any(holds_secret(item, masker) for item in value)
    if value is None or isinstance(value, bool):
        return False
    return holds_secret(str(value), masker)


def check_clear(value: object, masker: Masker, *, where: str, written_to: str) -> None:
    """Raise :class:`SecretInClearTextError` (naming ``where`` and ``written_to`` only) if
    ``value`` holds a masked value (:func:`holds_secret`)."""
    if holds_secret(value, masker):
        raise SecretInClearTextError(where, written_to=written_to)


def stored_masker(layers: LayerArguments) -> Masker:
    """A masker of every masked or hidden value stored for a project (instance, groups, project):
    the secrets a run knows before its job's variables are resolved."""
    stored = (*layers["instance"], *(v for _, group in layers["groups"] for v in group), *layers["project"])
    return Masker(v.value for v in stored if v.is_secret)
