"""Benchmark: a pipeline of 20 components from 5 git repositories against the same pipeline with ``include:local``.

Run: ``.venv/bin/python bench/bench_includes.py`` (not a test; about 3 minutes, ``--rounds`` to
change it). It builds, in a temporary folder it removes at the end:

- 5 git repositories (bare remotes reached by ``file://`` URLs, made with the ``git`` CLI), each
  with 4 components (``templates/<name>.yml``: ``spec:inputs`` and ``spec:component``, a hidden
  base job and three jobs, about 50 lines), tagged 1.0.0 and 1.1.0 (1.1.0 adds a job);
- a ``.gitlab-ci.yml`` including the 20 components (``@1.1.0``, ``@1`` and ``@~latest``, all of
  them 1.1.0) with inputs, and three jobs of its own;
- the same pipeline with ``include:local``: the 20 files at 1.1.0 next to it (``spec:component``
  dropped, ``$[[ component.* ]]`` written out), the same inputs. Both load to the same jobs
  (checked before anything is timed).

Every load runs in a fresh Python process, as the dag-processor parses each DAG file: a driver
that imports the package, builds the deployment's ``IncludeSources``, then times
``ParseCache(dir, sources=...).load(path, seed=parse_seed(...))`` (or ``load_pipeline`` without
the parse cache) and prints that time; the benchmark also times the whole process. Scenarios,
each as pairs (git, local) run back to back, the order swapped every pair (this machine's
timings are noisy and bimodal):

- cold: an empty git cache (every remote cloned) and an empty parse cache;
- warm: both caches valid and the refs fetched within ``include_git_refresh``: a parse cache hit
  (the headline: the git pipeline's hit within 1.2x of the local one's);
- warm without the parse cache: ``load_pipeline`` with the git cache valid (files read from the
  mirrors);
- a new tag: 1.2.0 (then 1.3.0, ...) pushed to one repository, whose ``@1`` and ``@~latest``
  components move, loaded with ``include_git_refresh`` 0 so it is noticed: the miss and the
  reload. The local reference is a miss after one included file was edited.

Reports, per scenario, the medians and minimums of the load and of the process, and the git/local
ratios: of each pair (median of the pairwise ratios), of the medians and of the minimums.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROUNDS = 20
PROJECT = "acme/app"
REPOS = {
    "python": ("lint", "test", "build", "publish"),
    "node": ("lint", "test", "bundle", "audit"),
    "docker": ("build", "scan", "push", "sign"),
    "security": ("sast", "secrets", "deps", "license"),
    "deploy": ("review", "staging", "production", "rollback"),
}
STAGES = {"python": "build", "node": "test", "docker": "package", "security": "scan", "deploy": "deploy"}
VERSIONS = ("1.1.0", "1", "~latest")
RELEASE = "1.1.0"  # what every version above resolves to before the first new tag
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}

#: A component at 1.0.0; 1.1.0 adds the ``-report`` job (``REPORT``).
COMPONENT = """\
spec:
  component: [name, version]
  inputs:
    stage:
      default: test
    image:
      default: alpine:3.20
    args:
      default: ""
    allow_failure:
      type: boolean
      default: false
    retries:
      type: number
      default: 1
---
.$[[ component.name ]]-base:
  image: $[[ inputs.image ]]
  retry: $[[ inputs.retries ]]
  variables:
    COMPONENT: $[[ component.name ]]
    COMPONENT_VERSION: $[[ component.version ]]
  before_script:
    - echo "component $[[ component.name ]] $[[ component.version ]]"

$[[ component.name ]]-prepare:
  extends: .$[[ component.name ]]-base
  stage: $[[ inputs.stage ]]
  script:
    - mkdir -p out/$[[ component.name ]]
    - echo prepare $[[ inputs.args ]] > out/$[[ component.name ]]/prepare.txt
  artifacts:
    paths:
      - out/$[[ component.name ]]/
    expire_in: 1 day

$[[ component.name ]]-run:
  extends: .$[[ component.name ]]-base
  stage: $[[ inputs.stage ]]
  needs:
    - $[[ component.name ]]-prepare
  allow_failure: $[[ inputs.allow_failure ]]
  script:
    - cat out/$[[ component.name ]]/prepare.txt
    - echo run $[[ inputs.args ]]
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
      when: never
    - when: on_success
"""
REPORT = """
$[[ component.name ]]-report:
  extends: .$[[ component.name ]]-base
  stage: $[[ inputs.stage ]]
  needs:
    - $[[ component.name ]]-run
  script:
    - echo report $[[ component.name ]] done
  when: always
"""

#: Runs in a fresh interpreter: argv[1] is the JSON configuration; prints the load's times.
DRIVER = """\
import hashlib, json, sys, time
from pathlib import Path

