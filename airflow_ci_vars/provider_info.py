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
                    "include_projects": {
                        "description": "JSON object mapping GitLab project paths to git repositories, for "
                        'include:project and include:component: {"acme/ci-templates": {"git": URL or absolute '
                        'path, "git_conn_id": an Airflow connection whose login/password authenticate, '
                        '"default_branch": ..., "included_by": [project path globs]}}. Added to the settings '
                        "file's projects with git:. Only these projects can be included.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": '{"acme/ci-templates": {"git": "https://git.example.com/acme/ci-templates.git"}}',
                        "default": "",
                    },
                    "include_templates_dir": {
                        "description": "Folder of include:template files (the layout of GitLab's "
                        "lib/gitlab/ci/templates: Jobs/Build.gitlab-ci.yml...). Unset: include:template fails "
                        "naming this option.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "/opt/gitlab/lib/gitlab/ci/templates",
                        "default": "",
                    },
                    "include_remote_allowed": {
                        "description": "Hosts (example.com, *.example.com, with an optional :port) or URL prefixes "
                        "(https://example.com/ci/) include:remote may fetch from, comma- or space-separated. "
                        "Empty: no remote include is fetched.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "https://gitlab.example.com/, raw.githubusercontent.com",
                        "default": "",
                    },
                    "include_remote_auth": {
                        "description": "JSON object of URL prefixes to Airflow connection ids: remote includes "
                        "under a prefix are fetched with that connection's credentials (login and password: HTTP "
                        "Basic; a password alone: a Bearer token).",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": '{"https://gitlab.example.com/": "gitlab_raw"}',
                        "default": "",
                    },
                    "include_cache_dir": {
                        "description": "Folder of the include caches: bare git mirrors (keyed by commit) and remote "
                        "files. Private to the deployment.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "/var/cache/airflow-ci-vars-includes",
                        "default": "{AIRFLOW_HOME}/cache/airflow-ci-vars-includes",
                    },
                    "include_git_refresh": {
                        "description": "Seconds a git repository's branches and tags are used before they are "
                        "fetched again (a new tag of a component is seen after at most this long).",
                        "version_added": "0.1.0",
                        "type": "float",
                        "example": "60",
                        "default": "300",
                    },
                    "include_remote_ttl": {
                        "description": "Seconds a remote include is used from the cache before it is fetched again.",
                        "version_added": "0.1.0",
                        "type": "float",
                        "example": "600",
                        "default": "3600",
                    },
                    "include_timeout": {
                        "description": "Seconds any one git or HTTP call for an include may take.",
                        "version_added": "0.1.0",
                        "type": "float",
                        "example": "10",
                        "default": "30",
                    },
                    "include_total_timeout": {
                        "description": "Seconds one load of a pipeline may spend reading includes from git and "
                        "HTTP (GitLab's 30 s): past it, the next such include fails with 'Request timed out when "
                        "fetching configuration files.'",
                        "version_added": "0.1.0",
                        "type": "float",
                        "example": "60",
                        "default": "30",
                    },
                    "include_server_fqdn": {
                        "description": "The GitLab host name components are addressed with ($CI_SERVER_FQDN in "
                        "include:component).",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "gitlab.example.com",
                        "default": "gitlab.com",
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
                    "isolation": {
                        "description": "Where each job's script runs (docs/security.md): 'sandbox' (bubblewrap "
                        "namespaces, an unprivileged user, read-only system folders, the job's own workspace and "
                        "nothing of the worker), 'none' (gitlab-runner's shell executor: the job sees what the "
                        "worker sees; for a single trusted team, warned in every task log), or 'auto' (sandbox "
                        "where bubblewrap works on the worker, else none), or 'docker' (each job in a container of its "
                        "image with its services, as gitlab-runner's Docker executor; docs/containers.md).",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "sandbox",
                        "default": "auto",
                    },
                    "docker_host": {
                        "description": "The Docker daemon container jobs run on (isolation = docker), e.g. "
                        "unix:///var/run/docker.sock or tcp://host:2376; empty: DOCKER_HOST, else the default "
                        "socket. A worker that cannot reach it fails container jobs, never runs them on the "
                        "worker.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "unix:///var/run/docker.sock",
                        "default": None,
                    },
                    "docker_default_image": {
                        "description": "The image of a job that names none (gitlab-runner's [runners.docker] "
                        "image); empty: such "
                        "a job fails, naming this option.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "python:3.12-slim",
                        "default": None,
                    },
                    "docker_allowed_images": {
                        "description": "Comma-separated globs of the images jobs may use (gitlab-runner's "
                        "allowed_images: * "
                        "within a path segment, ** across); empty allows any. A job naming another image fails, "
                        "naming the image and this option.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "python:*, registry.acme.example/**",
                        "default": None,
                    },
                    "docker_allowed_services": {
                        "description": "Comma-separated globs of the service images jobs may start (gitlab-runner's "
                        "allowed_services); empty allows any.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "postgres:*, redis:*",
                        "default": None,
                    },
                    "docker_pull_policy": {
                        "description": "When to pull an image: always, if-not-present or never (air-gapped "
                        "sites with local "
                        "images, and the tests). A job's pull_policy overrides it when "
                        "docker_allowed_pull_policies allows.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "never",
                        "default": "if-not-present",
                    },
                    "docker_allowed_pull_policies": {
                        "description": "Comma-separated pull policies a job's image:pull_policy may ask for "
                        "(gitlab-runner's "
                        "allowed_pull_policies); empty allows any.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "if-not-present, never",
                        "default": None,
                    },
                    "docker_privileged": {
                        "description": "Run job and service containers privileged (gitlab-runner's "
                        "privileged). Off by default: "
                        "a privileged container is root on the worker.",
                        "version_added": "0.1.0",
                        "type": "boolean",
                        "example": "false",
                        "default": "false",
                    },
                    "docker_memory": {
                        "description": "Memory limit of each job and service container, in Docker's syntax "
                        "(512m, 2g); empty: no "
                        "limit.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "2g",
                        "default": None,
                    },
                    "docker_cpus": {
                        "description": "CPU limit of each job and service container, in cores (1.5); empty: no limit.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "2",
                        "default": None,
                    },
                    "docker_pids_limit": {
                        "description": "Most processes in each job and service container (a fork bomb stops "
                        "there); 0: no limit.",
                        "version_added": "0.1.0",
                        "type": "integer",
                        "example": "4096",
                        "default": "4096",
                    },
                    "docker_services_timeout": {
                        "description": "Seconds to wait for each service's exposed TCP ports before the job "
                        "starts anyway with a "
                        "warning (gitlab-runner's wait_for_services_timeout).",
                        "version_added": "0.1.0",
                        "type": "float",
                        "example": "30",
                        "default": "30",
                    },
                    "sandbox_user": {
                        "description": "The OS user a worker running as root runs sandboxed jobs as (never "
                        "root). A worker that is not root keeps its own uid inside a user namespace.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "ci-job",
                        "default": "nobody",
                    },
                    "sandbox_read_only_paths": {
                        "description": "More folders a sandboxed job sees read-only, comma-separated, besides "
                        "/usr, /bin, /sbin, /lib*, /etc (for example a toolchain under /opt).",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "/opt/toolchains",
                        "default": "",
                    },
                    "sandbox_hidden_paths": {
                        "description": "More worker files or folders to hide from jobs, comma-separated, when "
                        "they lie inside a folder the sandbox shows (AIRFLOW_HOME, the Airflow config, the DAGs, "
                        "plugins and log folders, the settings file and the artifact store are always hidden).",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "/etc/vault-agent",
                        "default": "",
                    },
                    "workspace_root": {
                        "description": "Folder of the per-attempt job workspaces (made 0700; it must be owned by "
                        "the worker's user and writable by it only). Empty: <temp dir>/airflow-ci-vars-jobs-<uid>.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "/var/lib/airflow/ci-jobs",
                        "default": "",
                    },
                    "job_log_limit": {
                        "description": "Job log size in KiB past which output is dropped with gitlab-runner's "
                        "notice while the job keeps running (gitlab-runner's output_limit). 0: no limit.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "16384",
                        "default": "4096",
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
