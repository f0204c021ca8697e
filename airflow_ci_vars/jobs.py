"""The pure job model: one GitLab CI job as the operator runs it.

The DAG factory fills these records in from a ``.gitlab-ci.yml``; a hand-written DAG builds them
directly (``JobSpec.from_yaml`` takes the job's YAML mapping). Nothing here imports Airflow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Union

from airflow_ci_vars.errors import VariableValidationError
from airflow_ci_vars.pipeline.durations import parse_duration
from airflow_ci_vars.variables.model import Layer, Variable
from airflow_ci_vars.variables.yaml_values import Inherit, yaml_variables
from airflow_ci_vars.vault_secrets import SecretSpec, parse_secrets

__all__ = [
    "DEFAULT_STAGES",
    "Artifacts",
    "CrossNeed",
    "Environment",
    "JobSpec",
    "Need",
    "dotenv_sources",
    "job_stage",
]

DEFAULT_STAGES: tuple[str, ...] = (".pre", "build", "test", "deploy", ".post")
ArtifactsWhen = Literal["on_success", "on_failure", "always"]
AllowFailure = Union[bool, tuple[int, ...]]


@dataclass(frozen=True, slots=True)
class Need:
    """One entry of ``needs:``. ``artifacts=False`` receives neither dotenv nor files."""

    job: str
    artifacts: bool = True
    optional: bool = False


@dataclass(frozen=True, slots=True)
class CrossNeed:
    """``needs:`` on a job of another pipeline: its dotenv report only (spec §6.2-§6.3).

    ``{project: P, job: J, ref: R, artifacts: true}``: J of the latest successful pipeline of
    project P on ref R; ``{pipeline: $PARENT_PIPELINE_ID, job: J}``: J of the parent pipeline (a
    child pipeline's job). ``project``, ``ref`` and ``pipeline`` are kept unexpanded.
    """

    job: str
    project: str | None = None
    ref: str | None = None
    pipeline: str | None = None
    artifacts: bool = True


@dataclass(frozen=True, slots=True)
class Environment:
    """``environment:`` of a job; ``name`` and ``url`` are kept unexpanded."""

    name: str
    url: str | None = None
    action: str = "start"
    deployment_tier: str | None = None


@dataclass(frozen=True, slots=True)
class Artifacts:
    """``artifacts:``: file ``paths`` (with ``exclude``, ``untracked``, ``when``) and dotenv reports."""

    paths: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    untracked: bool = False
    when: ArtifactsWhen = "on_success"
    dotenv: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class JobSpec:
    """Everything the operator needs to run one job the way a GitLab runner would.

    ``variables=None`` means the job has no ``variables:`` keyword (defaults are inherited);
    an empty tuple means ``variables: {}`` (defaults dropped, as seed 001 says).
    ``needs=None`` means no ``needs:`` keyword (stage ordering); ``()`` means ``needs: []``.
    ``dependencies=None`` means no ``dependencies:`` keyword.
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
    artifacts: Artifacts = field(default_factory=Artifacts)
    allow_failure: AllowFailure = False
    after_script_timeout: float = 300.0
    node_index: int | None = None
    node_total: int = 1
    secrets: tuple[SecretSpec, ...] = ()
    when: str = "on_success"
    rules: tuple[Mapping[str, object], ...] | None = None
    start_in: int | None = None

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
        """Build a job from its ``.gitlab-ci.yml`` mapping (the keywords the operator runs)."""
        env = job.get("environment")
        environment: Environment | None = None
        if isinstance(env, str):
            environment = Environment(env)
        elif isinstance(env, Mapping):
            environment = Environment(
                str(env["name"]),
                url=None if env.get("url") is None else str(env["url"]),
                action=str(env.get("action", "start")),
                deployment_tier=None if env.get("deployment_tier") is None else str(env["deployment_tier"]),
            )
        artifacts = job.get("artifacts") or {}
        if not isinstance(artifacts, Mapping):
            raise VariableValidationError(f"{name}: artifacts config should be a hash", field="artifacts")
        reports = artifacts.get("reports") or {}
        dotenv = reports.get("dotenv") if isinstance(reports, Mapping) else None
        when = str(artifacts.get("when", "on_success"))
        if when not in ("on_success", "on_failure", "always"):
            raise VariableValidationError(
                f"{name}: artifacts:when config should be on_success, on_failure or always", field="artifacts"
            )
        inherit = job.get("inherit") or {}
        inherit_variables = inherit.get("variables", True) if isinstance(inherit, Mapping) else True
        when_value = str(job.get("when", "on_success"))
        # GitLab: a job-level `when: manual` defaults to allow_failure: true (rules-level does not).
        allow = job.get("allow_failure", when_value == "manual")
        allow_failure: AllowFailure
        if isinstance(allow, Mapping):
            codes = allow.get("exit_codes", [])
            allow_failure = tuple(int(str(c)) for c in ([codes] if isinstance(codes, int) else _list(codes)))
        else:
            allow_failure = bool(allow)
        variables = job.get("variables")
        raw_rules = job.get("rules")
        raw_secrets = job.get("secrets")
        if raw_secrets is not None and not isinstance(raw_secrets, Mapping):
            raise VariableValidationError(f"jobs:{name}:secrets config should be a hash", field="secrets")
        return cls(
            name=name,
            script=_script(job.get("script"), f"jobs:{name}:script"),
            stage=job_stage(job)[1],
            before_script=_script(job.get("before_script"), f"jobs:{name}:before_script"),
            after_script=_script(job.get("after_script"), f"jobs:{name}:after_script"),
            variables=None if variables is None else tuple(yaml_variables(_mapping(variables), layer=Layer.JOB)),
            default_variables=tuple(yaml_variables(_mapping(default_variables), layer=Layer.DEFAULT)),
            inherit_variables=inherit_variables if isinstance(inherit_variables, bool) else tuple(inherit_variables),
            needs=None if "needs" not in job else tuple(_need(n) for n in _list(job["needs"]) if not _cross(n)),
            cross_needs=tuple(_cross_need(n) for n in _list(job.get("needs")) if _cross(n)),
            dependencies=None if "dependencies" not in job else tuple(str(d) for d in _list(job["dependencies"])),
            environment=environment,
            artifacts=Artifacts(
                paths=tuple(str(p) for p in _list(artifacts.get("paths"))),
                exclude=tuple(str(p) for p in _list(artifacts.get("exclude"))),
                untracked=bool(artifacts.get("untracked", False)),
                when=when,  # type: ignore[arg-type]
                dotenv=tuple(str(p) for p in _list(dotenv)),
            ),
            allow_failure=allow_failure,
            secrets=parse_secrets(raw_secrets, job=name) if raw_secrets else (),
            when=when_value,
            start_in=parse_duration(job.get("start_in")) if when_value == "delayed" else None,
            rules=tuple(r for r in raw_rules if isinstance(r, Mapping)) if isinstance(raw_rules, list) else None,
        )


def job_stage(job: Mapping[str, object]) -> tuple[str, str]:
    """The keyword that gives a job's stage and the stage: ``stage``, else the deprecated ``type``.

    R: ``lib/gitlab/ci/config/entry/job.rb`` ``compose!`` (``type`` only when ``stage`` is not
    specified; no warning), ``entry/stage.rb`` (default ``test``). A ``null`` is not specified.
    """
    keyword = "type" if job.get("stage") is None and job.get("type") is not None else "stage"
    value = job.get(keyword)
    return keyword, "test" if value is None else str(value)


def _mapping(value: object) -> Mapping[str, object]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise VariableValidationError("variables config should be a hash", field="variables")
    return value


def _list(value: object) -> list[object]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _script(value: object, where: str = "script") -> tuple[str, ...]:
    """``script`` as a string or (nested) list of strings, flattened like GitLab.

    A mapping (typically an unquoted ``echo "a: b"`` line that YAML read as a hash) is refused
    with GitLab's message.
    """
    out: list[str] = []

    def walk(v: object) -> None:
        if isinstance(v, (list, tuple)):
            for item in v:
                walk(item)
        elif isinstance(v, Mapping):
            raise VariableValidationError(
                f"{where} config should be a string or a nested array of strings up to 10 levels deep", field="script"
            )
        elif v is not None:
            out.append(str(v))

    walk(value)
    return tuple(out)


def _cross(value: object) -> bool:
    return isinstance(value, Mapping) and ("project" in value or "pipeline" in value)


def _cross_need(value: object) -> CrossNeed:
    assert isinstance(value, Mapping)

    def text(key: str) -> str | None:
        found = value.get(key)
        return None if found is None else str(found)

    return CrossNeed(
        str(value.get("job", "")),
        project=text("project"),
        ref=text("ref"),
        pipeline=text("pipeline"),
        artifacts=bool(value.get("artifacts", True)),
    )


def _need(value: object) -> Need:
    if isinstance(value, str):
        return Need(value)
    if isinstance(value, Mapping) and "job" in value:
        return Need(
            str(value["job"]),
            artifacts=bool(value.get("artifacts", True)),
            optional=bool(value.get("optional", False)),
        )
    raise VariableValidationError("needs config should be a job name or a hash with 'job'", field="needs")


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
