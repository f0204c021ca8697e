"""The settings-file variable store: the instance, group and project layers in one YAML file.

The layout is the one of ``airflow_ci_vars.settings`` (``project``, ``default_branch``,
``protected_refs``, ``instance``/``groups``/``projects`` with ``variables`` lists); reading is
``load_settings``, with its ``FILE:LINE`` errors. Writes check the variable with the save rules
(``variables.validation.check_save``: GitLab's rules on create and on update, the layer's
limit), then re-emit the *whole* file from the parsed settings and replace it atomically (a
``0600`` temporary file in the same directory, fsync, ``os.replace``).

Re-emitting loses what the parsed settings do not hold: **comments**, top-level ``.hidden``
keys, anchors and ``<<`` merges (written out expanded), quoting and field order. Only fields
that differ from their defaults are written. Writers are not locked against each other: two
concurrent writes may lose one update. A symlinked file is written through to its target.

Nothing here imports Airflow.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import yaml

from airflow_ci_vars.atomic_write import atomic_write as _atomic_write
from airflow_ci_vars.errors import SettingsError
from airflow_ci_vars.permissions.access import access_document
from airflow_ci_vars.settings import Settings, load_settings, parse_settings
from airflow_ci_vars.stores.base import LayerRef
from airflow_ci_vars.variables.keys import ruby_strip
from airflow_ci_vars.variables.model import ENV_VAR, Variable, VariableSource
from airflow_ci_vars.variables.validation import check_save

__all__ = ["FileStore", "dump_settings", "settings_to_dict", "variable_to_dict"]

HEADER = "# Written by airflow-ci-vars: comments in this file are not kept when it is rewritten.\n"
NO_FILE_MESSAGE = "no settings file is configured ([ci_vars] settings_file)"


class FileStore:
    """``VariableStore`` over a YAML settings file; ``path=None`` is an empty, read-only store."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path: str | None = None if path is None else os.fspath(path)

    def __repr__(self) -> str:
        return f"FileStore({self.path!r})"

    # -- reading --------------------------------------------------------------------------------

    def load(self, project: str | None = None) -> Settings:
        """The whole file (every layer; pick a project's with ``layers_for``).

        No path gives empty ``Settings()``; a configured file that does not exist or cannot be
        read raises ``SettingsError`` naming it, as does an invalid one (``FILE:LINE``).
        """
        if self.path is None:
            return Settings()
        settings = self._read(self.path)
        if settings is None:
            raise SettingsError("settings file not found", file=self.path)
        return settings

    def list_variables(self, ref: LayerRef) -> tuple[Variable, ...]:
        """The variables of one layer, in file order (``()`` when the layer is absent)."""
        return _layer_variables(self.load(), ref)

    # -- writing --------------------------------------------------------------------------------

    def set_variable(self, ref: LayerRef, variable: Variable) -> None:
        """Create or replace (same key and environment scope) a variable, then rewrite the file.

        Checked with the save rules (``variables.validation.check_save``): GitLab's rules on
        create and on update, and the layer's limit. Creates the file when it does not exist.
        Raises ``VariableValidationError`` (never with the value) or ``SettingsError`` (no file
        configured, unreadable or invalid file, failed write).
        """
        path = self._writable_path()
        settings = self._read(path) or Settings(file=path)
        current = list(_layer_variables(settings, ref))
        checked, index = check_save(
            dataclasses.replace(variable, source=VariableSource(ref.layer, ref.path)), layer=ref.layer, current=current
        )
        if index is None:
            current.append(checked)
        else:
            current[index] = checked
        self._write(path, _with_layer(settings, ref, tuple(current)))

    def unset_variable(self, ref: LayerRef, key: str, environment_scope: str = "*") -> bool:
        """Delete a variable and rewrite the file; False (nothing written) when there was none.

        A group or project left without variables is removed from the file.
        """
        if self.path is None:
            return False
        settings = self._read(self.path)
        if settings is None:
            return False
        ident = (ruby_strip(key), ruby_strip(environment_scope))
        current = _layer_variables(settings, ref)
        kept = tuple(v for v in current if (v.key, v.environment_scope) != ident)
        if len(kept) == len(current):
            return False
        self._write(self.path, _with_layer(settings, ref, kept))
        return True

    # -- helpers --------------------------------------------------------------------------------

    def _writable_path(self) -> str:
        if self.path is None:
            raise SettingsError(NO_FILE_MESSAGE)
        return self.path

    @staticmethod
    def _read(path: str) -> Settings | None:
        """The parsed file, or None when it does not exist."""
        try:
            return load_settings(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise SettingsError(f"cannot read the settings file: {reason}", file=path) from None

    @staticmethod
    def _write(path: str, settings: Settings) -> None:
        text = dump_settings(settings)
        # Never write a file that would not load back to these settings.
        if parse_settings(text, file=path) != dataclasses.replace(settings, file=path):  # pragma: no cover
            raise SettingsError("refusing to write: the settings would not read back unchanged", file=path)
        try:
            _atomic_write(os.path.realpath(path), text.encode("utf-8"))
        except OSError as exc:
            raise SettingsError(
                f"cannot write the settings file: {exc.strerror or type(exc).__name__}", file=path
            ) from None


# -- serialisation --------------------------------------------------------------------------------


def variable_to_dict(variable: Variable) -> dict[str, Any]:
    """One variable as the settings file writes it: ``key``, ``value`` and non-default fields."""
    out: dict[str, Any] = {"key": variable.key, "value": variable.value}
    if variable.variable_type != ENV_VAR:
        out["variable_type"] = variable.variable_type
    for flag in ("masked", "hidden", "protected", "raw"):
        if getattr(variable, flag):
            out[flag] = True
    if variable.environment_scope != "*":
        out["environment_scope"] = variable.environment_scope
    if variable.description is not None:
        out["description"] = variable.description
    return out


def settings_to_dict(settings: Settings) -> dict[str, Any]:
    """The settings-file document of ``settings`` (fields at their defaults are left out)."""
    out: dict[str, Any] = {}
    if settings.project is not None:
        out["project"] = settings.project
    out.update(access_document(settings.access_defaults))
    if settings.instance:
        out["instance"] = {"variables": [variable_to_dict(v) for v in settings.instance]}
    if settings.groups:
        out["groups"] = {path: {"variables": [variable_to_dict(v) for v in vs]} for path, vs in settings.groups.items()}
    projects: dict[str, dict[str, Any]] = {
        path: {"variables": [variable_to_dict(v) for v in vs]} for path, vs in settings.projects.items()
    }
    for path, access in settings.project_access.items():
        projects.setdefault(path, {"variables": []}).update(access_document(access, base=settings.access_defaults))
    for path, git in settings.git_projects.items():
        entry = projects.setdefault(path, {"variables": []})
        entry["git"] = git.url
        if git.conn_id is not None:
            entry["git_conn_id"] = git.conn_id
        if git.included_by != ("*",):
            entry["included_by"] = list(git.included_by)
    if projects:
        out["projects"] = projects
    return out


class _Dumper(yaml.SafeDumper):
    """Safe YAML: lists indented under their key, multi-line strings as literal blocks."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


# Line breaks PyYAML mishandles unless they are escaped in a double-quoted scalar.
_UNICODE_BREAKS = frozenset("\x85\u2028\u2029")


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = None
    if _UNICODE_BREAKS.intersection(data):
        style = '"'
    elif "\n" in data:
        style = "|"
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_settings(settings: Settings) -> str:
    """The YAML text of ``settings``; ``parse_settings`` reads it back to equal settings."""
    body = yaml.dump(
        settings_to_dict(settings),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=1 << 30,
    )
    return HEADER + ("" if body.strip() == "{}" else body)


# -- layers -----------------------------------------------------------------------------------


def _layer_variables(settings: Settings, ref: LayerRef) -> tuple[Variable, ...]:
    if ref.kind == "instance":
        return settings.instance
    layers = settings.groups if ref.kind == "group" else settings.projects
    return layers.get(ref.path or "", ())


def _with_layer(settings: Settings, ref: LayerRef, variables: tuple[Variable, ...]) -> Settings:
    """``settings`` with one layer's variables replaced; an emptied group or project is dropped."""
    if ref.kind == "instance":
        return dataclasses.replace(settings, instance=variables)
    layers = dict(settings.groups if ref.kind == "group" else settings.projects)
    path = ref.path or ""
    if variables:
        layers[path] = variables
    else:
        layers.pop(path, None)
    frozen: Mapping[str, tuple[Variable, ...]] = MappingProxyType(layers)
    if ref.kind == "group":
        return dataclasses.replace(settings, groups=frozen)
    return dataclasses.replace(settings, projects=frozen)
