"""The masked value of the stack tests, the forms of it that must never appear, and log helpers."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

DAGS = Path(__file__).parent / "dags"
KEY = "ACME_CREDENTIAL"
_VARIABLES = yaml.safe_load((DAGS / "stack_settings.yml").read_text())["projects"]["acme/stack"]["variables"]
SECRET: str = next(v["value"] for v in _VARIABLES if v["key"] == KEY)
PLAIN: str = next(v["value"] for v in _VARIABLES if v["key"] == "PLAIN_VALUE")
B64 = base64.b64encode(SECRET.encode()).decode()
FORBIDDEN: dict[str, str] = {
    "secret": SECRET,
    "secret after its first 4 characters (second write of the split print)": SECRET[4:],
    "url-encoded": quote(SECRET, safe=""),
    "base64": B64,
    "base64 without padding": B64.rstrip("="),
    "urlsafe base64": base64.urlsafe_b64encode(SECRET.encode()).decode(),
}


def assert_no_secret(text: str, where: str) -> None:
    """Fail if ``text`` holds the secret in any of its :data:`FORBIDDEN` forms."""
    for form, value in FORBIDDEN.items():
        assert value not in text, f"{where} holds the {form} of {KEY}"


def log_events(text: str) -> list[dict[str, Any]]:
    """A task log file's structured lines (one JSON object each)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def messages(text: str) -> list[str]:
    """The ``event`` (message) of every line of a task log file."""
    return [str(e.get("event", "")) for e in log_events(text)]


def exceptions(text: str) -> list[dict[str, Any]]:
    """The ``error_detail`` entries (logged exceptions) of a task log file."""
    return [d for e in log_events(text) for d in e.get("error_detail", [])]
