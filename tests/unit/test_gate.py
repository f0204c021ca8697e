"""The api-server gate's routing and ASGI mechanics (its checks run on the real stack:
tests/stack/test_permissions_matrix.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from airflow_ci_vars.plugins import gate
from airflow_ci_vars.plugins.gate import MAX_BODY_BYTES, PermissionGate, match_route

RUN = "/api/v2/dags/acme_etl/dagRuns/manual__2026-12-07T05:00:00+00:00"


@pytest.mark.parametrize(
    ("method", "path", "action", "params"),
    [
        ("POST", "/api/v2/dags/acme_etl/dagRuns", "trigger", {"dag_id": "acme_etl"}),
        ("POST", "/api/v2/dags/acme_etl/dagRuns/", "trigger", {"dag_id": "acme_etl"}),  # a trailing slash
        ("POST", "/airflow/api/v2/dags/acme_etl/dagRuns", "trigger", {"dag_id": "acme_etl"}),  # under a prefix
        ("POST", "/api/v2/backfills", "backfill", {}),
        ("PATCH", f"{RUN}/taskInstances/deploy/-1/hitlDetails", "answer", {"task_id": "deploy", "map_index": "-1"}),
        ("PATCH", f"{RUN}/taskInstances/build/xcomEntries/dotenv", "xcom", {"task_id": "build", "key": "dotenv"}),
        ("POST", f"{RUN}/taskInstances/build/xcomEntries", "xcom", {"task_id": "build"}),
        ("DELETE", f"{RUN}/taskInstances/build/-1/xcomEntries/dotenv", "xcom", {"key": "dotenv"}),
        ("POST", "/api/v2/assets/events", "asset_event", {}),
        ("POST", f"{RUN}/clear", "change_run", {"dag_id": "acme_etl"}),
        ("PATCH", RUN, "change_run", {"run_id": "manual__2026-12-07T05:00:00+00:00"}),
        ("DELETE", RUN, "change_run", {}),
        ("PATCH", f"{RUN}/taskInstances/deploy", "change_run", {}),
        ("PATCH", f"{RUN}/taskInstances/deploy/3", "change_run", {}),
        ("PATCH", f"{RUN}/taskInstances", "change_run", {}),  # bulk, within one run
        ("POST", "/api/v2/dags/acme_etl/clearTaskInstances", "change_runs", {"dag_id": "acme_etl"}),
        ("POST", "/api/v2/dags/~/clearDagRuns", "change_runs", {"dag_id": "~"}),
        ("PATCH", "/api/v2/dags/acme_etl/dagRuns", "change_runs", {}),
        ("POST", "/api/v2/dags/acme_etl/dagRuns/list", "read", {}),
        ("PATCH", f"{RUN}/taskInstances/deploy/dry_run", "read", {}),
    ],
)
def test_the_gate_catches_what_starts_or_changes_runs(
    method: str, path: str, action: str, params: dict[str, str]
) -> None:
    found = match_route(method, path)
    assert found is not None
    route, got = found
    assert route.action == action
    assert params.items() <= got.items()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v2/dags/acme_etl/dagRuns"),
        ("GET", f"{RUN}/taskInstances/build/xcomEntries/dotenv"),
        ("PATCH", "/api/v2/dags/acme_etl"),  # pausing a DAG
        ("POST", "/auth/token"),
        ("POST", "/execution/dag-runs/acme_etl/x"),  # tasks' own API: the operator checks those runs
        ("GET", "/ui/dags"),
    ],
)
def test_every_other_request_passes_untouched(method: str, path: str) -> None:
    assert match_route(method, path) is None


class App:
    """The app behind the gate: records what reached it."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.headers: list[dict[bytes, bytes]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        self.headers.append(dict(scope["headers"]))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


