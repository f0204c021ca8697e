"""Benchmark: airflow_ci_vars.masking.Masker against Airflow's own SecretsMasker.

Run with ``python bench/bench_masking.py`` (not a test). For 10, 100 and 1,000 random secrets of
16-32 characters it measures

* registration time: our ``Masker(secrets)`` (one automaton build) against Airflow's
  ``add_mask(secret)`` called once per secret (it recompiles one regex alternation each time);
* masking throughput (MB/s) on ~1 MB of log text (Airflow gets a 100 KB slice: its regex
  alternation is slow with many secrets), one-shot and, for ours, streamed in 4 KiB chunks.

"ours (plain)" masks the secrets only, like Airflow; "ours (full)" also masks URL/base64 forms and
runs gitlab-runner's URL-parameter and token-prefix sanitizers.

Then, for one secret of 1, 16 and 64 KB, periodic (``_`` repeated, ``ab`` repeated) and random
(issue 11), the whole registration as the operator does it -- ``Masker([secret])`` plus Airflow's
``add_mask`` of the phrases it is handed -- against the same with the old implementation (commit
``OLD_COMMIT``'s masking.py loaded into a temporary module, every phrase handed to Airflow one
call at a time), in the same run; and masking a 1 MB log through the periodic secrets.
"""

from __future__ import annotations

import importlib.util
import random
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from airflow_ci_vars.masking import Masker

ROOT = Path(__file__).resolve().parent.parent
OLD_COMMIT = "1c207a0"
SHAPE_SIZES = (1024, 16 * 1024, 64 * 1024)
OLD_SKIP_AFTER_S = 1.0  # the old code is not run on a larger secret of a shape that took longer

SIZES = (10, 100, 1000)
TEXT_BYTES = 1_000_000
AIRFLOW_TEXT_BYTES = 100_000
CHUNK = 4096
SEED = 20240611


def load_airflow_masker() -> Callable[[], object] | None:
    """Return Airflow's SecretsMasker class (whichever path this Airflow version uses)."""
    try:
        from airflow.sdk._shared.secrets_masker.secrets_masker import SecretsMasker
    except ImportError:
        try:
            from airflow._shared.secrets_masker.secrets_masker import SecretsMasker
        except ImportError:
            return None
    return SecretsMasker  # type: ignore[no-any-return]


def make_secrets(rng: random.Random, n: int) -> list[str]:
    alphabet = string.ascii_letters + string.digits
    return ["".join(rng.choices(alphabet, k=rng.randint(16, 32))) for _ in range(n)]


def make_log(rng: random.Random, secrets: list[str], size: int) -> str:
    """Lines of random words; about one line in 20 leaks a secret."""
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 10))) for _ in range(3000)]
    words += ["INFO", "DEBUG", "-", "|", "http://example.com/api?page=2&per_page=100", "==>"]
    lines: list[str] = []
    total = 0
    while total < size:
        line = " ".join(rng.choices(words, k=rng.randint(5, 16)))
        if rng.random() < 0.05:
            line += f" password={rng.choice(secrets)}"
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines) + "\n"


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def stream_all(masker: Masker, text: str) -> str:
    stream = masker.stream()
    out = [stream.write(text[i : i + CHUNK]) for i in range(0, len(text), CHUNK)]
    out.append(stream.flush())
    return "".join(out)


def mbps(size: int, seconds: float) -> float:
    return size / 1e6 / seconds if seconds > 0 else float("inf")


