"""Container jobs on the real Docker daemon, through ``run_job`` and ``ContainerRunner`` (no Airflow).

What a user of gitlab-runner's Docker executor would notice: the job runs in its image at
``/builds/<project>``, services answer on their host names once their ports are open, file
variables are read-only, output is masked, ``after_script`` runs in a fresh container, exit codes,
timeouts and kills behave as for shell jobs, and nothing is left on the daemon.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import docker
import pytest

from airflow_ci_vars.containers.docker_runner import (
    JOB_LABEL,
    OWNER_LABEL,
    ContainerRunner,
    DockerSettings,
    docker_client,
    sweep_containers,
)
from airflow_ci_vars.containers.plan import ContainerPlan, ContainerPolicy, build_paths, plan_containers
from airflow_ci_vars.errors import ContainerError, ScriptTimeoutError
from airflow_ci_vars.masking import Masker
from airflow_ci_vars.pipeline.entries.image import ImageSpec, ServiceSpec
from airflow_ci_vars.runner import JobOutcome, Workspace, run_job
from airflow_ci_vars.variables.model import Layer, Variable, VariableSource
from airflow_ci_vars.variables.resolve import VariableFile

SECRET = "tok-Hq72kLm9Zx-secret"
PATHS = build_paths("acme/data/etl")
NEVER = ContainerPolicy(pull_policy="never")


def plan(
    image: ImageSpec | None = None,
    services: Sequence[ServiceSpec] = (),
    env: dict[str, str] | None = None,
    variables: Sequence[Variable] = (),
    policy: ContainerPolicy = NEVER,
) -> ContainerPlan:
    environment = {"CI_PROJECT_DIR": PATHS.project_dir, "CI_BUILDS_DIR": PATHS.builds_dir, **(env or {})}
    return plan_containers(
        job="build",
        image=image or ImageSpec("busybox:latest"),
        services=services,
        environment=environment,
        variables=variables,
        masked=[SECRET],
        policy=policy,
        paths=PATHS,
    )


def run(
    client: docker.DockerClient,
    container_plan: ContainerPlan,
    script: Sequence[str],
    *,
    after_script: Sequence[str] = (),
    files: Sequence[VariableFile] = (),
    source: Path | None = None,
) -> tuple[JobOutcome, list[str], list[str]]:
    """Run ``script`` as a container job; return the outcome, the log and the project folder's files."""
    lines: list[str] = []
    masker = Masker([SECRET])
    runner = ContainerRunner(
        container_plan, masker, lines.append, client=client, job_name="build", file_keys=[f.key for f in files]
    )
    with Workspace(source) as workspace:
        workspace.write_files(VariableFile(f.key, str(workspace.temp_dir / f.key), f.content, f.masked) for f in files)
        outcome = run_job(
            script=script,
            after_script=after_script,
            env=dict(container_plan.job.environment),
            workspace=workspace,
            masker=masker,
            emit=lines.append,
            runner=runner,
        )
        produced = sorted(p.name for p in workspace.project_dir.iterdir())
    return outcome, lines, produced


def test_job_runs_in_its_image_at_the_build_folder(docker_client: docker.DockerClient, test_images: object) -> None:
    outcome, log, produced = run(
        docker_client,
        plan(ImageSpec("python:3.11-slim")),
        ["pwd", "python3 -c 'import sys; print(sys.version_info[:2])'", "echo V=1 > build.env", "echo $CI_BUILDS_DIR"],
    )
    assert outcome.exit_code == 0
    assert log[0] == "Using Docker executor with image python:3.11-slim ..."
    assert "/builds/acme/data/etl" in log
    assert "(3, 11)" in log  # the image's python, not the worker's
    assert "/builds" in log
    assert produced == ["build.env"]  # written in the container, read by the worker after it


