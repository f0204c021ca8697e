"""Predefined ``CI_*`` variables from a plain run-context record, and GitLab's slug algorithms.

R: ``lib/gitlab/ci/variables/builder.rb`` (job block), ``app/models/project.rb`` (project block),
``lib/gitlab/ci/variables/builder/pipeline.rb`` (pipeline block), ``lib/gitlab/utils.rb``
(``slugify``), ``lib/gitlab/slug/environment.rb``, ``lib/gitlab/utils/job.rb``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

from airflow_ci_vars.variables.model import Layer, Variable, VariableSource

__all__ = [
    "RunContext",
    "environment_slug",
    "job_group_name",
    "persisted_environment_variables",
    "predefined_variables",
    "ref_slug",
    "slugify",
]

_NON_SLUG = re.compile(r"[^a-z0-9]")
_NON_SLUG_DOTS = re.compile(r"[^a-z0-9.]")
_SLUG_EDGES = re.compile(r"(\A[-.]+|[-.]+\Z)")


def slugify(text: str, *, allow_dots: bool = False) -> str:
    """``Gitlab::Utils.slugify``: lower-case, non ``[a-z0-9]`` to ``-``, 63 characters, no edge dashes."""
    pattern = _NON_SLUG_DOTS if allow_dots else _NON_SLUG
    return _SLUG_EDGES.sub("", pattern.sub("-", text.lower())[:63])


def ref_slug(ref: str) -> str:
    """``CI_COMMIT_REF_SLUG`` of a branch or tag name (``feature/ABC_123`` -> ``feature-abc-123``)."""
    return slugify(ref)


_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(number: int) -> str:
    if number == 0:
        return "0"
    digits = []
    while number:
        number, rem = divmod(number, 36)
        digits.append(_BASE36[rem])
    return "".join(reversed(digits))


def environment_slug(name: str) -> str:
    """``CI_ENVIRONMENT_SLUG`` (``Gitlab::Slug::Environment``): at most 24 characters, DNS-safe.

    Any change from the original name (a ``/``, an upper-case letter...) adds a 6-character
    suffix derived from the SHA-256 of the name: ``review/feature-1`` -> ``review-feature-1-1q251u``.
    """
    slug = _NON_SLUG.sub("-", name.lower())
    if not re.match(r"[a-z]", slug):
        slug = "env-" + slug
    slug = re.sub(r"-+", "-", slug)
    if len(slug) > 24 or slug != name:
        slug = slug[:17]
        if not slug.endswith("-"):
            slug += "-"
        slug += _base36(int(hashlib.sha256(name.encode("utf-8")).hexdigest(), 16))[-6:]
    elif slug.endswith("-"):
        slug = slug[:-1]
    return slug


_GROUP_SUFFIX = re.compile(r"([\b\s:]+((\[.*\])|(\d+[\s:/\\]+\d+))){1,3}\s*\Z")


def job_group_name(job_name: str) -> str:
    """``CI_JOB_GROUP_NAME``: the job name without its parallel or matrix suffix."""
    return _GROUP_SUFFIX.sub("", job_name, count=1).strip()


@dataclass(frozen=True, slots=True)
class RunContext:
    """What a pipeline run knows about itself; the source of the predefined variables.

    ``ref`` is a branch unless ``ref_type='tag'``. ``node_index`` is set only for ``parallel``
    jobs (1-based). ``environment_name`` must already be expanded.
    """

    job_name: str
    stage: str = "test"
    project_path: str = "group/project"
    ref: str = "main"
    ref_type: Literal["branch", "tag"] = "branch"
    sha: str = "0" * 40
    default_branch: str = "main"
    ref_protected: bool = False
    pipeline_id: str = "1"
    pipeline_iid: str | None = None
    pipeline_source: str = "api"
    pipeline_created_at: str | None = None
    job_id: str | None = None
    job_manual: bool = False
    project_dir: str | None = None
    builds_dir: str | None = None
    config_path: str = ".gitlab-ci.yml"
    environment_name: str | None = None
    environment_action: str | None = None
    environment_tier: str | None = None
    environment_url: str | None = None
    node_index: int | None = None
    node_total: int = 1
    job_timeout: int | None = None


def predefined_variables(ctx: RunContext) -> list[Variable]:
    """The predefined variables of one job, lowest precedence, in GitLab's order."""
    src = VariableSource(Layer.PREDEFINED)
    out: list[tuple[str, str]] = []
    add = out.append
    # Runner block (GR common/build.go): defined before everything else.
    if ctx.builds_dir is not None:
        add(("CI_BUILDS_DIR", ctx.builds_dir))
    if ctx.project_dir is not None:
        add(("CI_PROJECT_DIR", ctx.project_dir))
    add(("CI_SERVER", "yes"))
    if ctx.job_timeout is not None:
        add(("CI_JOB_TIMEOUT", str(ctx.job_timeout)))
    # Persisted block.
    add(("CI_PIPELINE_ID", ctx.pipeline_id))
    if ctx.job_id is not None:
        add(("CI_JOB_ID", ctx.job_id))
    if ctx.pipeline_created_at is not None:
        add(("CI_PIPELINE_CREATED_AT", ctx.pipeline_created_at))
    # Job block.
    add(("CI_JOB_NAME", ctx.job_name))
    add(("CI_JOB_NAME_SLUG", slugify(ctx.job_name)))
    add(("CI_JOB_GROUP_NAME", job_group_name(ctx.job_name)))
    add(("CI_JOB_STAGE", ctx.stage))
    if ctx.job_manual:
        add(("CI_JOB_MANUAL", "true"))
    if ctx.pipeline_source == "trigger":
        add(("CI_PIPELINE_TRIGGERED", "true"))
    if ctx.node_index is not None:
        add(("CI_NODE_INDEX", str(ctx.node_index)))
    add(("CI_NODE_TOTAL", str(ctx.node_total)))
    if ctx.environment_name:
        add(("CI_ENVIRONMENT_NAME", ctx.environment_name))
        add(("CI_ENVIRONMENT_ACTION", ctx.environment_action or "start"))
        if ctx.environment_tier:
            add(("CI_ENVIRONMENT_TIER", ctx.environment_tier))
        if ctx.environment_url:
            add(("CI_ENVIRONMENT_URL", ctx.environment_url))
    # Project block.
    path = ctx.project_path
    namespace, _, name = path.rpartition("/")
    add(("CI", "true"))
    add(("GITLAB_CI", "true"))
    add(("CI_PROJECT_NAME", name))
    add(("CI_PROJECT_PATH", path))
    add(("CI_PROJECT_PATH_SLUG", slugify(path)))
    add(("CI_PROJECT_NAMESPACE", namespace))
    add(("CI_PROJECT_ROOT_NAMESPACE", path.split("/", 1)[0]))
    add(("CI_DEFAULT_BRANCH", ctx.default_branch))
    add(("CI_CONFIG_PATH", ctx.config_path))
    # Pipeline block.
    if ctx.pipeline_iid is not None:
        add(("CI_PIPELINE_IID", ctx.pipeline_iid))
    add(("CI_PIPELINE_SOURCE", ctx.pipeline_source))
    add(("CI_COMMIT_SHA", ctx.sha))
    add(("CI_COMMIT_SHORT_SHA", ctx.sha[:8]))
    add(("CI_COMMIT_REF_NAME", ctx.ref))
    add(("CI_COMMIT_REF_SLUG", ref_slug(ctx.ref)))
    if ctx.ref_type == "tag":
        add(("CI_COMMIT_TAG", ctx.ref))
    else:
        add(("CI_COMMIT_BRANCH", ctx.ref))
    add(("CI_COMMIT_REF_PROTECTED", "true" if ctx.ref_protected else "false"))
    return [Variable(k, v, source=src) for k, v in out]


def persisted_environment_variables(ctx: RunContext) -> list[Variable]:
    """``CI_ENVIRONMENT_SLUG``/``CI_ENVIRONMENT_URL`` of a job's deployment: appended last in GitLab,
    so no user variable overrides them."""
    if not ctx.environment_name:
        return []
    src = VariableSource(Layer.PERSISTED_ENVIRONMENT)
    out = [Variable("CI_ENVIRONMENT_SLUG", environment_slug(ctx.environment_name), source=src)]
    if ctx.environment_url:
        out.append(Variable("CI_ENVIRONMENT_URL", ctx.environment_url, source=src))
    return out
