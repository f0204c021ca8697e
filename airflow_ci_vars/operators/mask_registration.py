"""What Airflow's own masker (``airflow.sdk.log.mask_secret``) is given of our masker's phrases.

One rule for both callers: the operator, once a job's variables are resolved, and
``airflow-ci-vars run``, before the run starts (every masked value of the settings file). Our
masker (``masking.Masker``) masks all job output; Airflow's masks Airflow's own log records.
"""

from __future__ import annotations

from typing import Any

from airflow_ci_vars.masking import Masker

__all__ = ["AIRFLOW_MASK_MAX_LENGTH", "airflow_mask_phrases", "register_with_airflow"]

AIRFLOW_MASK_MAX_LENGTH = 1024
"""Longest phrase also registered with Airflow's own masker (``airflow.sdk.log.mask_secret``).

Airflow masks with one Python regular expression, recompiled at every registration (about 2-5 us
per character of every phrase) and tried at every position of every log line: a periodic phrase
of length m costs up to m character comparisons per position on near-misses (16,000 ``_`` against
a line of 15,999: 0.18 s). Longer phrases are masked by our masker only, which sees all job
output; the operator's own messages and exceptions never hold a value.
"""


def airflow_mask_phrases(masker: Masker) -> list[str]:
    """The phrases of ``masker`` handed to Airflow's masker: those of at most ``AIRFLOW_MASK_MAX_LENGTH``."""
    return [phrase for phrase in masker.phrases if len(phrase) <= AIRFLOW_MASK_MAX_LENGTH]


def register_with_airflow(masker: Masker) -> None:
    """Give Airflow's ``mask_secret`` the phrases of ``airflow_mask_phrases`` in one call (one
    message to the supervisor); nothing when there are none."""
    from airflow.sdk.log import mask_secret

    phrases: list[Any] = list(airflow_mask_phrases(masker))  # JsonValue's list is list[JsonValue]
    if phrases:
        mask_secret(phrases)
