"""Attack: a masked value whose shape makes masker registration quadratic (issue 11).

Who may set a masked variable could stall every job of a project before its first line: 16,000
underscores (gitlab-runner's own large-secret test vector) took 9.3 s to register, ``ab`` x 8,000
7.2 s, a 64 KB periodic value over a minute (Aho-Corasick DFA construction resolves every failure
transition in advance: quadratic for a periodic pattern). Registration -- our masker and the
phrases handed to Airflow's ``mask_secret`` -- is now linear in the total length of the secrets,
and masking a 1 MB log through such a masker stays linear too, one-shot and streamed.

Each scenario runs in a child process under a coarse watchdog: a bound at least 20x above the
time measured on the project's machine (docs/benchmarks.md), which the old code misses by far.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

REGISTER_BOUND_S = 1.0  # measured: at most 25 ms for 64 KB, any shape (old code: 5 s at 16 KB)
MASK_BOUND_S = 30.0  # measured: at most 0.6 s for register + 1 MB one-shot + 1 MB streamed
STARTUP_S = 60.0  # interpreter and Airflow import, outside the measured time

SHAPES = {
    "underscores": "'_' * 65536",
    "ab repeated": "'ab' * 32768",
    "random hex": "random.Random(7).randbytes(32768).hex()",
}

CHILD = """
import json, random, time
from airflow.sdk._shared.secrets_masker.secrets_masker import SecretsMasker
from airflow_ci_vars.masking import Masker
from airflow_ci_vars.operators.mask_registration import airflow_mask_phrases

secret = {shape}
started = time.perf_counter()
masker = Masker([secret])
airflow = SecretsMasker()
airflow.add_mask(airflow_mask_phrases(masker))  # what the operator hands to mask_secret
registered = time.perf_counter() - started
result = {{"register_s": registered, "phrases": len(masker.phrases)}}
if {mask}:
    unit = secret[:4]
    # One long run of the period, separated repetitions, near misses: 1 MB each way.
    log = (unit * (300_000 // len(unit)) + " " + (secret + " x ") * 6 + (secret[:-1] + "!") * 6)
    log = (log * (1_000_000 // len(log) + 1))[:1_000_000]
    one_shot = masker.mask(log)
    stream = masker.stream()
    streamed = "".join(stream.write(log[i : i + 4096]) for i in range(0, len(log), 4096)) + stream.flush()
    result["mask_s"] = time.perf_counter() - started
    result["leaks"] = [secret in one_shot, secret in streamed]
    result["same_clear_text"] = one_shot.replace("[MASKED]", "") == streamed.replace("[MASKED]", "")
print(json.dumps(result))
"""


def run_child(shape: str, *, mask: bool, bound: float) -> dict[str, object]:
    code = textwrap.dedent(CHILD.format(shape=SHAPES[shape], mask=mask))
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=bound + STARTUP_S, check=False
        )
    except subprocess.TimeoutExpired:  # the child is killed by subprocess.run
        pytest.fail(f"{shape}: still running after {bound + STARTUP_S:.0f} s (watchdog)")
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_64_kb_secret_of_any_shape_registers_quickly(shape: str) -> None:
    result = run_child(shape, mask=False, bound=REGISTER_BOUND_S)
    assert result["register_s"] < REGISTER_BOUND_S, result


@pytest.mark.parametrize("shape", ["underscores", "ab repeated"])
def test_a_1_mb_log_through_a_64_kb_periodic_secret_is_masked_quickly(shape: str) -> None:
    result = run_child(shape, mask=True, bound=MASK_BOUND_S)
    assert result["mask_s"] < MASK_BOUND_S, result
    assert result["leaks"] == [False, False]
    assert result["same_clear_text"] is True