def call(app: Any, method: str, path: str, chunks: list[bytes]) -> tuple[int, Any]:
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": [(b"content-length", b"1")]}
    asyncio.run(app(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body)


def test_the_checked_body_is_the_one_passed_on(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bytes] = []

    async def check(action: str, params: Any, scope: Any, body: bytes, cache: Any) -> bytes:
        seen.append(body)
        return b'{"conf": {"ci_trigger": {}}}'

    monkeypatch.setattr("airflow_ci_vars.plugins.requests.check_request", check)
    app = App()
    status, _ = call(PermissionGate(app), "POST", "/api/v2/dags/d/dagRuns", [b'{"conf"', b": {}}"])
    assert status == 200
    assert seen == [b'{"conf": {}}']  # the whole body, however it arrived
    assert app.bodies == [b'{"conf": {"ci_trigger": {}}}']
    assert app.headers[0][b"content-length"] == str(len(app.bodies[0])).encode()


def test_a_refusal_is_answered_by_the_gate_and_reaches_no_route(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_ci_vars.plugins.requests import Refused

    async def check(*args: Any) -> bytes:
        raise Refused(403, "You do not have sufficient permission to run a pipeline on 'main'.")

    monkeypatch.setattr("airflow_ci_vars.plugins.requests.check_request", check)
    app = App()
    status, body = call(PermissionGate(app), "POST", "/api/v2/dags/d/dagRuns", [b"{}"])
    assert (status, body["detail"][:40]) == (403, "You do not have sufficient permission to")
    assert app.bodies == []


def test_a_failing_check_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    async def check(*args: Any) -> bytes:
        raise RuntimeError("database gone")

    monkeypatch.setattr("airflow_ci_vars.plugins.requests.check_request", check)
    app = App()
    status, body = call(PermissionGate(app), "POST", "/api/v2/dags/d/dagRuns", [b"{}"])
    assert status == 503 and "database gone" not in body["detail"]
    assert app.bodies == []


def test_a_body_larger_than_the_limit_is_refused_without_reading_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gate, "MAX_BODY_BYTES", 10)
    app = App()
    status, body = call(PermissionGate(app), "POST", "/api/v2/dags/d/dagRuns", [b"x" * 8, b"x" * 8, b"never read"])
    assert status == 413 and app.bodies == []
    assert body["detail"] == "request body larger than 10 bytes"
    assert MAX_BODY_BYTES == 16 * 1024 * 1024


def test_other_requests_stream_through_unread() -> None:
    app = App()
    status, _ = call(PermissionGate(app), "GET", "/api/v2/dags", [b"a", b"b"])
    assert status == 200 and app.bodies == [b"ab"]


def test_the_gate_parses_a_settings_file_again_only_when_it_changed(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_ci_vars.plugins.requests import SettingsCache
    from airflow_ci_vars.stores.file import FileStore

    path = tmp_path / "settings.yml"
    path.write_text("protected_refs: [main]\n")
    parsed: list[str] = []
    original = FileStore.load

    def counting(self: FileStore, project: str | None = None) -> Any:
        parsed.append(str(self.path))
        return original(self, project)

    monkeypatch.setattr(FileStore, "load", counting)
    cache = SettingsCache()
    store = cache.wrap(FileStore(path))
    assert [r.name for r in store.load("a/b").access("a/b").ref_rules] == ["main"]
    store.load("c/d")
    assert len(parsed) == 1
    path.write_text("protected_refs: [main, 'release/*']\n")  # a new size
    assert [r.name for r in store.load().access().ref_rules] == ["main", "release/*"]
    assert len(parsed) == 2


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"a string"', b"\xff\xfe"])
def test_a_body_that_is_not_a_json_object_is_refused_before_anything_is_looked_up(body: bytes) -> None:
    from airflow_ci_vars.plugins.requests import Refused, SettingsCache, check_request

    with pytest.raises(Refused) as refused:
        asyncio.run(check_request("trigger", {"dag_id": "d"}, {"headers": []}, body, SettingsCache()))
    assert (refused.value.status, refused.value.detail) == (400, "the request body must be a JSON object")
