"""Container jobs, pure parts: ``image:``/``services:`` as GitLab parses them, ``default:`` and
``inherit:default`` through the loader, the container plan (image names, allowlists, pull policies,
service host names and environments, build paths) and ``lint``'s warnings in each isolation mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_ci_vars.cli import container_mode_configured, main
from airflow_ci_vars.containers.plan import (
    BuildPaths,
    ContainerPlan,
    ContainerPolicy,
    build_paths,
    plan_containers,
    service_aliases,
)
from airflow_ci_vars.errors import ContainerError, JobConfigError, SettingsError
from airflow_ci_vars.pipeline.cache import ParseCache
from airflow_ci_vars.pipeline.entries.image import ImageSpec, ServiceSpec, parse_image, parse_services
from airflow_ci_vars.pipeline.loader import check_pipeline, load_pipeline
from airflow_ci_vars.variables.model import Layer, Variable, VariableSource

# --- image: -------------------------------------------------------------------------------------


def test_image_string_is_its_name() -> None:
    assert parse_image("build", "python:3.12") == ImageSpec("python:3.12")
    assert parse_image("build", None) is None


def test_image_hash_keeps_every_field() -> None:
    found = parse_image(
        "build",
        {
            "name": "registry.acme/tools:1",
            "entrypoint": ["/bin/sh", "-c"],
            "pull_policy": ["if-not-present", "always", "if-not-present"],
            "docker": {"user": "1000:1000", "platform": "linux/arm64"},
        },
    )
    assert found == ImageSpec(
        "registry.acme/tools:1",
        entrypoint=("/bin/sh", "-c"),
        pull_policy=("if-not-present", "always"),  # duplicates dropped, order kept
        user="1000:1000",
        platform="linux/arm64",
    )


def test_image_empty_entrypoint_overrides_the_images_own() -> None:
    found = parse_image("build", {"name": "alpine", "entrypoint": [""]})
    assert found is not None and found.entrypoint == ("",)
    assert parse_image("build", {"name": "alpine"}) == ImageSpec("alpine", entrypoint=None)


def test_image_pull_policy_string() -> None:
    found = parse_image("build", {"name": "alpine", "pull_policy": "never"})
    assert found is not None and found.pull_policy == ("never",)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (3, "jobs:build:image config should be a hash or a string"),
        ("", "jobs:build:image name can't be blank"),
        ({"name": ""}, "jobs:build:image name can't be blank"),
        ({"entrypoint": ["sh"]}, "jobs:build:image name can't be blank"),
        ({"name": 3}, "jobs:build:image name should be a string"),
        ({"name": "a", "foo": 1, "bar": 2}, "jobs:build:image config contains unknown keys: bar, foo"),
        ({"name": "a", "ports": [80]}, "jobs:build:image config contains disallowed keys: ports"),
        ({"name": "a", "entrypoint": "sh"}, "jobs:build:image entrypoint should be an array of strings"),
        ({"name": "a", "docker": "x"}, "jobs:build:image docker config should be a hash"),
        ({"name": "a", "docker": {"uid": 1}}, "jobs:build:image docker config contains unknown keys: uid"),
        ({"name": "a", "docker": {"user": 1000}}, "jobs:build:image docker user should be a string"),
    ],
)
def test_image_refusals_name_the_job_and_keyword(value: object, message: str) -> None:
    with pytest.raises(JobConfigError) as raised:
        parse_image("build", value)
    assert str(raised.value) == message
    assert raised.value.job == "build" and raised.value.key == "image"


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("sometimes", "config is not included in the list"),  # GitLab's inclusion validator
        (["always", "sometimes"], "config contains unknown values: sometimes"),
        ([], "config can't be blank"),
        (3, "config should be an array of strings or a string"),
    ],
)
def test_image_unknown_pull_policy_is_refused(policy: object, message: str) -> None:
    with pytest.raises(JobConfigError) as raised:
        parse_image("build", {"name": "a", "pull_policy": policy})
    assert str(raised.value) == f"jobs:build:image:pull_policy {message}"


# --- services: ----------------------------------------------------------------------------------


def test_services_strings_and_hashes() -> None:
    found = parse_services(
        "test",
        [
            "postgres:16",
            {
                "name": "redis:7",
                "alias": "cache, kv  store",
                "entrypoint": ["/bin/sh", "-c"],
                "command": ["redis-server", "--port", "6380"],
                "variables": {"A": 1, "B": True, "C": {"value": "v", "description": "d"}, "D": None},
                "pull_policy": "always",
                "docker": {"user": "redis"},
            },
        ],
    )
    assert found == (
        ServiceSpec("postgres:16"),
        ServiceSpec(
            "redis:7",
            alias="cache, kv  store",
            entrypoint=("/bin/sh", "-c"),
            command=("redis-server", "--port", "6380"),
            variables=(("A", "1"), ("B", "true"), ("C", "v"), ("D", "")),
            pull_policy=("always",),
            user="redis",
        ),
    )
    assert found[1].aliases == ("cache", "kv", "store")  # commas and spaces both separate
    assert found[0].aliases == ()
    assert parse_services("test", None) == ()


NOT_PAIRS = "variables config should be a hash of key value pairs"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("postgres", "jobs:test:services config should be a array"),
        ([{"name": ""}], "jobs:test:services:service name can't be blank"),
        (["pg", {"name": "a", "alias": 1}], "jobs:test:services:service[1] alias should be a string"),
        (["pg", {"name": "a", "command": "x"}], "jobs:test:services:service[1] command should be an array of strings"),
        ([{"name": "a", "ports": [5432]}], "jobs:test:services:service config contains disallowed keys: ports"),
        ([{"name": "a", "user": "x"}], "jobs:test:services:service config contains unknown keys: user"),
        ([{"name": "a", "variables": ["A=1"]}], f"jobs:test:services:service {NOT_PAIRS}"),
        ([{"name": "a", "variables": {"A": [1]}}], f"jobs:test:services:service {NOT_PAIRS}"),
    ],
)  # fmt: skip
def test_services_refusals(value: object, message: str) -> None:
    with pytest.raises(JobConfigError) as raised:
        parse_services("test", value)
    assert str(raised.value) == message
    assert raised.value.key == "services"


# --- default: and inherit:default through the loader --------------------------------------------

DEFAULTS = """\
default:
  image: python:3.12
  services: [postgres:16]
