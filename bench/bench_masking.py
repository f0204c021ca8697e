"""Benchmark: airflow_ci_vars.masking.Masker against Airflow's own SecretsMasker.

Run with ``python bench/bench_masking.py`` (not a test). For 10, 100 and 1,000 random secrets of
16-32 characters it measures

* registration time: our ``Masker(secrets)`` (one automaton build) against Airflow's
  ``add_mask(secret)`` called once per secret (it recompiles one regex alternation each time);
* masking throughput (MB/s) on ~1 MB of log text (Airflow gets a 100 KB slice: its regex
  alternation is slow with many secrets), one-shot and, for ours, streamed in 4 KiB chunks.

"ours (plain)" masks the secrets only, like Airflow; "ours (full)" also masks URL/base64 forms and
runs gitlab-runner's URL-parameter and token-prefix sanitizers.
"""

from __future__ import annotations

import random
import string
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from airflow_ci_vars.masking import Masker

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
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print(" | ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
    print(
        f"\nText: {TEXT_BYTES / 1e6:.1f} MB for ours, {AIRFLOW_TEXT_BYTES / 1e3:.0f} KB for Airflow; "
        "'plain' = phrases only (Airflow's scope), 'full' = + encoded forms + sanitizers; "
        "ratios compare ours plain with Airflow. Total "
        f"{time.perf_counter() - started:.1f} s."
    )


if __name__ == "__main__":
    main()
