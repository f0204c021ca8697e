"""Airflow's configuration read without importing Airflow: for the commands that must start fast.

``lint``, ``graph`` and ``run``'s direct engine need a few ``[ci_vars]`` options but not Airflow
itself (whose import costs seconds). :class:`AirflowOptions` answers ``get(section, key)`` in
Airflow's order for the two sources a local user sets: the ``AIRFLOW__SECTION__KEY`` environment
variable, else the key in the Airflow config file (``$AIRFLOW_CONFIG``, else
``$AIRFLOW_HOME/airflow.cfg``, else ``~/airflow/airflow.cfg``). Not read: ``_cmd``/``_secret``
variants and Airflow's own defaults (``fallback`` stands for them), which a deployed Airflow reads
through ``airflow.sdk.conf`` instead.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping

from airflow_ci_vars.errors import SettingsError

__all__ = ["AirflowOptions"]


class AirflowOptions:
    """Options of Airflow's configuration, as ``airflow.sdk.conf.get`` reads the environment and the
    config file (``environ`` defaults to ``os.environ``). The file is read once, when first needed."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._env = os.environ if environ is None else environ
        self._parser: configparser.ConfigParser | None = None

    @property
    def path(self) -> str:
        """The Airflow config file these options come from."""
        home = self._env.get("AIRFLOW_HOME") or os.path.join(os.path.expanduser("~"), "airflow")
        default = os.path.join(os.path.expanduser(home), "airflow.cfg")
        return os.path.expanduser(self._env.get("AIRFLOW_CONFIG") or default)

    def _file(self) -> configparser.ConfigParser:
        if self._parser is None:
            parser = configparser.ConfigParser(interpolation=None, strict=False)
            path = self.path
            try:
                with open(path, encoding="utf-8") as stream:
                    parser.read_file(stream, source=path)
            except FileNotFoundError:
                pass
            except (OSError, UnicodeDecodeError, configparser.Error) as err:
                line = getattr(err, "lineno", None)
                detail = err.strerror if isinstance(err, OSError) else type(err).__name__
                raise SettingsError(f"cannot read Airflow's configuration: {detail}", file=path, line=line) from None
            self._parser = parser
        return self._parser

    def get(self, section: str, key: str, fallback: str | None = None) -> str | None:
        """The option's value: its environment variable, else the config file, else ``fallback``.
        Raises ``SettingsError`` naming the config file when it cannot be parsed."""
        name = f"AIRFLOW__{section.upper()}__{key.upper()}"
        if name in self._env:
            return self._env[name]
        return self._file().get(section, key, fallback=fallback)
