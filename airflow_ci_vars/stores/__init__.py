"""Where instance, group and project variables live: a YAML settings file, or Vault KV v2."""

from airflow_ci_vars.stores.base import LayerRef, VariableStore

__all__ = ["LayerRef", "VariableStore"]