from airflow_ci_vars.pipeline.cache import ParseCache
from airflow_ci_vars.pipeline.external.sources import GitProject, IncludeSources
from airflow_ci_vars.pipeline.loader import load_pipeline
from airflow_ci_vars.pipeline.seed import parse_seed

config = json.loads(sys.argv[1])
sources = IncludeSources(
    projects={path: GitProject(path, url) for path, url in config["projects"].items()},
    cache_dir=config["git_cache"],
    git_refresh=config["git_refresh"],
)
seed = parse_seed(config["project"])
wall, cpu = time.perf_counter(), time.process_time()
if config["parse_cache"]:
    pipeline = ParseCache(Path(config["parse_cache"]), sources=sources).load(config["path"], seed=seed)
else:
    pipeline = load_pipeline(config["path"], seed=seed, sources=sources)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
shape = repr([(job.name, job.stage_index, job.spec) for job in pipeline.jobs]).encode()
print(json.dumps({"load": wall, "cpu": cpu, "jobs": len(pipeline.jobs), "digest": hashlib.sha256(shape).hexdigest()}))
"""


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout


def component_names() -> list[tuple[str, str]]:
    """(repository, component name) of the 20 components."""
    return [(repo, f"{repo}-{kind}") for repo, kinds in REPOS.items() for kind in kinds]


def make_repositories(root: Path) -> dict[str, Path]:
    """The 5 work repositories pushed to bare remotes; returns project path -> work repository."""
    work: dict[str, Path] = {}
    for repo, kinds in REPOS.items():
        clone, remote = root / "work" / repo, root / "remotes" / f"{repo}.git"
        clone.mkdir(parents=True)
        remote.mkdir(parents=True)
        git(remote, "init", "--bare", "--quiet", "--initial-branch=main")
        git(clone, "init", "--quiet", "--initial-branch=main")
        git(clone, "remote", "add", "origin", str(remote))
        for release, text in (("1.0.0", COMPONENT), ("1.1.0", COMPONENT + REPORT)):
            for kind in kinds:
                path = clone / "templates" / f"{repo}-{kind}.yml"
                path.parent.mkdir(exist_ok=True)
                path.write_text(text)
            (clone / "README.md").write_text(f"# {repo} components {release}\n")
            git(clone, "add", "-A")
            git(clone, "commit", "--quiet", "-m", f"release {release}")
            git(clone, "tag", release)
        git(clone, "push", "--quiet", "origin", "main", "--tags")
        work[f"acme/{repo}"] = clone
    return work


def remote_urls(root: Path) -> dict[str, str]:
    return {f"acme/{repo}": f"file://{root / 'remotes' / repo}.git" for repo in REPOS}


def inputs_of(index: int, repo: str) -> str:
    extra = ", allow_failure: true" if index % 4 == 3 else ""
    return f"{{stage: {STAGES[repo]}, image: 'registry.example.com/{repo}:{index}', args: '--job {index}'{extra}}}"


def own_jobs() -> str:
    return textwrap.dedent(
        """\
        version:
          stage: build
          script: [echo $CI_COMMIT_SHORT_SHA > VERSION]
          artifacts: {paths: [VERSION]}
        integration:
          stage: test
          needs: [version, python-test-run, node-test-run]
          script: [make integration]
        release:
          stage: deploy
          needs: [docker-push-report, security-sast-report]
          script: [echo release $(cat VERSION)]
          rules:
            - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
        """
    )


def header() -> str:
    stages = ", ".join(dict.fromkeys(["build", "test", "package", "scan", "deploy"]))
    return f"stages: [{stages}]\nvariables:\n  GLOBAL_FLAG: 'on'\ninclude:\n"


def write_git_pipeline(folder: Path) -> Path:
    folder.mkdir(parents=True)
    lines = [header()]
    for index, (repo, name) in enumerate(component_names()):
        version = VERSIONS[index % len(VERSIONS)]
        lines.append(
            f"  - component: $CI_SERVER_FQDN/acme/{repo}/{name}@{version}\n    inputs: {inputs_of(index, repo)}\n"
        )
    path = folder / ".gitlab-ci.yml"
    path.write_text("".join(lines) + own_jobs())
    return path


def write_local_pipeline(folder: Path) -> Path:
    (folder / "ci").mkdir(parents=True)
    lines = [header()]
    for index, (repo, name) in enumerate(component_names()):
        text = (COMPONENT + REPORT).replace("  component: [name, version]\n", "")
        text = text.replace("$[[ component.name ]]", name).replace("$[[ component.version ]]", RELEASE)
        (folder / "ci" / f"{name}.yml").write_text(text)
        lines.append(f"  - local: ci/{name}.yml\n    inputs: {inputs_of(index, repo)}\n")
    path = folder / ".gitlab-ci.yml"
    path.write_text("".join(lines) + own_jobs())
    return path


@dataclass(frozen=True, slots=True)
class Sample:
    load: float  # seconds, wall time of the load in the process
    cpu: float  # seconds, the process's CPU time during the load (git child processes not counted)
    process: float  # seconds, wall time of the whole process
    jobs: int
    digest: str


@dataclass(frozen=True, slots=True)
class Variant:
    """One side of a pair: what to do untimed before each run, and the driver's configuration."""

    label: str
    before: Callable[[int], dict[str, object]]