plain:
  script: [make]
own:
  image: {name: alpine, entrypoint: [""]}
  inherit:
    default: false
  script: [make]
some:
  inherit:
    default: [services]
  script: [make]
"""


def write(folder: Path, text: str, name: str = ".gitlab-ci.yml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_default_image_and_services_reach_jobs_unless_inherit_says_no(tmp_path: Path) -> None:
    pipeline = load_pipeline(write(tmp_path, DEFAULTS), containers=True)
    specs = {job.name: job.spec for job in pipeline.jobs}
    assert specs["plain"].image == ImageSpec("python:3.12")
    assert specs["plain"].services == (ServiceSpec("postgres:16"),)
    assert specs["own"].image == ImageSpec("alpine", entrypoint=("",))
    assert specs["own"].services == ()
    assert specs["some"].image is None
    assert specs["some"].services == (ServiceSpec("postgres:16"),)


def test_loader_warns_about_image_and_services_only_outside_containers(tmp_path: Path) -> None:
    path = write(tmp_path, DEFAULTS)
    outside = check_pipeline(path)
    assert [str(w) for w in outside.warnings] == [
        f"{path}:2:3: jobs:plain:image is ignored: it only configures a GitLab runner",
        f"{path}:3:3: services is ignored: it only configures a GitLab runner (jobs plain, some)",
        f"{path}:7:3: jobs:own:image is ignored: it only configures a GitLab runner",
    ]
    inside = check_pipeline(path, containers=True)
    assert inside.warnings == () and inside.errors == ()
    # Other runner-only keywords are still warned about in containers.
    cache = write(tmp_path, "a:\n  image: alpine\n  cache: {paths: [x]}\n  script: [x]\n", "c.yml")
    cached = check_pipeline(cache, containers=True)
    assert [w.message for w in cached.warnings] == ["jobs:a:cache is ignored: it only configures a GitLab runner"]


def test_loader_reports_a_bad_image_at_its_place(tmp_path: Path) -> None:
    path = write(tmp_path, "a:\n  script: [x]\n  image:\n    name: alpine\n    ports: [80]\n")
    loaded = check_pipeline(path, containers=True)
    assert loaded.pipeline is None
    assert [str(e) for e in loaded.errors] == [f"{path}:3:3: jobs:a:image config contains disallowed keys: ports"]


def test_child_pipelines_get_the_flag_too(tmp_path: Path) -> None:
    write(tmp_path, "unit:\n  image: alpine\n  script: [x]\n", "child.yml")
    path = write(tmp_path, "up:\n  trigger:\n    include: child.yml\n")
    assert [w.message for w in check_pipeline(path).warnings] == [
        "jobs:unit:image is ignored: it only configures a GitLab runner"
    ]
    assert check_pipeline(path, containers=True).warnings == ()


def test_parse_cache_keeps_one_entry_per_mode(tmp_path: Path) -> None:
    path = write(tmp_path, "a:\n  image: alpine\n  script: [x]\n")
    outside = ParseCache(tmp_path / "cache")
    inside = ParseCache(tmp_path / "cache", containers=True)
    assert outside.entry(path) != inside.entry(path)
    assert [w.message for w in outside.load(path).warnings] == [
        "jobs:a:image is ignored: it only configures a GitLab runner"
    ]
    assert inside.lookup(path) is None  # the other mode's entry is not served
    assert inside.load(path).warnings == ()
    cached = outside.lookup(path)
    assert cached is not None and len(cached.warnings) == 1
    cached = inside.lookup(path)
    assert cached is not None and cached.warnings == ()


# --- plan_containers ----------------------------------------------------------------------------

PATHS = BuildPaths("/builds", "/builds/acme/etl", "/builds/acme/etl.tmp")


def plan(
    image: ImageSpec | None,
    *,
    services: tuple[ServiceSpec, ...] = (),
    environment: dict[str, str] | None = None,
    variables: tuple[Variable, ...] = (),
    masked: tuple[str, ...] = (),
    policy: ContainerPolicy | None = None,
) -> ContainerPlan:
    return plan_containers(
        job="build",
        image=image,
        services=services,
        environment=environment or {},
        variables=variables,
        masked=masked,
        policy=policy or ContainerPolicy(),
        paths=PATHS,
    )


def test_image_name_is_expanded_with_the_jobs_variables() -> None:
    found = plan(ImageSpec("$IMG:${TAG}"), environment={"IMG": "python", "TAG": "3.12-slim"})
    assert found.job.image == "python:3.12-slim"
    assert found.job.written == "$IMG:${TAG}"
    assert dict(found.job.environment) == {"IMG": "python", "TAG": "3.12-slim"}
    assert found.paths == PATHS


def test_default_image_when_the_job_names_none() -> None:
    found = plan(None, policy=ContainerPolicy(default_image="debian:bookworm"))
    assert found.job.image == "debian:bookworm"


def test_no_image_and_no_default_names_the_setting() -> None:
    with pytest.raises(ContainerError) as raised:
        plan(None)
    assert str(raised.value) == (
        "jobs:build: no image: the job names none and [ci_vars] docker_default_image is not set"
    )


def test_image_expanding_to_nothing_is_refused() -> None:
    with pytest.raises(ContainerError, match=r"jobs:build:image: '\$NOPE' expands to an empty image name"):
        plan(ImageSpec("$NOPE"))


def test_allowed_images_globs() -> None:
    policy = ContainerPolicy(allowed_images=("python:*", "registry.acme/**"))
    assert plan(ImageSpec("python:3.11-slim"), policy=policy).job.image == "python:3.11-slim"
    assert plan(ImageSpec("registry.acme/team/tools/ci:2"), policy=policy).job.image == "registry.acme/team/tools/ci:2"
    with pytest.raises(ContainerError) as raised:
        plan(ImageSpec("evil/python:3"), policy=policy)
    assert str(raised.value) == (
        "jobs:build: the image 'evil/python:3' is not allowed by [ci_vars] docker_allowed_images "
        "(python:*, registry.acme/**)"
    )


def test_allowed_services_globs() -> None:
    policy = ContainerPolicy(allowed_services=("postgres:*",))
    found = plan(ImageSpec("alpine"), services=(ServiceSpec("postgres:16"),), policy=policy)
    assert [s.image for s in found.services] == ["postgres:16"]
    with pytest.raises(ContainerError) as raised:
        plan(ImageSpec("alpine"), services=(ServiceSpec("redis:7"),), policy=policy)
    assert str(raised.value) == (
        "jobs:build: the service image 'redis:7' is not allowed by [ci_vars] docker_allowed_services (postgres:*)"
    )


def test_a_masked_value_in_an_image_name_is_never_shown() -> None:
    policy = ContainerPolicy(allowed_images=("python:*",))
    with pytest.raises(ContainerError) as raised:
        plan(
            ImageSpec("registry.acme/$TOKEN/python:3"),
            environment={"TOKEN": "s3cr3t-t0ken"},
            masked=("s3cr3t-t0ken",),
            policy=policy,
        )
    assert "s3cr3t-t0ken" not in str(raised.value)
    assert "'registry.acme/$TOKEN/python:3'" in str(raised.value)
    assert "[ci_vars] docker_allowed_images" in str(raised.value)
    found = plan(ImageSpec("$IMG"), environment={"IMG": "s3cr3t-t0ken"}, masked=("s3cr3t-t0ken",))
    assert found.job.shown == "$IMG"


def test_pull_policy_rules() -> None:
    assert plan(ImageSpec("alpine")).job.pull_policy == "if-not-present"  # the deployment's default
    assert plan(ImageSpec("alpine"), policy=ContainerPolicy(pull_policy="always")).job.pull_policy == "always"
    asked = ImageSpec("alpine", pull_policy=("never", "always"))
    assert plan(asked).job.pull_policy == "never"  # the job's first one
    restricted = ContainerPolicy(pull_policy="always", allowed_pull_policies=("never", "if-not-present"))
    assert plan(ImageSpec("alpine"), policy=restricted).job.pull_policy == "never"  # default not allowed
    with pytest.raises(ContainerError) as raised:
        plan(asked, policy=restricted)
    assert str(raised.value) == (
        "jobs:build:image: pull_policy ([never always]) defined in the pipeline for 'alpine' is not one of "
        "[ci_vars] docker_allowed_pull_policies ([never if-not-present])"
    )
    with pytest.raises(ContainerError, match=r"jobs:build:services:0: pull_policy \(\[always\]\)"):
        plan(ImageSpec("alpine"), services=(ServiceSpec("pg", pull_policy=("always",)),), policy=restricted)


def test_policy_refuses_unknown_pull_policies() -> None:
    with pytest.raises(ContainerError, match=r"\[ci_vars\] docker_pull_policy: 'sometimes'"):
        ContainerPolicy(pull_policy="sometimes")
    with pytest.raises(ContainerError, match=r"\[ci_vars\] docker_allowed_pull_policies: 'x'"):
        ContainerPolicy(allowed_pull_policies=("always", "x"))


@pytest.mark.parametrize(
    ("image", "aliases"),
    [
        ("postgres:16", ("postgres",)),
        ("postgres", ("postgres",)),
        ("tutum/wordpress", ("tutum__wordpress", "tutum-wordpress")),
        ("tutum/wordpress:latest", ("tutum__wordpress", "tutum-wordpress")),
        (
            "registry.example.com:5000/group/pg:1",
            ("registry.example.com__group__pg", "registry.example.com-group-pg"),
        ),
    ],
)
def test_service_host_names(image: str, aliases: tuple[str, ...]) -> None:
    assert service_aliases(image) == aliases


def test_service_aliases_are_appended_once() -> None:
    service = ServiceSpec("tutum/wordpress:latest", alias="wp, tutum-wordpress blog")
    found = plan(ImageSpec("alpine"), services=(service,))
    assert found.services[0].aliases == ("tutum__wordpress", "tutum-wordpress", "wp", "blog")


def var(key: str, value: str, layer: Layer, *, masked: bool = False) -> Variable:
    return Variable(key, value, source=VariableSource(layer), masked=masked)


def test_services_get_only_public_variables() -> None:
    variables = (
        var("CI_JOB_NAME", "build", Layer.PREDEFINED),
        var("TOP", "top", Layer.DEFAULT),
        var("DB_NAME", "app", Layer.JOB),
        var("PROJECT_TOKEN", "p", Layer.PROJECT),
        var("GROUP_TOKEN", "g", Layer.GROUP),
        var("PIPELINE_VAR", "pv", Layer.PIPELINE),
        var("FROM_DOTENV", "d", Layer.DOTENV),
        var("VAULT_SECRET", "s", Layer.SECRETS),
        var("MASKED_YAML", "m", Layer.JOB, masked=True),
    )
    environment = {v.key: v.value for v in variables}
    found = plan(
        ImageSpec("alpine"), services=(ServiceSpec("postgres:16"),), environment=environment, variables=variables
    )
    assert dict(found.services[0].environment) == {"CI_JOB_NAME": "build", "TOP": "top", "DB_NAME": "app"}
    assert dict(found.job.environment) == environment  # the job itself gets everything


def test_service_variables_win_and_are_expanded_with_public_ones() -> None:
    variables = (
        var("DB_NAME", "app", Layer.JOB),
        var("POSTGRES_DB", "from-job", Layer.JOB),
        var("PROJECT_TOKEN", "p", Layer.PROJECT),
    )
    service = ServiceSpec(
        "postgres:16",
        variables=(("POSTGRES_DB", "${DB_NAME}_test"), ("LEAK", "x$PROJECT_TOKEN")),
    )
    found = plan(ImageSpec("alpine"), services=(service,), variables=variables)
    assert dict(found.services[0].environment) == {"DB_NAME": "app", "POSTGRES_DB": "app_test", "LEAK": "x"}


def test_service_name_is_expanded_with_public_variables_only() -> None:
    variables = (var("PG", "postgres:16", Layer.JOB), var("HIDDEN", "secret:1", Layer.PROJECT))
    found = plan(ImageSpec("alpine"), services=(ServiceSpec("$PG"),), variables=variables)
    assert found.services[0].image == "postgres:16"
    assert found.services[0].aliases == ("postgres",)
    with pytest.raises(ContainerError, match=r"jobs:build:services:0: '\$HIDDEN' expands to an empty image name"):
        plan(ImageSpec("alpine"), services=(ServiceSpec("$HIDDEN"),), variables=variables)


def test_build_paths() -> None:
    assert build_paths("acme/data/etl") == BuildPaths("/builds", "/builds/acme/data/etl", "/builds/acme/data/etl.tmp")
    assert build_paths("/acme/etl/") == BuildPaths("/builds", "/builds/acme/etl", "/builds/acme/etl.tmp")


@pytest.mark.parametrize("project", ["../../etc", "acme/../../etc", "acme/..", "", "/"])
def test_build_paths_refuses_escapes(project: str) -> None:
    with pytest.raises(ContainerError, match="cannot place project"):
        build_paths(project)


# --- lint in each isolation mode ----------------------------------------------------------------

LINTED = "build:\n  image: python:3.12\n  services: [postgres:16]\n  cache: {paths: [.cache]}\n  script: [make]\n"


@pytest.fixture
def no_airflow_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No isolation setting anywhere: the variable unset, ``$AIRFLOW_CONFIG`` a missing file."""
    monkeypatch.delenv("AIRFLOW__CI_VARS__ISOLATION", raising=False)
    config = tmp_path / "airflow.cfg"
    monkeypatch.setenv("AIRFLOW_CONFIG", str(config))
    return config


