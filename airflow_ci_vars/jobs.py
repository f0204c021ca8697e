"""The pure job model: one GitLab CI job as the operator runs it.

The DAG factory fills these records in from a ``.gitlab-ci.yml``; a hand-written DAG builds them
directly (``JobSpec.from_yaml`` takes the job's YAML mapping). Nothing here imports Airflow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from airflow_ci_vars.pipeline.entries.allow_failure import AllowFailure
from airflow_ci_vars.pipeline.entries.artifacts import NO_ARTIFACTS, Artifacts
from airflow_ci_vars.pipeline.entries.environment import Environment
from airflow_ci_vars.pipeline.entries.image import ImageSpec, ServiceSpec
from airflow_ci_vars.pipeline.entries.needs import CrossNeed, Need
from airflow_ci_vars.pipeline.entries.stage import DEFAULT_STAGES, job_stage
from airflow_ci_vars.variables.model import Variable
from airflow_ci_vars.variables.yaml_values import Inherit
from airflow_ci_vars.vault_secrets import SecretSpec

__all__ = [
    "DEFAULT_STAGES",
    "AllowFailure",
    "Artifacts",
    "CrossNeed",
    "Environment",
    "JobSpec",
    "Need",
    "dotenv_sources",
    "job_stage",
]


@dataclass(frozen=True, slots=True)
class JobSpec:
    """The one record of a job's keywords: everything the operator (and the factory) needs to run it.

    Each keyword is parsed once, by its entry in ``airflow_ci_vars/pipeline/entries/``.
    ``variables=None`` means the job has no ``variables:`` keyword (defaults are inherited);
    an empty tuple means ``variables: {}`` (defaults dropped, as seed 001 says).
    ``needs=None`` means no ``needs:`` keyword (stage ordering); ``()`` means ``needs: []``.
    ``dependencies=None`` means no ``dependencies:`` keyword. ``trigger`` is set for a bridge job
    (``trigger: PROJECT`` reads as ``{project: PROJECT}``); ``tags`` are the runner tags (the first
    one becomes the task's queue); ``image`` and ``services`` are used by container jobs
    (``[ci_vars] isolation = docker``).
    """

    name: str
    script: tuple[str, ...]
    stage: str = "test"
    before_script: tuple[str, ...] = ()
    after_script: tuple[str, ...] = ()
    variables: tuple[Variable, ...] | None = None
    default_variables: tuple[Variable, ...] = ()
    inherit_variables: Inherit = True
    rules_variables: tuple[Variable, ...] = ()
    needs: tuple[Need, ...] | None = None
    cross_needs: tuple[CrossNeed, ...] = ()
    dependencies: tuple[str, ...] | None = None
    environment: Environment | None = None
    artifacts: Artifacts = NO_ARTIFACTS
    allow_failure: AllowFailure = False
    after_script_timeout: float = 300.0
    node_index: int | None = None
    node_total: int = 1
    secrets: tuple[SecretSpec, ...] = ()
    when: str = "on_success"
    rules: tuple[Mapping[str, object], ...] | None = None
    start_in: int | None = None
    retry: int = 0
    retry_when: tuple[str, ...] = ()
    timeout: int | None = None
    trigger: Mapping[str, object] | None = None
    interruptible: bool | None = None
    tags: tuple[str, ...] = ()
    image: ImageSpec | None = None
    services: tuple[ServiceSpec, ...] = ()

    def allows_failure(self, exit_code: int) -> bool:
        """True when a failure with ``exit_code`` lets the pipeline go on (``allow_failure``)."""
        if exit_code == 0:
            return False
        if isinstance(self.allow_failure, bool):
            return self.allow_failure
        return exit_code in self.allow_failure

    @classmethod
    def from_yaml(
        cls,
        name: str,
        job: Mapping[str, object],
        *,
        default_variables: Mapping[str, object] | None = None,
    ) -> JobSpec:
        """Build a job from its ``.gitlab-ci.yml`` mapping; raise the first keyword the record cannot do without.

        ``JobConfigError`` names the job and the keyword; ``VariableValidationError`` a variable.
        """
        from airflow_ci_vars.pipeline.entries.job import parse_job

        found = parse_job(name, job, default_variables=default_variables)
        if found.spec is None:
            raise found.fatal[0]
        return found.spec


def dotenv_sources(
    job: JobSpec,
    pipeline: Iterable[JobSpec],
    *,
    stages: Sequence[str] = DEFAULT_STAGES,
) -> tuple[str, ...]:
    """Names of the jobs whose dotenv (and artifacts) ``job`` receives, as GitLab decides (spec §6.2).

    - ``dependencies: []`` or ``needs: []`` -> none;
    - ``needs`` -> only the needed jobs with ``artifacts: true`` (then narrowed by ``dependencies``);
    - otherwise every job of an earlier stage (narrowed by ``dependencies``).

    Order, which decides when two sources export the same key (GitLab leaves it unspecified; the
    later source wins here): for ``needs`` and ``dependencies`` the order they are written in,
    otherwise stage order, then the order of the jobs in the pipeline.
    """
    jobs = list(pipeline)
    known = {j.name for j in jobs}
    if job.dependencies == () or job.needs == ():
        return ()
    if job.needs is not None:
        chosen = [n.job for n in job.needs if n.artifacts and n.job in known]
        if job.dependencies is not None:
            allowed = set(job.dependencies)
            chosen = [n for n in chosen if n in allowed]
        return tuple(dict.fromkeys(chosen))
    stage_index = {s: i for i, s in enumerate(stages)}
    mine = stage_index.get(job.stage, len(stages))
    earlier = [j for j in jobs if stage_index.get(j.stage, len(stages)) < mine and j.name != job.name]
    earlier.sort(key=lambda j: stage_index.get(j.stage, len(stages)))  # stable: pipeline order within a stage
    if job.dependencies is not None:
        by_name = {j.name for j in earlier}
        return tuple(dict.fromkeys(d for d in job.dependencies if d in by_name))
    return tuple(j.name for j in earlier)
