"""The pod and secret a container job becomes on Kubernetes (``containers.kubernetes``).

No cluster runs here: these tests check the manifests a user would ``kubectl apply``.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from airflow_ci_vars.containers.kubernetes import JOB_LABEL, kubernetes_name, pod_manifests
from airflow_ci_vars.containers.plan import ContainerPlan, ContainerPolicy, build_paths, plan_containers
from airflow_ci_vars.errors import ContainerError
from airflow_ci_vars.pipeline.entries.image import ImageSpec, ServiceSpec
from airflow_ci_vars.variables.model import Layer, Variable, VariableSource

SECRET_TOKEN = "s3cr3t-token-value"
SECRET_PASSWORD = "hunter2-but-longer"


def _plan(
    *,
    image: ImageSpec | None = None,
    services: tuple[ServiceSpec, ...] = (),
    environment: dict[str, str] | None = None,
    policy: ContainerPolicy | None = None,
) -> ContainerPlan:
    env = (
        environment
        if environment is not None
        else {"CI_JOB_NAME": "test", "GREETING": "hello", "API_TOKEN": SECRET_TOKEN, "ZED": "last"}
    )
    variables = [
        Variable("CI_JOB_NAME", "test", source=VariableSource(Layer.PREDEFINED)),
        Variable("GREETING", "hello", source=VariableSource(Layer.DEFAULT)),
        Variable("API_TOKEN", SECRET_TOKEN, masked=True, source=VariableSource(Layer.PROJECT)),
    ]
    return plan_containers(
        job="test",
        image=image or ImageSpec("python:3.12"),
        services=services,
        environment=env,
        variables=variables,
        masked=[SECRET_TOKEN],
        policy=policy or ContainerPolicy(),
        paths=build_paths("group/project"),
    )


def _manifests(plan: ContainerPlan | None = None, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    options: dict[str, Any] = {
        "name": "run1-test",
        "namespace": "ci",
        "script": "echo hello\n",
        "files": {},
        "masked_keys": {"API_TOKEN"},
    }
    options.update(kwargs)
    found = pod_manifests(plan or _plan(), **options)
    json.dumps(found.pod)  # JSON-able, as kubectl and the API take it
    json.dumps(found.secret)
    return found.pod, found.secret


def _container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in pod["spec"]["containers"] if c["name"] == name)


def _secret_value(secret: dict[str, Any], key: str) -> str:
    return base64.b64decode(secret["data"][key]).decode()


def test_one_pod_with_build_and_service_containers_sharing_localhost() -> None:
    services = (ServiceSpec("postgres:16", alias="db"), ServiceSpec("registry.example.com:5000/tools/redis:7"))
    pod, secret = _manifests(_plan(services=services))
    assert pod["apiVersion"] == "v1" and pod["kind"] == "Pod"
    assert [c["name"] for c in pod["spec"]["containers"]] == ["build", "svc-0", "svc-1"]
    assert _container(pod, "svc-0")["image"] == "postgres:16"
    assert pod["spec"]["hostAliases"] == [
        {"ip": "127.0.0.1", "hostnames": ["postgres", "db", "registry.example.com-tools-redis"]}
    ]  # registry.example.com__tools__redis is no DNS name: skipped, as the runner does
    assert secret["kind"] == "Secret" and secret["metadata"]["namespace"] == "ci"
    assert pod["metadata"]["namespace"] == "ci"


def test_a_service_name_that_is_no_host_name_is_skipped_but_a_bad_alias_is_refused() -> None:
    pod, _ = _manifests(_plan(services=(ServiceSpec("my_registry/Big_Image:1"),)))
    assert "hostAliases" not in pod["spec"]  # my_registry__Big_Image is no DNS name: the runner skips it
    with pytest.raises(ContainerError, match=r"services:0: alias 'Not_A_Host'"):
        _manifests(_plan(services=(ServiceSpec("redis", alias="Not_A_Host"),)))


def test_build_container_runs_the_script_with_bash_else_sh_in_the_project_folder() -> None:
    pod, secret = _manifests()
    build = _container(pod, "build")
    assert "command" not in build  # the image's ENTRYPOINT runs the shell, as Docker's Cmd
    sh, dash_c, detect, _, project_dir, script_path = build["args"]
    assert (sh, dash_c) == ("sh", "-c")
    assert detect.index("/bin/bash") < detect.index("/bin/sh")
    assert project_dir == "/builds/group/project"
    assert script_path == "/builds/group/project.tmp/script.sh"
    assert _secret_value(secret, "script") == "echo hello\n"


def test_entrypoint_override_and_blank_entrypoint() -> None:
    pod, _ = _manifests(_plan(image=ImageSpec("python:3.12", entrypoint=("/init", "--"))))
    build = _container(pod, "build")
    assert build["command"] == ["/init", "--"] and build["args"][:2] == ["sh", "-c"]
    pod, _ = _manifests(_plan(image=ImageSpec("python:3.12", entrypoint=("",))))
    build = _container(pod, "build")
    assert build["command"][:2] == ["sh", "-c"] and "args" not in build


def test_service_entrypoint_command_and_own_environment() -> None:
    service = ServiceSpec(
        "postgres:16", entrypoint=("docker-entrypoint.sh",), command=("postgres", "-c", "fsync=off"),
        variables=(("POSTGRES_DB", "app"),),
    )  # fmt: skip
    pod, _ = _manifests(_plan(services=(service,)))
    svc = _container(pod, "svc-0")
    assert svc["command"] == ["docker-entrypoint.sh"]
    assert svc["args"] == ["postgres", "-c", "fsync=off"]
    env = {e["name"]: e.get("value") for e in svc["env"]}
    assert env["POSTGRES_DB"] == "app" and env["GREETING"] == "hello"
    assert "API_TOKEN" not in env  # a stored masked variable never reaches a service
    with pytest.raises(ContainerError, match=r"services:0: entrypoint"):
        _manifests(_plan(services=(ServiceSpec("redis", entrypoint=("",)),)))


def test_environment_order_kept_and_masked_values_only_through_the_secret() -> None:
    pod, secret = _manifests()
    build = _container(pod, "build")
    assert [e["name"] for e in build["env"]] == ["CI_JOB_NAME", "GREETING", "API_TOKEN", "ZED"]
    token = next(e for e in build["env"] if e["name"] == "API_TOKEN")
    ref = token["valueFrom"]["secretKeyRef"]
    assert "value" not in token and ref["name"] == secret["metadata"]["name"]
    assert _secret_value(secret, ref["key"]) == SECRET_TOKEN
    assert SECRET_TOKEN not in json.dumps(pod)
    assert SECRET_TOKEN not in json.dumps(secret)  # only base64 in the secret's data
    assert {"name": "GREETING", "value": "hello"} in build["env"]


def test_a_value_holding_a_masked_value_goes_through_the_secret_too() -> None:
    env = {"API_TOKEN": SECRET_TOKEN, "AUTH_HEADER": f"Bearer {SECRET_TOKEN}", "PLAIN": "x"}
    pod, secret = _manifests(_plan(environment=env))
    assert SECRET_TOKEN not in json.dumps(pod)
    header = next(e for e in _container(pod, "build")["env"] if e["name"] == "AUTH_HEADER")
    assert _secret_value(secret, header["valueFrom"]["secretKeyRef"]["key"]) == f"Bearer {SECRET_TOKEN}"


def test_a_masked_service_variable_is_not_inline_either() -> None:
    service = ServiceSpec("mysql:8", variables=(("MYSQL_ROOT_PASSWORD", SECRET_PASSWORD),))
    pod, secret = _manifests(_plan(services=(service,)), masked_keys={"API_TOKEN", "MYSQL_ROOT_PASSWORD"})
    assert SECRET_PASSWORD not in json.dumps(pod)
    entry = next(e for e in _container(pod, "svc-0")["env"] if e["name"] == "MYSQL_ROOT_PASSWORD")
    assert _secret_value(secret, entry["valueFrom"]["secretKeyRef"]["key"]) == SECRET_PASSWORD


def test_a_masked_value_in_an_image_name_is_refused() -> None:
    plan = _plan(image=ImageSpec("registry.example.com/$API_TOKEN/app:1"))
    with pytest.raises(ContainerError, match=r"image would hold a masked value") as caught:
        _manifests(plan)
    assert SECRET_TOKEN not in str(caught.value)


def test_file_variables_mounted_read_only_from_the_secret() -> None:
    content = "-----BEGIN KEY-----\nabc\n"
    pod, secret = _manifests(files={"SSH_KEY": content})
    build = _container(pod, "build")
    mount = next(m for m in build["volumeMounts"] if m["mountPath"] == "/builds/group/project.tmp/SSH_KEY")
    assert mount["readOnly"] is True and mount["subPath"] == "file.SSH_KEY"
    assert {"name": "SSH_KEY", "value": "/builds/group/project.tmp/SSH_KEY"} in build["env"]
    assert _secret_value(secret, "file.SSH_KEY") == content
    assert content not in json.dumps(pod)
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == mount["name"])
    modes = {i["key"]: i["mode"] for i in volume["secret"]["items"]}
    assert modes == {"script": 0o500, "file.SSH_KEY": 0o400}
    script = next(m for m in build["volumeMounts"] if m.get("subPath") == "script")
    assert script["readOnly"] is True and script["mountPath"] == "/builds/group/project.tmp/script.sh"


def test_workspace_is_an_empty_dir_at_builds_dir_shared_with_services() -> None:
    pod, _ = _manifests(_plan(services=(ServiceSpec("redis"),)))
    volume = next(v for v in pod["spec"]["volumes"] if "emptyDir" in v)
    for name in ("build", "svc-0"):
        mounts = _container(pod, name)["volumeMounts"]
        assert {"name": volume["name"], "mountPath": "/builds"} in mounts
    assert all(m["name"] != "job-secret" for m in _container(pod, "svc-0")["volumeMounts"])


@pytest.mark.parametrize(
    ("written", "expected"), [("always", "Always"), ("never", "Never"), ("if-not-present", "IfNotPresent")]
)
def test_pull_policies(written: str, expected: str) -> None:
    plan = _plan(
        image=ImageSpec("alpine", pull_policy=(written,)), services=(ServiceSpec("redis", pull_policy=(written,)),)
    )
    pod, _ = _manifests(plan)
    assert _container(pod, "build")["imagePullPolicy"] == expected
    assert _container(pod, "svc-0")["imagePullPolicy"] == expected


def test_security_defaults() -> None:
    pod, _ = _manifests(timeout_seconds=3600)
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["automountServiceAccountToken"] is False
    assert spec["activeDeadlineSeconds"] == 3600
    context = _container(pod, "build")["securityContext"]
    assert context["privileged"] is False and context["allowPrivilegeEscalation"] is False
    assert "runAsUser" not in context and "resources" not in _container(pod, "build")


def test_privileged_policy_and_limits() -> None:
    policy = ContainerPolicy(privileged=True, memory="2g", cpus=1.5)
    pod, _ = _manifests(_plan(services=(ServiceSpec("docker:dind"),), policy=policy))
    for name in ("build", "svc-0"):
        container = _container(pod, name)
        assert container["securityContext"]["privileged"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is True  # the API refuses false with privileged
        assert container["resources"] == {"limits": {"memory": "2Gi", "cpu": "1.5"}}


@pytest.mark.parametrize(
    ("memory", "cpus", "limits"),
    [("512m", 2.0, {"memory": "512Mi", "cpu": "2"}), ("1Gi", 0.25, {"memory": "1Gi", "cpu": "0.25"})],
)
def test_limits_in_kubernetes_units(memory: str, cpus: float, limits: dict[str, str]) -> None:
    pod, _ = _manifests(_plan(policy=ContainerPolicy(memory=memory, cpus=cpus)))
    assert _container(pod, "build")["resources"]["limits"] == limits


def test_numeric_user_runs_as_that_user_and_a_named_one_is_refused() -> None:
    pod, _ = _manifests(_plan(image=ImageSpec("alpine", user="1000:2000")))
    context = _container(pod, "build")["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"]) == (1000, 2000)
    assert pod["spec"]["securityContext"] == {"fsGroup": 2000}
    with pytest.raises(ContainerError, match=r"image: user 'nobody' is not numeric"):
        _manifests(_plan(image=ImageSpec("alpine", user="nobody")))


def test_platform_becomes_a_node_selector() -> None:
    pod, _ = _manifests(_plan(image=ImageSpec("alpine", platform="linux/arm64")))
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux", "kubernetes.io/arch": "arm64"}
    pod, _ = _manifests()
    assert "nodeSelector" not in pod["spec"]
    with pytest.raises(ContainerError, match="different platforms"):
        _manifests(
            _plan(
                image=ImageSpec("alpine", platform="linux/arm64"),
                services=(ServiceSpec("redis", platform="linux/amd64"),),
            )
        )


def test_long_and_odd_names_are_made_valid_and_labelled() -> None:
    odd = "Pipeline 42 / Build:Job__" + "x" * 80
    pod, secret = _manifests(name=odd, labels={"team": "data"})
    label = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
    for manifest in (pod, secret):
        name = manifest["metadata"]["name"]
        assert len(name) <= 63 and label.fullmatch(name), name
        assert manifest["metadata"]["labels"] == {"team": "data", JOB_LABEL: pod["metadata"]["name"]}
    assert pod["metadata"]["name"] != secret["metadata"]["name"]
    assert kubernetes_name("build-1") == "build-1"
    assert kubernetes_name("Build 1") != kubernetes_name("build-1")  # changed names keep a hash
    assert kubernetes_name("___")[:4] == "job-"


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ContainerError, match="timeout_seconds"):
        _manifests(timeout_seconds=0)


def test_what_kubernetes_would_refuse_is_refused_here_with_its_place() -> None:
    with pytest.raises(ContainerError, match=r"label team=' bad value'"):
        _manifests(labels={"team": " bad value"})
    with pytest.raises(ContainerError, match=r"file variable 'a/b'"):
        _manifests(files={"a/b": "x"})
    with pytest.raises(ContainerError, match=r"build: variable 'BAD KEY'"):
        _manifests(_plan(environment={"BAD KEY": "v"}), masked_keys={"BAD KEY"})


def test_containers_share_no_dicts() -> None:
    policy = ContainerPolicy(memory="1g")
    pod, _ = _manifests(_plan(services=(ServiceSpec("redis"),), policy=policy))
    _container(pod, "build")["resources"]["limits"]["memory"] = "8Gi"
    _container(pod, "build")["volumeMounts"][0]["mountPath"] = "/elsewhere"
    assert _container(pod, "svc-0")["resources"]["limits"]["memory"] == "1Gi"
    assert _container(pod, "svc-0")["volumeMounts"][0]["mountPath"] == "/builds"
