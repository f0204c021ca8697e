"""Benchmark: the per-job overhead of a container job, against shell jobs and gitlab-ci-local.

Run with ``.venv/bin/python bench/bench_containers.py [--rounds 5]`` (not a test; about 5 minutes
with the default rounds, plus a one-off ``npm install`` of about 4 minutes). It needs a Docker
daemon (``--docker-host``, default ``unix:///tmp/airflow-ci-vars-docker/docker.sock``) that already
holds ``busybox:latest`` and ``python:3.11-slim``: nothing is pulled, no registry is needed.
Not in ``bench/run_all.py`` (``make bench``) for that reason; figures go to docs/benchmarks.md.

Two pipelines, written into a temporary folder (a git repository: gitlab-ci-local needs one),
every job on ``image: busybox:latest``:

- 1 job: ``build`` (stage build), ``echo V=1 > build.env`` with ``artifacts: reports: dotenv:``;
- 5 jobs: the same ``build`` and four jobs of stage test that check ``$V`` is ``1`` (the dotenv
  handoff), one of them on ``python:3.11-slim``.

Each pipeline runs whole, as a fresh process, under three runners:

- **docker**: ``airflow-ci-vars run FILE`` (its default, direct engine) with ``AIRFLOW__CI_VARS__ISOLATION=docker``,
  ``AIRFLOW__CI_VARS__DOCKER_HOST`` and ``AIRFLOW__CI_VARS__DOCKER_PULL_POLICY=never``;
- **shell**: ``airflow-ci-vars run FILE`` with ``AIRFLOW__CI_VARS__ISOLATION=none`` (or
  ``sandbox``, ``--shell-isolation``): the scripts run on the host, ``image:`` ignored;
- **gcl**: gitlab-ci-local 4.60.0 (4.75 needs Node 22, this machine has Node 20) with its Docker
  executor, as ``cd DIR && DOCKER_HOST=<socket> gitlab-ci-local --home DIR/.gcl-home
  --concurrency 1 --pull-policy if-not-present --helper-image airflow-ci-vars-bench/gcl-helper:local
  --no-artifacts-to-source --cleanup --no-color`` (``--cwd`` refuses an absolute path, so the
  process runs in the project folder instead). ``--concurrency 1`` because ``airflow-ci-vars run`` runs
  one job at a time (either engine); ``--gcl-concurrency`` changes it (0: gitlab-ci-local's own default, no limit,
  the four test jobs at once). It is installed with ``npm install gitlab-ci-local@4.60.0`` into
  ``~/.cache/airflow-ci-vars-bench/gcl`` when missing (not part of the project; ``bench/gcl.py``,
  shared with ``bench/bench_run.py``).

Making gitlab-ci-local work offline: with ``--pull-policy if-not-present`` it only runs
``docker image inspect`` and pulls nothing that is present. But it runs a *helper image* (default
``docker.io/firecow/gitlab-ci-local-util``) once per job to ``chown``/``chmod`` the build volume
and again to collect artifacts with ``bash -c 'shopt -s globstar ...; rsync -Ra ...'``, so the
helper needs ``sh``, ``chown``, ``chmod``, ``mkdir``, ``bash`` and ``rsync``. The benchmark builds
``airflow-ci-vars-bench/gcl-helper:local`` when it is missing, with ``docker import`` of a root file
system made of this machine's files: ``/bin/busybox`` (Debian's busybox-static) with a symlink
per applet in ``/bin``, ``/usr/bin/bash`` and ``/usr/bin/rsync`` with the shared libraries
``ldd`` names for them (and the loader). On the host gitlab-ci-local also needs ``git``,
``bash`` and ``rsync``. Without ``--umask`` it also starts one ``docker run --rm IMAGE sh -c id``
per job (its default, kept here).

Timing: one warm-up run of every (runner, pipeline), then ``--rounds`` rounds, each running every
(runner, pipeline) once, the order reversed every other round. A run counts only if it exits 0
and reports every job a success (``JOB: success`` lines of ``airflow-ci-vars run``, ``PASS`` lines
of gitlab-ci-local). A runner whose warm-up fails is dropped and reported with the reason (the
exception line of its output). Reports, per runner, the medians of the 1-job and the 5-job
pipeline, the per-job overhead ``(median 5 jobs - median 1 job) / 4``, and the ratios to gcl.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from gcl import (
    CI_VARS_SUCCESS,
    CLI,
    GCL_BIN,
    GCL_SUCCESS,
    GCL_VERSION,
    Runner,
    ensure_gitlab_ci_local,
    make_project,
    time_pipelines,
)

HELPER_IMAGE = "airflow-ci-vars-bench/gcl-helper:local"
DEFAULT_DOCKER_HOST = "unix:///tmp/airflow-ci-vars-docker/docker.sock"
IMAGES = ("busybox:latest", "python:3.11-slim")

BUILD = """\
stages: [build, test]
default:
  image: busybox:latest
