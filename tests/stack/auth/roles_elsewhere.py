"""An auth manager whose users' roles Airflow's workers cannot read, as with FAB or Keycloak.

It is the Simple auth manager under another name: ``airflow_ci_vars.auth.simple_auth_roles``
reads roles from the configuration only for the Simple auth manager itself, so with this one a
job knows a user's roles only from the stamp the api-server plugin writes (docs/security.md).
"""

from __future__ import annotations

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager


class RolesElsewhereAuthManager(SimpleAuthManager):
    """Airflow's Simple auth manager, which workers do not recognise as such."""
