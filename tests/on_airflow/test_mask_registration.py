"""What Airflow's masker is given (by CIJobOperator and `run`): every phrase up to a length, in one call."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk._shared.secrets_masker.secrets_masker import SecretsMasker

from airflow_ci_vars.masking import Masker
from airflow_ci_vars.operators.mask_registration import (
    AIRFLOW_MASK_MAX_LENGTH,
    airflow_mask_phrases,
    register_with_airflow,
)

pytestmark = pytest.mark.airflow

SHORT = "s3cret-Value-01"
LONG = "ab" * 8000  # 16 KB: masked by ours only


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], SecretsMasker]:
    """Calls to ``airflow.sdk.log.mask_secret``, applied to a fresh Airflow masker."""
    import airflow.sdk.log

    calls: list[Any] = []
    airflow_masker = SecretsMasker()

    def mask_secret(secret: Any, name: str | None = None) -> None:
        calls.append(secret)
        airflow_masker.add_mask(secret, name)

    monkeypatch.setattr(airflow.sdk.log, "mask_secret", mask_secret)
    return calls, airflow_masker


def test_phrases_up_to_the_limit_are_registered_in_one_call(registered: tuple[list[Any], SecretsMasker]) -> None:
    calls, airflow_masker = registered
    masker = Masker([SHORT, LONG])
    register_with_airflow(masker)
    assert len(calls) == 1
    assert sorted(calls[0]) == sorted(p for p in masker.phrases if len(p) <= AIRFLOW_MASK_MAX_LENGTH)
    assert SHORT in calls[0] and "czNjcmV0LVZhbHVlLTAx" in calls[0]  # the value and its base64 form
    assert airflow_masker.redact(f"x {SHORT} y") == "x *** y"
    assert LONG not in calls[0]
    assert masker.mask(f"x {LONG} y") == "x [MASKED] y"  # the job log is masked by ours


def test_the_length_limit_is_inclusive() -> None:
    at_limit, over = "a" * AIRFLOW_MASK_MAX_LENGTH, "b" * (AIRFLOW_MASK_MAX_LENGTH + 1)
    phrases = airflow_mask_phrases(Masker([at_limit, over], encoded_forms=False))
    assert phrases == [at_limit]


def test_nothing_to_register_makes_no_call(registered: tuple[list[Any], SecretsMasker]) -> None:
    calls, _ = registered
    register_with_airflow(Masker([LONG], encoded_forms=False))
    register_with_airflow(Masker([]))
    assert calls == []
