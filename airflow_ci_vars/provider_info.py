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
                    },
                    "parse_cache_dir": {
                        "description": "Directory of the DAG factory's parse cache: validated pipelines keyed by "
                        "the content of the .gitlab-ci.yml and every file it includes, so that re-parsing an "
                        "unchanged pipeline skips YAML loading and validation. Entries are pickles: the directory "
                        "must only be writable by the Airflow deployment. Empty or 'false' disables the cache.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "/var/cache/airflow-ci-vars",
                        "default": "{AIRFLOW_HOME}/cache/airflow-ci-vars",
                    },
                    "artifacts_root": {
                        "description": "Where CIJobOperator keeps artifacts:paths files between jobs: any "
                        "ObjectStoragePath URL (s3://conn_id@bucket/prefix, gs://...). Empty: a local folder, "
                        "$AIRFLOW_HOME/ci-artifacts, which only suits a single machine.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "s3://aws_default@ci-artifacts/airflow",
                        "default": "",
                    },
                    "role_mapping": {
                        "description": "Airflow auth-manager roles -> GitLab roles (guest, reporter, developer, "
                        "maintainer, owner), a JSON object added to the defaults Admin: owner, Op: maintainer, "
                        "User: developer, Viewer: reporter. A project's members win over it (docs/security.md).",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": '{"DataEngineer": "maintainer"}',
                        "default": "",
                    },
                    "manual_approval_timeout": {
                        "description": "How long a when: manual job waits for its Human-in-the-loop answer "
                        "(a GitLab duration: 12h, 2 days); then it counts as not played. 0 waits forever.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "12h",
                        "default": "7d",
                    },
                },
            }
        },
    }