def test_environment_is_exactly_the_job_variables(docker_client: docker.DockerClient, test_images: object) -> None:
    outcome, log, _ = run(docker_client, plan(env={"GREETING": "hi there"}), ["env | sort"])
    assert outcome.exit_code == 0
    keys = {line.split("=", 1)[0] for line in log if "=" in line and not line.startswith("$")}
    # The job's variables, the runner's two, and what the image and Docker set; nothing of the worker.
    assert {"GREETING", "CI_PROJECT_DIR", "CI_JOB_STATUS", "GITLAB_ENV"} <= keys
    assert keys <= {"GREETING", "CI_PROJECT_DIR", "CI_BUILDS_DIR", "CI_JOB_STATUS", "GITLAB_ENV", "PATH", "HOME",
                    "HOSTNAME", "PWD", "SHLVL"}  # fmt: skip
    assert "GITLAB_ENV=/builds/acme/data/etl.tmp/gitlab_runner_env" in log or any(
        line.startswith("GITLAB_ENV=/builds/acme/data/etl.tmp/") for line in log
    )


def test_masked_values_are_masked_in_container_output(docker_client: docker.DockerClient, test_images: object) -> None:
    outcome, log, _ = run(
        docker_client,
        plan(env={"TOKEN": SECRET}),
        ['echo "token=$TOKEN"', "printf '%s' \"$TOKEN\" | head -c 7; printf '%s\\n' \"${TOKEN#???????}\""],
    )
    assert outcome.exit_code == 0
    assert "token=[MASKED]" in log
    assert "[MASKED]" in log  # the value printed in two pieces in one line is masked too
    assert not any(SECRET in line for line in log)


def test_exit_code_and_after_script_in_a_fresh_container(
    docker_client: docker.DockerClient, test_images: object
) -> None:
    outcome, log, produced = run(
        docker_client,
        plan(),
        ["echo from-script > /tmp/only-in-script", "touch kept", "echo X=1 >> $GITLAB_ENV", "exit 3"],
        after_script=[
            "echo status=$CI_JOB_STATUS x=$X",
            "test -e /tmp/only-in-script && echo same-container || echo fresh-container",
            "ls kept",
        ],
    )
    assert outcome.exit_code == 3
    assert outcome.after_script_exit_code == 0
    assert "status=failed x=1" in log
    assert "fresh-container" in log  # the runner's after_script container shares the workspace, not /tmp
    assert "kept" in log and produced == ["kept"]


def test_file_variables_are_read_only(docker_client: docker.DockerClient, test_images: object) -> None:
    key_file = f"{PATHS.temp_dir}/SERVICE_ACCOUNT"
    outcome, log, _ = run(
        docker_client,
        plan(env={"SERVICE_ACCOUNT": key_file}),
        [
            'cat "$SERVICE_ACCOUNT"; echo',
            'if echo changed > "$SERVICE_ACCOUNT"; then echo writable; else echo refused; fi',
        ],
        files=[VariableFile("SERVICE_ACCOUNT", key_file, '{"type": "service_account"}')],
    )
    assert outcome.exit_code == 0
    assert '{"type": "service_account"}' in log
    assert "refused" in log and "writable" not in log


def test_service_reached_by_alias_and_name_after_its_port_opens(
    docker_client: docker.DockerClient, test_images: object
) -> None:
    variables = [
        Variable("POSTGRES_DB", "warehouse", source=VariableSource(Layer.DEFAULT)),
        Variable("SECRET_TOKEN", SECRET, masked=True, source=VariableSource(Layer.PROJECT)),
    ]
    service = ServiceSpec("fake-postgres:16", alias="db, warehouse", variables=(("FAKE_PG_START_DELAY", "2"),))
    started = time.monotonic()
    outcome, log, _ = run(
        docker_client,
        plan(services=[service], env={"SECRET_TOKEN": SECRET}, variables=variables),
        ["nc db 5432", "nc warehouse 5432", "nc fake-postgres 5432"],
    )
    assert outcome.exit_code == 0, log
    answers = [line for line in log if line.startswith("fake-postgres db=")]
    # Three host names, one service; the script started only once the port was open (2 s delay).
    assert answers == ["fake-postgres db=warehouse user=postgres password_set=no secret_seen=no"] * 3
    assert time.monotonic() - started >= 2
    assert "Starting service fake-postgres:16 ..." in log