build:
  stage: build
  script:
    - echo V=1 > build.env
  artifacts:
    reports:
      dotenv: build.env
"""
CHECK = """\
{name}:
  stage: test{image}
  script:
    - {script}
"""
SHELL_CHECK = 'test "$V" = 1'
PYTHON_CHECK = """python3 -c 'import os; assert os.environ["V"] == "1"'"""


def pipeline(jobs: int) -> str:
    """The YAML of the ``jobs``-job pipeline: ``build`` then ``jobs - 1`` checks of ``$V``."""
    text = BUILD
    for i in range(1, jobs):
        on_python = i == 2
        text += CHECK.format(
            name=f"check{i}",
            image="\n  image: python:3.11-slim" if on_python else "",
            script=PYTHON_CHECK if on_python else SHELL_CHECK,
        )
    return text


def docker(docker_host: str, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run the ``docker`` CLI against ``docker_host``."""
    env = {**os.environ, "DOCKER_HOST": docker_host}
    return subprocess.run(["docker", *args], input=stdin, env=env, capture_output=True, check=False)


def ensure_helper_image(docker_host: str) -> None:
    """Build the helper image from busybox, bash and rsync of this machine unless it exists."""
    if docker(docker_host, "image", "inspect", HELPER_IMAGE).returncode == 0:
        return
    print(f"building {HELPER_IMAGE} (busybox + bash + rsync of this machine)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        rootfs = Path(tmp) / "root"
        (rootfs / "bin").mkdir(parents=True)
        (rootfs / "tmp").mkdir(mode=0o1777)
        shutil.copy2("/bin/busybox", rootfs / "bin" / "busybox")
        binaries = ["/usr/bin/bash", "/usr/bin/rsync"]
        libraries: set[str] = set()
        for binary in binaries:
            (rootfs / binary.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(binary, rootfs / binary.lstrip("/"))
            ldd = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
            libraries.update(re.findall(r"(/\S+\.so[.\d]*)", ldd))
        for library in libraries:
            target = rootfs / library.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(os.path.realpath(library), target)
        applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True, check=True).stdout
        for applet in applets.split():
            link = rootfs / "bin" / applet
            if not link.exists():
                link.symlink_to("busybox")
        (rootfs / "bin" / "bash").unlink(missing_ok=True)
        (rootfs / "bin" / "bash").symlink_to("/usr/bin/bash")
        tar = subprocess.run(["tar", "-C", str(rootfs), "-c", "."], capture_output=True, check=True).stdout
        made = docker(docker_host, "import", "-", HELPER_IMAGE, stdin=tar)
        if made.returncode != 0:
            raise SystemExit(f"docker import failed: {made.stderr.decode()}")
    check = docker(docker_host, "run", "--rm", HELPER_IMAGE, "bash", "-c", "shopt -s globstar && rsync --version")
    if check.returncode != 0:
        raise SystemExit(f"{HELPER_IMAGE} does not work: {check.stderr.decode()}")


def runners(args: argparse.Namespace) -> list[Runner]:
    """The three runners of the comparison, in table order."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__CI_VARS__")}
    docker_env = {
        **base,
        "AIRFLOW__CI_VARS__ISOLATION": "docker",
        "AIRFLOW__CI_VARS__DOCKER_HOST": args.docker_host,
        "AIRFLOW__CI_VARS__DOCKER_PULL_POLICY": "never",
    }
    shell_env = {**base, "AIRFLOW__CI_VARS__ISOLATION": args.shell_isolation}
    gcl = (
        str(GCL_BIN), "--concurrency", str(args.gcl_concurrency), "--pull-policy", "if-not-present",
        "--helper-image", HELPER_IMAGE, "--no-artifacts-to-source", "--cleanup", "--no-color",
    )  # fmt: skip
    return [
        Runner("docker", (str(CLI), "run"), docker_env, CI_VARS_SUCCESS),
        Runner(f"shell ({args.shell_isolation})", (str(CLI), "run"), shell_env, CI_VARS_SUCCESS),
        Runner(f"gcl {GCL_VERSION}", gcl, {**base, "DOCKER_HOST": args.docker_host}, GCL_SUCCESS, in_folder=True),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds after the warm-up (default 5)")
    parser.add_argument("--docker-host", default=DEFAULT_DOCKER_HOST, help="the daemon (default %(default)s)")
    parser.add_argument(
        "--shell-isolation", choices=("none", "sandbox"), default="none", help="[ci_vars] isolation of the shell runner"
    )
    parser.add_argument(
        "--gcl-concurrency", type=int, default=1, help="gitlab-ci-local's --concurrency (default 1; 0: no limit)"
    )
    args = parser.parse_args()

    missing = [image for image in IMAGES if docker(args.docker_host, "image", "inspect", image).returncode != 0]
    if missing:
        raise SystemExit(f"the daemon at {args.docker_host} lacks {', '.join(missing)}; load them first")
    ensure_gitlab_ci_local()
    ensure_helper_image(args.docker_host)

    sizes = (1, 5)
    with tempfile.TemporaryDirectory() as tmp:
        all_runners = runners(args)
        # One project per (runner, size): a run never sees another runner's state folders.
        files = {
            (r.name, n): make_project(Path(tmp) / f"{i}-{n}", pipeline(n))
            for i, r in enumerate(all_runners)
            for n in sizes
        }
        timings = time_pipelines(all_runners, files, sizes, args.rounds)
        if timings.failures:
            raise SystemExit(timings.failures[0])
        report(all_runners, timings.times, timings.dropped, args.rounds)


def report(
    all_runners: list[Runner], times: dict[tuple[str, int], list[float]], failed: dict[str, str], rounds: int
) -> None:
    """Print the table of medians, per-job overheads and ratios to gitlab-ci-local."""
    medians = {key: statistics.median(values) for key, values in times.items()}
    per_job = {name: (medians[(name, 5)] - medians[(name, 1)]) / 4 for name, n in medians if n == 1}
    gcl = next((r.name for r in all_runners if r.name.startswith("gcl") and r.name in per_job), None)
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (1 min), {os.getloadavg()[2]:.1f} (15 min)")
    print(f"medians of {rounds} rounds; per job = (5 jobs - 1 job) / 4; x gcl = ratio to gitlab-ci-local")
    print(f"{'runner':<16} {'1 job (s)':>10} {'5 jobs (s)':>11} {'per job (s)':>12}", end=" ")
    print(f"{'x gcl 5 jobs':>13} {'x gcl per job':>14}")
    for runner in all_runners:
        name = runner.name
        if name in failed:
            print(f"{name:<16} FAILED: {failed[name]}")
            continue
        ratio_total = f"{medians[(name, 5)] / medians[(gcl, 5)]:.2f}" if gcl else "-"
        ratio_job = f"{per_job[name] / per_job[gcl]:.2f}" if gcl and per_job[gcl] > 0 else "-"
        print(
            f"{name:<16} {medians[(name, 1)]:>10.2f} {medians[(name, 5)]:>11.2f} {per_job[name]:>12.2f} "
            f"{ratio_total:>13} {ratio_job:>14}"
        )
    for (name, n), values in sorted(times.items()):
        print(f"  {name}, {n} job(s): min {min(values):.2f} s, max {max(values):.2f} s")


if __name__ == "__main__":
    main()
