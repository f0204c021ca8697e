"""Provider metadata for Airflow's provider discovery (entry point ``apache_airflow_provider``).

``package-name`` must equal the canonical distribution name, or Airflow's provider discovery
raises (see docs/architecture.md).
"""

from __future__ import annotations

from typing import Any

__all__ = ["get_provider_info"]


def get_provider_info() -> dict[str, Any]:
    """Return the provider description Airflow's ``ProvidersManager`` reads."""
    return {
        "package-name": "airflow-ci-vars",
        "name": "CI Vars",
        "description": "GitLab CI / CircleCI variable semantics for Airflow: precedence, environment "
        "scopes, protected and masked variables, dotenv handoff and REST pipeline parameters.",
        "integrations": [
            {
                "integration-name": "CI Vars",
                "external-doc-url": "https://docs.gitlab.com/ci/variables/",
                "tags": ["software"],
            }
        ],
    }