def test_service_that_never_opens_its_port_earns_the_runner_warning(
    docker_client: docker.DockerClient, test_images: object
) -> None:
    service = ServiceSpec("fake-postgres:16", alias="db", variables=(("FAKE_PG_START_DELAY", "30"),))
    policy = ContainerPolicy(pull_policy="never", services_timeout=1.0)
    outcome, log, _ = run(docker_client, plan(services=[service], policy=policy), ["echo job-ran"])
    assert outcome.exit_code == 0
    assert "*** WARNING: Service fake-postgres:16 probably didn't start properly." in log
    assert any("did not open port 5432/tcp within 1 seconds" in line for line in log)
    assert "job-ran" in log  # the runner goes on, as gitlab-runner does


def test_entrypoint_and_user_overrides(docker_client: docker.DockerClient, test_images: object) -> None:
    image = ImageSpec(
        "busybox:latest", entrypoint=("/bin/sh", "-c", 'echo via-entrypoint; exec "$@"', "--"), user="65534"
    )
    outcome, log, _ = run(docker_client, plan(image), ["id -u"])
    assert outcome.exit_code == 0, log
    assert "via-entrypoint" in log and "65534" in log


def test_timeout_stops_the_container(docker_client: docker.DockerClient, test_images: object) -> None:
    masker = Masker([])
    runner = ContainerRunner(plan(), masker, lambda _: None, client=docker_client, job_name="build", kill_grace=1.0)
    with Workspace(None) as workspace:
        runner.prepare(workspace)
        started = time.monotonic()
        try:
            with pytest.raises(ScriptTimeoutError):
                runner.run(["sleep 60"], env={}, cwd=workspace.project_dir, script_dir=workspace.temp_dir, timeout=1.0)
        finally:
            runner.close()
    assert time.monotonic() - started < 15


def test_kill_stops_the_job_and_nothing_is_left(docker_client: docker.DockerClient, test_images: object) -> None:
    lines: list[str] = []
    masker = Masker([])
    service = ServiceSpec("fake-postgres:16", alias="db")
    runner = ContainerRunner(plan(services=[service]), masker, lines.append, client=docker_client, job_name="build")
    outcome: list[JobOutcome] = []
    with Workspace(None) as workspace:

        def job() -> None:
            outcome.append(
                run_job(
                    script=["echo started", "sleep 120"],
                    after_script=["echo after"],
                    env={},
                    workspace=workspace,
                    masker=masker,
                    emit=lines.append,
                    runner=runner,
                )
            )

        thread = threading.Thread(target=job)
        thread.start()
        deadline = time.monotonic() + 60
        while "started" not in lines and time.monotonic() < deadline:
            time.sleep(0.1)
        killed_at = time.monotonic()
        runner.kill()
        thread.join(60)
    assert not thread.is_alive()
    assert time.monotonic() - killed_at < 15
    assert outcome and outcome[0].exit_code in (137, 143)
    assert "after" not in lines  # a killed job's after_script does not run
    left = docker_client.containers.list(all=True, filters={"label": f"{OWNER_LABEL}"})
    assert not [c for c in left if c.labels.get(JOB_LABEL) == "build" and c.status == "running"]


def test_disallowed_image_names_the_image_and_the_setting() -> None:
    policy = ContainerPolicy(pull_policy="never", allowed_images=("python:*",))
    with pytest.raises(ContainerError) as caught:
        plan(ImageSpec("busybox:latest"), policy=policy)
    assert "'busybox:latest'" in str(caught.value)
    assert "[ci_vars] docker_allowed_images (python:*)" in str(caught.value)


def test_missing_image_with_pull_policy_never(docker_client: docker.DockerClient) -> None:
    runner = ContainerRunner(
        plan(ImageSpec("acme/not-built-here:9")), Masker([]), lambda _: None, client=docker_client, job_name="build"
    )
    with Workspace(None) as workspace, pytest.raises(ContainerError) as caught:
        try:
            runner.prepare(workspace)
        finally:
            runner.close()
    assert "the image 'acme/not-built-here:9' is not present on the Docker host" in str(caught.value)
    assert "pull policy is never" in str(caught.value)


def test_unreachable_daemon_fails_clearly(tmp_path: Path) -> None:
    socket_path = tmp_path / "no-docker.sock"
    with pytest.raises(ContainerError) as caught:
        docker_client(DockerSettings(host=f"unix://{socket_path}", timeout=5))
    message = str(caught.value)
    assert f"unix://{socket_path}" in message and "[ci_vars] docker_host" in message
    assert "cannot be reached on this worker" in message


