"""The variable-store interface shared by the settings file and Vault.

A store holds GitLab's stored layers -- the instance, each group, each project -- with their
variables and metadata, plus the project settings a pipeline needs (default branch, protected
refs). Both stores have the same layout, so moving from the file to Vault is a copy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Protocol

from airflow_ci_vars.errors import VariableValidationError
from airflow_ci_vars.settings import Settings
from airflow_ci_vars.variables.model import Layer, Variable

__all__ = ["LayerRef", "VariableStore"]

LayerKind = Literal["instance", "group", "project"]
_PATH_RE = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")


@dataclass(frozen=True, slots=True)
class LayerRef:
    """One stored layer: ``instance``, ``group:<full/path>`` or ``project:<full/path>``."""

    kind: LayerKind
    path: str | None = None

    @classmethod
    def parse(cls, text: str) -> LayerRef:
        """Parse the CLI form (``instance``, ``group:acme/data``, ``project:acme/data/etl``)."""
        kind, _, path = text.strip().partition(":")
        if kind == "instance" and not path:
            return cls("instance")
        if kind in ("group", "project") and _PATH_RE.fullmatch(path):
            return cls(kind, path)  # type: ignore[arg-type]
        raise VariableValidationError(
            f"invalid layer {text!r}: use instance, group:PATH or project:PATH", field="layer"
        )

    @property
    def layer(self) -> Layer:
        """The precedence layer of the variables stored here."""
        return {"instance": Layer.INSTANCE, "group": Layer.GROUP, "project": Layer.PROJECT}[self.kind]

    def __str__(self) -> str:
        return self.kind if self.path is None else f"{self.kind}:{self.path}"


class VariableStore(Protocol):
    """What the operator and the CLI need from a store."""

    def load(self, project: str | None = None) -> Settings:
        """The settings and the layers that apply to ``project`` (instance, its groups, itself)."""
        ...

    def list_variables(self, ref: LayerRef) -> tuple[Variable, ...]:
        """The variables stored in one layer."""
        ...

    def set_variable(self, ref: LayerRef, variable: Variable) -> None:
        """Create or update a variable (same key and environment scope), validated like GitLab."""
        ...

    def unset_variable(self, ref: LayerRef, key: str, environment_scope: str = "*") -> bool:
        """Delete a variable; False when there was none."""
        ...
