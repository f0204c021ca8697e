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
        "operators": [{"integration-name": "CI Vars", "python-modules": ["airflow_ci_vars.operators.ci_job"]}],
        "extra-links": ["airflow_ci_vars.operators.ci_job.EnvironmentLink"],
        "secrets-backends": ["airflow_ci_vars.secrets.vault.CIVaultBackend"],
        "config": {
            "ci_vars": {
                "description": "Settings of the airflow-ci-vars provider.",
                "options": {
                    "settings_file": {
                        "description": "YAML variable store (instance, group and project variables) used by "
                        "CIJobOperator when the operator does not name one.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "/opt/airflow/ci/settings.yml",
                        "default": "",
                    }
                },
            }
        },
    }