def test_sweep_removes_what_a_dead_task_left(docker_client: docker.DockerClient, test_images: object) -> None:
    import socket

    dead = f"{socket.gethostname()} 999999 1"  # no such process
    labels = {JOB_LABEL: "orphan", OWNER_LABEL: dead}
    network = docker_client.networks.create("ci-job-orphan-test", labels=labels)
    container = docker_client.containers.create("busybox:latest", ["sleep", "60"], labels=labels)
    alive = docker_client.containers.create(
        "busybox:latest",
        ["sleep", "60"],
        labels={JOB_LABEL: "other", OWNER_LABEL: f"elsewhere {dead.split(' ', 1)[1]}"},
    )
    try:
        assert sweep_containers(docker_client) >= 2
        ids = {c.id for c in docker_client.containers.list(all=True)}
        assert container.id not in ids  # this host's dead task: removed
        assert alive.id in ids  # another machine's object on a shared daemon: kept
        assert network.id not in {n.id for n in docker_client.networks.list()}
    finally:
        alive.remove(force=True)


def test_an_entrypoint_the_image_lacks_fails_the_job_clearly(
    docker_client: docker.DockerClient, test_images: object
) -> None:
    image = ImageSpec("busybox:latest", entrypoint=("/no/such/entrypoint",))
    outcome, log, _ = run(docker_client, plan(image), ["echo never"])
    assert outcome.exit_code != 0
    assert any("/no/such/entrypoint" in line for line in log), log  # the reason, in the job log
    assert "never" not in log


def test_a_refused_container_fails_with_the_daemons_reason(
    docker_client: docker.DockerClient, test_images: object
) -> None:
    image = ImageSpec("busybox:latest", platform="linux/s390x")  # the local image is for this machine only
    with pytest.raises(ContainerError) as caught:
        run(docker_client, plan(image), ["echo never"])
    assert str(caught.value).startswith("jobs:build: the image 'busybox:latest' could not start: ")


def test_the_worker_s_files_and_docker_socket_are_out_of_reach(
    docker_client: docker.DockerClient, test_images: object, tmp_path: Path
) -> None:
    secret_file = tmp_path / "worker-secret.txt"  # stands for AIRFLOW_HOME, the store, a key on the worker
    secret_file.write_text(SECRET)
    outcome, log, _ = run(
        docker_client,
        plan(),
        [
            f"cat {secret_file} || echo no-worker-file",
            "test -e /var/run/docker.sock && echo socket-visible || echo no-socket",
            "ls /builds; ls /builds/acme/data",
        ],
    )
    assert outcome.exit_code == 0, log
    assert "no-worker-file" in log and "no-socket" in log
    assert not any(SECRET in line for line in log) and "[MASKED]" not in log
    assert "acme" in log and "etl" in log and "etl.tmp" in log  # only this job's workspace is mounted


def test_a_fork_bomb_stops_at_the_process_limit(docker_client: docker.DockerClient, test_images: object) -> None:
    policy = ContainerPolicy(pull_policy="never", pids_limit=32)
    started = time.monotonic()
    outcome, log, _ = run(
        docker_client,
        plan(policy=policy),
        ["i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); done; echo all-forked"],
    )
    assert outcome.exit_code != 0, log  # fork fails past the limit: the script stops there
    assert any("can't fork" in line for line in log), log
    assert "all-forked" not in log
    assert time.monotonic() - started < 30  # and nothing waits for the sleepers


def test_memory_past_the_limit_kills_the_job(docker_client: docker.DockerClient, test_images: object) -> None:
    policy = ContainerPolicy(pull_policy="never", memory="64m")
    outcome, log, _ = run(
        docker_client,
        plan(ImageSpec("python:3.11-slim"), policy=policy),
        ["python3 -c 'x = bytearray(512 * 1024 * 1024); print(\"allocated\")'"],
    )
    assert outcome.exit_code == 137, log  # the kernel's OOM killer: SIGKILL
    assert "allocated" not in log