def child_environment(root: Path) -> dict[str, str]:
    """The drivers' environment: with bytecode, as an installed package has (``pip`` compiles it), kept
    under ``root`` (``PYTHONPYCACHEPREFIX``) so that nothing is written next to the sources."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    return env


def run_driver(driver: Path, config: dict[str, object]) -> Sample:
    started = time.perf_counter()
    env = child_environment(driver.parent)
    done = subprocess.run([sys.executable, str(driver), json.dumps(config)], capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"driver failed: {done.stderr.strip()[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return Sample(out["load"], out["cpu"], elapsed, out["jobs"], out["digest"])


def pairs(driver: Path, git: Variant, local: Variant, rounds: int) -> tuple[list[Sample], list[Sample]]:
    """``rounds`` pairs (git, local) back to back, the order swapped every pair, after one pair not counted."""
    out: dict[str, list[Sample]] = {git.label: [], local.label: []}
    for index in range(rounds + 1):
        order = (git, local) if index % 2 == 0 else (local, git)
        for variant in order:
            config = variant.before(index)
            sample = run_driver(driver, config)
            if index:
                out[variant.label].append(sample)
    return out[git.label], out[local.label]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def report(name: str, git_samples: list[Sample], local_samples: list[Sample]) -> None:
    def stats(samples: list[Sample], attribute: str) -> tuple[float, float]:
        values = [getattr(s, attribute) for s in samples]
        return statistics.median(values), min(values)

    for label, samples in (("git", git_samples), ("local", local_samples)):
        load_median, load_min = stats(samples, "load")
        cpu_median, _ = stats(samples, "cpu")
        process_median, process_min = stats(samples, "process")
        print(
            f"{name:<22} {label:<6} {ms(load_median):>10} {ms(load_min):>9} {ms(cpu_median):>9} "
            f"{ms(process_median):>12} {ms(process_min):>11}"
        )
    pairwise = [g.load / max(loc.load, 1e-9) for g, loc in zip(git_samples, local_samples, strict=True)]
    of_medians = statistics.median(s.load for s in git_samples) / statistics.median(s.load for s in local_samples)
    of_mins = min(s.load for s in git_samples) / min(s.load for s in local_samples)
    process_pairwise = [g.process / loc.process for g, loc in zip(git_samples, local_samples, strict=True)]
    print(
        f"{'':<22} {'ratio':<6} load git/local: pairwise median {statistics.median(pairwise):.2f}x "
        f"(range {min(pairwise):.2f}-{max(pairwise):.2f}), of medians {of_medians:.2f}x, of minimums "
        f"{of_mins:.2f}x; process pairwise median {statistics.median(process_pairwise):.2f}x",
        flush=True,
    )


def check_same_pipeline(git_path: Path, local_path: Path, projects: dict[str, str], cache: Path) -> int:
    """Both pipelines load to the same jobs (names, stages, scripts, variables...); returns the job count."""
    from airflow_ci_vars.pipeline.external.sources import GitProject, IncludeSources
    from airflow_ci_vars.pipeline.loader import load_pipeline
    from airflow_ci_vars.pipeline.seed import parse_seed

    sources = IncludeSources(
        projects={path: GitProject(path, url) for path, url in projects.items()}, cache_dir=str(cache)
    )
    seed = parse_seed(PROJECT)
    from_git = load_pipeline(git_path, seed=seed, sources=sources)
    from_local = load_pipeline(local_path, seed=seed, sources=sources)
    shape = [(j.name, j.stage_index, j.spec) for j in from_git.jobs]
    assert shape == [(j.name, j.stage_index, j.spec) for j in from_local.jobs], "the two pipelines differ"
    assert len(from_git.jobs) == 3 * 20 + 3, len(from_git.jobs)
    return len(from_git.jobs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"pairs per scenario (default {ROUNDS})")
    args = parser.parse_args()
    rounds = args.rounds

    with tempfile.TemporaryDirectory(prefix="bench-includes-") as tmp:
        root = Path(tmp)
        work = make_repositories(root)
        projects = remote_urls(root)
        git_path = write_git_pipeline(root / "app-git")
        local_path = write_local_pipeline(root / "app-local")
        driver = root / "driver.py"
        driver.write_text(DRIVER)
        jobs = check_same_pipeline(git_path, local_path, projects, root / "check-cache")
        fresh = iter(range(1_000_000))

        def config(path: Path, parse_cache: Path | None, git_cache: Path, refresh: float) -> dict[str, object]:
            return {
                "path": str(path),
                "project": PROJECT,
                "projects": projects,
                "parse_cache": str(parse_cache) if parse_cache else None,
                "git_cache": str(git_cache),
                "git_refresh": refresh,
            }

        def scratch() -> Path:
            """A new empty directory; the previous cold runs' are removed (untimed)."""
            for old in root.glob("cold-*"):
                shutil.rmtree(old)
            return root / f"cold-{next(fresh)}"

        hour = 3600.0
        print(
            f"{jobs} jobs; 20 components from 5 git repositories (git) against 20 include:local files (local); "
            f"{rounds} pairs per scenario, each load in a fresh process"
        )
        print("load: wall time of ParseCache.load / load_pipeline in the process; cpu: its CPU time (not git's);")
        print("process: wall time of the whole process (interpreter, imports, sources, load). Times in ms.")
        print(
            f"{'scenario':<22} {'':<6} {'load med':>10} {'load min':>9} {'cpu med':>9} "
            f"{'process med':>12} {'process min':>11}"
        )

        # cold: empty git cache (clones) and empty parse cache
        cold_git = Variant("git", lambda _i: config(git_path, scratch() / "parse", scratch() / "git", hour))
        cold_local = Variant("local", lambda _i: config(local_path, scratch() / "parse", root / "unused", hour))
        report("cold", *pairs(driver, cold_git, cold_local, rounds))

        # warm: both caches valid, refs fetched within git_refresh: a parse cache hit
        git_cache, git_parse, local_parse = root / "git-cache", root / "parse-git", root / "parse-local"
        first_git = run_driver(driver, config(git_path, git_parse, git_cache, hour))
        first_local = run_driver(driver, config(local_path, local_parse, git_cache, hour))
        assert first_git.digest == first_local.digest and first_git.jobs == jobs
        entries = sorted(git_parse.glob("*.pickle")) + sorted(local_parse.glob("*.pickle"))
        stamps = [(p.stat().st_ino, p.stat().st_mtime_ns) for p in entries]
        warm_git = Variant("git", lambda _i: config(git_path, git_parse, git_cache, hour))
        warm_local = Variant("local", lambda _i: config(local_path, local_parse, git_cache, hour))
        report("warm (parse cache hit)", *pairs(driver, warm_git, warm_local, rounds))
        assert stamps == [(p.stat().st_ino, p.stat().st_mtime_ns) for p in entries], "a warm run missed the cache"

        # warm without the parse cache: load_pipeline, the git cache valid
        direct_git = Variant("git", lambda _i: config(git_path, None, git_cache, hour))
        direct_local = Variant("local", lambda _i: config(local_path, None, git_cache, hour))
        report("warm, no parse cache", *pairs(driver, direct_git, direct_local, rounds))

        # a new tag on one repository, noticed with git_refresh 0: the miss and the reload
        repo = next(iter(REPOS))
        clone = work[f"acme/{repo}"]
        digests: list[str] = [first_git.digest]

        def new_tag(index: int) -> dict[str, object]:
            release = f"1.{index + 2}.0"
            template = clone / "templates" / f"{repo}-{REPOS[repo][0]}.yml"
            template.write_text(template.read_text() + f"# release {release}\n")
            git(clone, "commit", "--quiet", "-am", f"release {release}")
            git(clone, "tag", release)
            git(clone, "push", "--quiet", "origin", "main", release)
            return config(git_path, git_parse, git_cache, 0.0)

        def edited(index: int) -> dict[str, object]:
            path = local_path.parent / "ci" / f"{repo}-{REPOS[repo][0]}.yml"
            path.write_text(path.read_text() + f"# edit {index}\n")
            return config(local_path, local_parse, git_cache, 0.0)

        tag_samples = pairs(driver, Variant("git", new_tag), Variant("local", edited), rounds)
        for sample in tag_samples[0]:  # every new tag moved @1 and @~latest: a new pipeline each time
            assert sample.digest not in digests, "a new tag did not change the pipeline"
            digests.append(sample.digest)
        report("new tag (miss+reload)", *tag_samples)
        print("(new tag, local: the miss after one included file was edited, and the reload)")


if __name__ == "__main__":
    main()
