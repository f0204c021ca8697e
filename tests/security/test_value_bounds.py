"""Misuse: inputs that made a component use unbounded memory or time (issue 11, "Bounded work").

- a 340-byte REST conf of nested variables (``A1=$A0$A0``, ``A2=$A1$A1``...) drove a task to 3 GB;
- ``rules: - if: $V =~ /^(a+)+$/`` took 55 s on a 31-character value (Python's backtracking ``re``);
- a 10 MB variable value failed the job with a raw ``OSError`` (``E2BIG``) from ``execve``.

Each attack runs in a child process under an address-space limit (``RLIMIT_AS``) and a timeout:
coarse watchdogs, so that a regression fails the test instead of exhausting the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CLI = Path(sys.executable).parent / "airflow-ci-vars"
WATCHDOG = textwrap.dedent(
    """
    import json, resource, sys
    limit = 1 << 30  # 1 GiB of address space: the attacks asked for gigabytes or minutes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    """
)


def bounded(code: str, timeout: float = 60) -> dict[str, object]:
    """Run ``code`` (which prints one JSON object) in a child with 1 GiB of address space."""
    proc = subprocess.run(
        [sys.executable, "-c", WATCHDOG + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, object] = json.loads(proc.stdout.splitlines()[-1])
    return result


def nested_conf(levels: int) -> dict[str, str]:
    """The attack's conf: each level doubles the one below (``A40`` would be 10 TiB)."""
    return {"A0": "x" * 10, **{f"A{i}": f"$A{i - 1}$A{i - 1}" for i in range(1, levels + 1)}}


def test_nested_conf_is_refused_naming_the_variable_in_bounded_memory() -> None:
    conf = nested_conf(40)
    assert len(json.dumps(conf)) < 800
    result = bounded(
        f"""
        from airflow_ci_vars.errors import ExpansionError
        from airflow_ci_vars.variables.expansion import sort_and_expand
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            sort_and_expand({conf!r})
        except ExpansionError as err:
            grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
            print(json.dumps({{"message": err.message, "key": err.key, "limit": err.limit, "grown_kib": grown}}))
        """
    )
    # 1 MiB is reached at A17 (10 * 2**17 characters): refused there, before building it.
    assert result["key"] == "A17" and result["limit"] == 1 << 20
    assert str(result["message"]).startswith("variable A17: its expanded value would exceed 1048576 characters")
    assert "xxxxxxxxxx" not in str(result["message"])  # never a value
    assert int(str(result["grown_kib"])) < 500 * 1024


def test_nested_conf_through_a_job_resolution_fails_with_the_key() -> None:
    result = bounded(
        f"""
        from airflow_ci_vars.errors import ExpansionError
        from airflow_ci_vars.variables import RunContext, VariableLayers, resolve
        try:
            resolve(VariableLayers(pipeline={nested_conf(60)!r}), RunContext(job_name="build"))
        except ExpansionError as err:
            print(json.dumps({{"key": err.key}}))
        """
    )
    assert result == {"key": "A17"}


def test_catastrophic_rules_if_regex_is_linear() -> None:
    # Python's re would need about 2**40 steps on this value: hours. RE2: microseconds.
    result = bounded(
        """
        from airflow_ci_vars.pipeline.expressions import evaluate_rules
        value = "a" * 40 + "!"
        rules = [{"if": "$V =~ /^(a+)+$/"}, {"if": "$V !~ /^(a+)+$/", "when": "manual"}]
        outcome = evaluate_rules(rules, {"V": value})
        long = evaluate_rules(rules, {"V": "a" * 100_000 + "!"})
        print(json.dumps({"when": outcome.when, "rule": outcome.rule_index, "long": long.rule_index}))
        """,
        timeout=30,
    )
    assert result == {"when": "manual", "rule": 1, "long": 1}


def test_catastrophic_input_regex_and_wildcards_are_linear() -> None:
    result = bounded(
        """
        from airflow_ci_vars.pipeline.inputs import compile_input_regex
        from airflow_ci_vars.variables.scopes import matches_environment_scope
        pattern = compile_input_regex("^(a|aa)+$")
        scope = "*a" * 30 + "*b"  # .*?a.*?a... backtracks polynomially in Python's re
        print(json.dumps({
            "input": pattern.search("a" * 5000 + "!"),
            "scope": matches_environment_scope(scope, "a" * 5000),
        }))
        """,
        timeout=30,
    )
    assert result == {"input": False, "scope": False}


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """``airflow-ci-vars run``: the real operator through ``dag.test()``, in its own AIRFLOW_HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["AIRFLOW_HOME"] = str(home)
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home}/airflow.db"
    return subprocess.run([str(CLI), "run", *args], capture_output=True, text=True, env=env, timeout=600, check=False)


PIPELINE = "job:\n  script:\n    - echo started\n"


@pytest.mark.airflow
def test_a_10_mb_value_fails_the_job_with_the_key_not_an_oserror(tmp_path: Path) -> None:
    big = "s3cr3t-" + "y" * 10_000_000  # BIG=VALUE and its NUL: 10,000,012 bytes
    (tmp_path / ".gitlab-ci.yml").write_text(PIPELINE)
    settings = tmp_path / "settings.yml"
    settings.write_text(
        json.dumps({"project": "acme/big", "projects": {"acme/big": {"variables": [{"key": "BIG", "value": big}]}}})
    )
    proc = run_cli(str(tmp_path / ".gitlab-ci.yml"), "--settings", str(settings), home=tmp_path / "home")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output[-3000:]
    assert "job: job environment too large: BIG (10000012 bytes) over Linux's limit of 131072 bytes" in output
    assert "use a file-type variable" in output
    assert "started" not in proc.stdout and "OSError" not in output and "Argument list too long" not in output
    assert "s3cr3t-" not in output


@pytest.mark.airflow
def test_a_nested_conf_fails_the_run_with_the_key(tmp_path: Path) -> None:
    (tmp_path / ".gitlab-ci.yml").write_text(PIPELINE)
    conf = [f"--variable={key}={value}" for key, value in nested_conf(40).items()]
    proc = run_cli(str(tmp_path / ".gitlab-ci.yml"), *conf, home=tmp_path / "home")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output[-3000:]
    assert "variable A17: its expanded value would exceed 1048576 characters" in output
    assert "started" not in proc.stdout