def load_old_masking() -> Any | None:
    """The masking module of ``OLD_COMMIT``, loaded from git into a temporary module."""
    try:
        source = subprocess.run(
            ["git", "show", f"{OLD_COMMIT}:airflow_ci_vars/masking.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write(source)
    spec = importlib.util.spec_from_file_location("old_masking", fh.name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    Path(fh.name).unlink()
    return module


def make_shape(shape: str, size: int) -> str:
    if shape == "_":
        return "_" * size
    if shape == "ab":
        return "ab" * (size // 2)
    return random.Random(size).randbytes(size // 2).hex()


def register_new(secret: str, airflow_cls: Callable[[], Any] | None) -> float:
    """``Masker`` plus what the operator hands to Airflow (``mask_registration.register_with_airflow``) (one call)."""
    from airflow_ci_vars.operators.mask_registration import airflow_mask_phrases

    start = time.perf_counter()
    masker = Masker([secret])
    if airflow_cls is not None:
        airflow_cls().add_mask(airflow_mask_phrases(masker))
    return time.perf_counter() - start


def register_old(old: Any, secret: str, airflow_cls: Callable[[], Any] | None) -> float:
    """The old ``Masker`` plus the old operator's ``mask_secret`` of every phrase, one at a time."""
    start = time.perf_counter()
    masker = old.Masker([secret])
    if airflow_cls is not None:
        airflow = airflow_cls()
        for phrase in masker.phrases:
            airflow.add_mask(phrase)
    return time.perf_counter() - start


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "not run"
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def shapes_section(airflow_cls: Callable[[], Any] | None) -> None:
    """Registration of one 1/16/64 KB secret by shape, and a 1 MB log through periodic ones."""
    old = load_old_masking()
    if old is None:
        print(f"\n(git show {OLD_COMMIT} failed: the old implementation is not measured)")
    print("\nOne secret by shape: whole registration (ours + Airflow's add_mask)")
    rows: list[tuple[str, ...]] = []
    slow: set[str] = set()
    for shape in ("_", "ab", "random"):
        for size in SHAPE_SIZES:
            secret = make_shape(shape, size)
            new = best_of(lambda s=secret: register_new(s, airflow_cls), 3)
            ours = best_of(lambda s=secret: Masker([s]), 3)
            before: float | None = None
            if old is not None and shape not in slow:
                before = register_old(old, secret, airflow_cls)
                if before > OLD_SKIP_AFTER_S:
                    slow.add(shape)
            ratio = f"{before / new:.0f}x" if before is not None else "-"
            label = "random hex" if shape == "random" else f"'{shape}' x {size // len(shape)}"
            rows.append((label, f"{size // 1024} KB", fmt_s(ours), fmt_s(new), fmt_s(before), ratio))
            print(f"... {label} done", file=sys.stderr)
    print_table(("secret", "size", "ours only", "new, whole", "old, whole", "old / new"), rows)

    print("\nA 1 MB log through one periodic secret (one long run, separated copies, near misses)")
    rows = []
    for shape in ("_", "ab"):
        for size in SHAPE_SIZES[1:]:
            secret = make_shape(shape, size)
            unit = secret[:4]
            log = unit * (300_000 // len(unit)) + " " + (secret + " x ") * 6 + (secret[:-1] + "!") * 6
            log = (log * (TEXT_BYTES // len(log) + 1))[:TEXT_BYTES]
            masker = Masker([secret])
            one = best_of(lambda m=masker, t=log: m.mask(t), 3)
            streamed = best_of(lambda m=masker, t=log: stream_all(m, t), 3)
            before: float | None = None
            if old is not None and size <= 16 * 1024:  # the old registration of 64 KB: over a minute
                old_masker = old.Masker([secret])
                before = best_of(lambda m=old_masker, t=log: stream_all(m, t), 1)
            label = f"'{shape}' x {size // len(shape)}"
            rows.append((label, fmt_s(one), fmt_s(streamed), fmt_s(before)))
            print(f"... 1 MB through {label} done", file=sys.stderr)
    print_table(("secret", "new one-shot", "new streamed 4 KiB", "old streamed 4 KiB"), rows)


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print(" | ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


def main() -> None:
    rng = random.Random(SEED)
    secrets_masker_cls = load_airflow_masker()
    if secrets_masker_cls is None:
        print("Airflow SecretsMasker not importable: only our figures are shown.")
    rows: list[tuple[str, ...]] = []
    started = time.perf_counter()
    for n in SIZES:
        secrets = make_secrets(rng, n)
        text = make_log(rng, secrets, TEXT_BYTES)
        small = text[:AIRFLOW_TEXT_BYTES]
        size, small_size = len(text.encode()), len(small.encode())

        reg_full = best_of(lambda s=secrets: Masker(s), 3)
        reg_plain = best_of(lambda s=secrets: Masker(s, encoded_forms=False, sanitize=False), 3)
        full = Masker(secrets)
        plain = Masker(secrets, encoded_forms=False, sanitize=False, replacement="***")
        t_full = best_of(lambda m=full, t=text: m.mask(t), 3)
        t_plain = best_of(lambda m=plain, t=text: m.mask(t), 3)
        t_stream = best_of(lambda m=full, t=text: stream_all(m, t), 3)
        assert stream_all(full, text) == full.mask(text)

        reg_af = t_af = float("nan")
        agree = "-"
        if secrets_masker_cls is not None:
            af = secrets_masker_cls()
            start = time.perf_counter()
            for secret in secrets:
                af.add_mask(secret)  # type: ignore[attr-defined]
            reg_af = time.perf_counter() - start
            t_af = best_of(lambda a=af, t=small: a.redact(t), 1 if n >= 1000 else 2)  # type: ignore[attr-defined]
            agree = "yes" if af.redact(small) == plain.mask(small) else "NO"  # type: ignore[attr-defined]

        tp_af = mbps(small_size, t_af)
        rows.append(
            (
                f"{n}",
                f"{reg_plain * 1e3:.2f}",
                f"{reg_full * 1e3:.2f}",
                f"{reg_af * 1e3:.1f}",
                f"{reg_af / reg_plain:.0f}x",
                f"{mbps(size, t_plain):.1f}",
                f"{mbps(size, t_full):.1f}",
                f"{mbps(size, t_stream):.1f}",
                f"{tp_af:.2f}",
                f"{mbps(size, t_plain) / tp_af:.0f}x",
                agree,
            )
        )
        print(f"... {n} secrets done ({time.perf_counter() - started:.1f} s)", file=sys.stderr)

    header = (
        "secrets",
        "reg ours plain ms",
        "reg ours full ms",
        "reg airflow ms",
        "reg airflow/ours",
        "MB/s ours plain",
        "MB/s ours full",
        "MB/s ours stream 4KiB",
        "MB/s airflow",
        "MB/s ours/airflow",
        "same output",
    )
    print_table(header, rows)
    print(
        f"\nText: {TEXT_BYTES / 1e6:.1f} MB for ours, {AIRFLOW_TEXT_BYTES / 1e3:.0f} KB for Airflow; "
        "'plain' = phrases only (Airflow's scope), 'full' = + encoded forms + sanitizers; "
        "ratios compare ours plain with Airflow. Total "
        f"{time.perf_counter() - started:.1f} s."
    )
    shapes_section(secrets_masker_cls)


if __name__ == "__main__":
    main()
