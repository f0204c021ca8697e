"""`make demo`: the variable core of airflow-ci-vars on a realistic project, end to end.

Walks through what a GitLab user expects: layered variables with precedence and environment
scopes, protected and masked values, a REST trigger with CircleCI-style parameters, a dotenv
report handed on from an earlier job, "where did this value come from?", and a job log with the
secrets masked even when they are printed in pieces.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from airflow_ci_vars import Masker, RunContext, Variable, VariableLayers, parse_dotenv, pipeline_variables, resolve
from airflow_ci_vars.dotenv import dotenv_variables
from airflow_ci_vars.errors import DotenvError
from airflow_ci_vars.variables import Layer, group_chain, ref_is_protected
from airflow_ci_vars.variables.validation import validate_variable
from airflow_ci_vars.variables.yaml_values import yaml_variables

HERE = Path(__file__).parent / "etl"


def stored(records: list[dict[str, Any]], layer: Layer) -> list[Variable]:
    """Settings-file records -> validated variables."""
    return [validate_variable(Variable(str(r.pop("key")), str(r.pop("value")), **r), layer=layer) for r in records]


def heading(text: str) -> None:
    print(f"\n== {text} " + "=" * max(0, 70 - len(text)))


def main() -> int:
    settings = yaml.load((HERE / "settings.yml").read_text(), Loader=yaml.CSafeLoader)
    pipeline = yaml.load((HERE / ".gitlab-ci.yml").read_text(), Loader=yaml.CSafeLoader)
    project = settings["project"]
    job = pipeline["deploy"]

    # A REST trigger: POST /api/v2/dags/etl/dagRuns with a conf like this one.
    conf = {"ref": "feature/login", "build_parameters": {"DRY_RUN": True, "BATCH": 500, "TABLES": ["a", "b"]}}
    ref = conf["ref"]
    run = RunContext(
        job_name="deploy",
        stage=job["stage"],
        project_path=project,
        ref=ref,
        default_branch=settings["default_branch"],
        ref_protected=ref_is_protected(ref, settings["protected_refs"]),
        pipeline_id="1042",
        pipeline_source="api",
        project_dir=str(HERE),
    )
    layers = VariableLayers(
        instance=stored(settings["instance"]["variables"], Layer.INSTANCE),
        groups={g: stored(settings["groups"][g]["variables"], Layer.GROUP) for g in group_chain(project)},
        project=stored(settings["projects"][project]["variables"], Layer.PROJECT),
        project_path=project,
        default=yaml_variables(pipeline["variables"], layer=Layer.DEFAULT),
        job=yaml_variables(job["variables"]),
        dotenv=dotenv_variables((HERE / "build.env").read_bytes(), producer="build"),
        pipeline=pipeline_variables(conf),
    )
    env = resolve(layers, run, environment=job["environment"]["name"], temp_dir="/tmp/ci-demo")

    heading(f"job 'deploy' of {project} on ref {ref} (protected: {run.ref_protected})")
    print(f"environment: {env.environment_name}  (slug {env.environment['CI_ENVIRONMENT_SLUG']})")
    masker = Masker(env.masked_values)
    shown = [k for k in env.environment if not k.startswith(("CI_", "GITLAB_", "RUNNER_")) and k != "CI"]
    for key in shown:
        value = masker.mask(env.environment[key])  # also masks the password inside WAREHOUSE_URL
        print(f"  {key:<16} = {value:<44} <- {env.provenance[key].source}")

    heading("where did these values come from?")
    for key in ("LOG_LEVEL", "DB_PASSWORD", "S3_BUCKET", "DEPLOY_TOKEN"):
        print(env.explain(key))

    heading("the job's log, through the streaming masker")
    script = job["script"][0] + '; printf "pw=%s" "${DB_PASSWORD:0:5}"; printf "%s\\n" "${DB_PASSWORD:5}"'
    proc = subprocess.run(["bash", "-c", script], env=dict(env.environment), capture_output=True, text=True, check=True)
    stream = masker.stream()
    pieces = [proc.stdout[i : i + 7] for i in range(0, len(proc.stdout), 7)]  # the log arrives in 7-char writes
    masked = "".join(stream.write(p) for p in pieces) + stream.flush()
    print(f"$ {script}")
    print(masked, end="")
    print(f"({len(pieces)} writes; the password was printed in two pieces and still masked)")
    assert all(secret not in masked for secret in env.masked_values)

    heading("dotenv check")
    print(parse_dotenv((HERE / "build.env").read_bytes()))
    try:
        parse_dotenv((HERE / "broken.env").read_bytes())
    except DotenvError as err:
        print(f"broken.env:{err.line}: {err.message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
