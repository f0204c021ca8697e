"""The variable record and where it came from."""

from __future__ import annotations

import enum
from dataclasses import KW_ONLY, dataclass, replace
from typing import Literal

__all__ = ["ENV_VAR", "FILE", "Layer", "Variable", "VariableSource", "VariableType"]

VariableType = Literal["env_var", "file"]
ENV_VAR: VariableType = "env_var"
FILE: VariableType = "file"


class Layer(enum.IntEnum):
    """Where a variable is defined, listed in GitLab's precedence order (lowest first).

    The precedence itself is ``variables.precedence.PRECEDENCE`` (a test keeps this order equal
    to the table's).
    ``PERSISTED_ENVIRONMENT`` (``CI_ENVIRONMENT_SLUG``/``URL`` of a deployment) and
    ``SECRETS`` (resolved ``secrets:``) follow GitLab's and gitlab-runner's code: nothing a
    user defines overrides them.
    """

    PREDEFINED = 0
    DEPLOYMENT = 1
    DEFAULT = 2  # top-level `variables:` of .gitlab-ci.yml
    JOB = 3  # job `variables:` (and the matching `rules:variables`)
    DOTENV = 4
    INSTANCE = 5
    GROUP = 6
    PROJECT = 7
    PIPELINE = 8  # trigger / API / REST conf / downstream-passed
    SCHEDULE = 9
    MANUAL = 10  # variables typed in when playing a manual job
    PERSISTED_ENVIRONMENT = 11
    SECRETS = 12

    @property
    def label(self) -> str:
        """Lower-case name used in provenance output (``project``, ``group``...)."""
        return self.name.lower().replace("_", " ")


@dataclass(frozen=True, slots=True)
class VariableSource:
    """Provenance of a variable: its layer and, where relevant, which group, project or job."""

    layer: Layer
    name: str | None = None

    def __str__(self) -> str:
        return f"{self.layer.label} {self.name}" if self.name else self.layer.label


@dataclass(frozen=True, slots=True)
class Variable:
    """One CI/CD variable, as GitLab stores it. Immutable.

    ``value`` of a file variable is the file's *content*; at run time the environment holds
    the path of a file with that content.
    """

    key: str
    value: str
    _: KW_ONLY
    variable_type: VariableType = ENV_VAR
    masked: bool = False
    hidden: bool = False
    protected: bool = False
    raw: bool = False
    environment_scope: str = "*"
    description: str | None = None
    source: VariableSource | None = None

    @property
    def is_file(self) -> bool:
        """True for a file-type variable."""
        return self.variable_type == FILE

    @property
    def is_secret(self) -> bool:
        """True when the value must never be shown (masked or hidden)."""
        return self.masked or self.hidden

    def with_value(self, value: str) -> Variable:
        """Return a copy with another value (``self`` when the value is unchanged)."""
        if value == self.value:
            return self
        # Direct construction: dataclasses.replace() is several times slower on the hot path.
        return Variable(
            self.key,
            value,
            variable_type=self.variable_type,
            masked=self.masked,
            hidden=self.hidden,
            protected=self.protected,
            raw=self.raw,
            environment_scope=self.environment_scope,
            description=self.description,
            source=self.source,
        )

    def with_source(self, source: VariableSource) -> Variable:
        """Return a copy with another source."""
        return replace(self, source=source)

    def __repr__(self) -> str:
        # Never let a secret reach a log line through repr().
        shown = "[MASKED]" if self.is_secret else repr(self.value)
        flags = [f for f in ("masked", "hidden", "protected", "raw") if getattr(self, f)]
        extra = f", flags={flags}" if flags else ""
        typ = "" if self.variable_type == ENV_VAR else ", variable_type='file'"
        scope = "" if self.environment_scope == "*" else f", environment_scope={self.environment_scope!r}"
        src = f", source='{self.source}'" if self.source else ""
        return f"Variable({self.key!r}, {shown}{typ}{extra}{scope}{src})"