def lint(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["lint", str(path)])
    return code, capsys.readouterr().err.splitlines()


def test_lint_warns_about_image_and_services_outside_containers(
    tmp_path: Path, no_airflow_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, LINTED)
    assert lint(path, capsys) == (
        0,
        [
            f"{path}:2:3: warning: jobs:build:image is ignored: it only configures a GitLab runner",
            f"{path}:3:3: warning: jobs:build:services is ignored: it only configures a GitLab runner",
            f"{path}:4:3: warning: jobs:build:cache is ignored: it only configures a GitLab runner",
        ],
    )


@pytest.mark.parametrize("mode", ["docker", " Docker "])
def test_lint_accepts_image_and_services_in_containers(
    tmp_path: Path,
    no_airflow_config: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    mode: str,
) -> None:
    monkeypatch.setenv("AIRFLOW__CI_VARS__ISOLATION", mode)
    path = write(tmp_path, LINTED)
    assert lint(path, capsys) == (
        0,
        [f"{path}:4:3: warning: jobs:build:cache is ignored: it only configures a GitLab runner"],
    )


def test_lint_reads_the_airflow_config_file(
    tmp_path: Path, no_airflow_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    no_airflow_config.write_text("[core]\ndags_folder = %(x)s\n\n[ci_vars]\nisolation = docker\n")
    path = write(tmp_path, LINTED)
    assert lint(path, capsys)[1] == [
        f"{path}:4:3: warning: jobs:build:cache is ignored: it only configures a GitLab runner"
    ]


def test_the_variable_wins_over_the_config_file(tmp_path: Path, no_airflow_config: Path) -> None:
    no_airflow_config.write_text("[ci_vars]\nisolation = docker\n")
    assert container_mode_configured({"AIRFLOW_CONFIG": str(no_airflow_config)})
    assert not container_mode_configured(
        {"AIRFLOW_CONFIG": str(no_airflow_config), "AIRFLOW__CI_VARS__ISOLATION": "sandbox"}
    )
    assert not container_mode_configured({"AIRFLOW_CONFIG": str(no_airflow_config), "AIRFLOW__CI_VARS__ISOLATION": ""})


def test_config_file_found_in_airflow_home(tmp_path: Path) -> None:
    (tmp_path / "airflow.cfg").write_text("[ci_vars]\nisolation = docker\n")
    assert container_mode_configured({"AIRFLOW_HOME": str(tmp_path)})
    assert not container_mode_configured({"AIRFLOW_HOME": str(tmp_path / "elsewhere")})
    (tmp_path / "airflow.cfg").write_text("[ci_vars]\nisolation = auto\n")
    assert not container_mode_configured({"AIRFLOW_HOME": str(tmp_path)})


def test_an_unreadable_config_file_is_named(
    tmp_path: Path, no_airflow_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    no_airflow_config.write_text("isolation = docker\n")  # no section header
    with pytest.raises(SettingsError) as raised:
        container_mode_configured({"AIRFLOW_CONFIG": str(no_airflow_config)})
    assert str(raised.value).startswith(f"{no_airflow_config}:1: cannot read Airflow's configuration")
    path = write(tmp_path, LINTED)
    code, err = lint(path, capsys)
    assert code == 0
    assert err[0].startswith(f"warning: {no_airflow_config}:1: cannot read Airflow's configuration")
    assert f"{path}:2:3: warning: jobs:build:image is ignored: it only configures a GitLab runner" in err
