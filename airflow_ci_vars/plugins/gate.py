"""The api-server middleware: GitLab's permission checks on the requests that start or change CI runs.

Registered on the api-server's root app by the provider's plugin (``AirflowPlugin.
fastapi_root_middlewares``), it sees every request before Airflow routes it. For the few requests
that start or change a run of a CI pipeline's DAG (``ROUTES``) it reads the JSON body, asks
``plugins.requests`` (which calls ``permissions.decisions``) and then either answers itself --
``403`` with GitLab's message, ``400`` for a key only the deployment may write, and no run is
created -- or passes the request on with the body it checked (as it parsed it; stamped where it records who
asked, ``permissions.actor``). Every other request passes untouched.

It fails closed: a body it cannot read as a JSON object, a user it cannot identify, or a check
that cannot be made (the settings unreadable here) is refused, never passed on unchecked. The
operator checks everything again when each job starts (docs/security.md).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_BODY_BYTES", "ROUTES", "PermissionGate", "Route", "match_route"]

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The largest request body the gate reads (a run's conf above this is refused with 413).
MAX_BODY_BYTES = 16 * 1024 * 1024
_RUN = r"/api/v2/dags/(?P<dag_id>[^/]+)/dagRuns/(?P<run_id>[^/]+)"
_TI = _RUN + r"/taskInstances/(?P<task_id>[^/]+)"


@dataclass(frozen=True, slots=True)
class Route:
    """A request the gate checks: its methods, its path (after any prefix) and what it does."""

    methods: frozenset[str]
    pattern: re.Pattern[str]
    action: str


def _route(methods: str, path: str, action: str) -> Route:
    return Route(frozenset(methods.split()), re.compile(rf"(?:/.*)?{path}/?"), action)


_CHANGE = "POST PATCH PUT DELETE"
#: What the gate checks (``plugins.requests`` has one handler per action), first match wins.
ROUTES = (
    _route("POST", r"/api/v2/dags/(?P<dag_id>[^/]+)/dagRuns", "trigger"),
    _route("POST", r"/api/v2/backfills", "backfill"),
    _route("PATCH", _TI + r"/(?P<map_index>-?\d+)/hitlDetails", "answer"),
    _route(_CHANGE, _TI + r"(?:/-?\d+)?/xcomEntries(?:/(?P<key>[^/]+))?", "xcom"),
    _route("POST", r"/api/v2/assets/events", "asset_event"),
    # reads that are POSTed, and dry runs: they change nothing
    _route("POST", r"/api/v2/dags/[^/]+/dagRuns(?:/[^/]+/taskInstances)?/list", "read"),
    _route(_CHANGE, r"/api/v2/dags/[^/]+/.*/dry_run", "read"),
    # anything else that changes a run, or its jobs: retries, states, deletions
    _route(_CHANGE, _RUN + r"(?:/.*)?", "change_run"),
    _route(_CHANGE, r"/api/v2/dags/(?P<dag_id>[^/]+)/(?:dagRuns|clear[A-Za-z]*|taskInstances)(?:/.*)?", "change_runs"),
)


def match_route(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route ``method path`` takes, with its path parameters; None for any other request."""
    for route in ROUTES:
        if method in route.methods:
            found = route.pattern.fullmatch(path)
            if found:
                return route, {k: v for k, v in found.groupdict().items() if v is not None}
    return None


class PermissionGate:
    """ASGI middleware (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        from airflow_ci_vars.plugins.requests import SettingsCache

        self.app = app
        self.settings_cache = SettingsCache()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        matched = match_route(str(scope.get("method", "")), str(scope.get("path", "")))
        if matched is None or matched[0].action == "read":
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            await _answer(send, 413, f"request body larger than {MAX_BODY_BYTES} bytes")
            return
        from airflow_ci_vars.plugins.requests import Refused, check_request

        route, params = matched
        try:
            checked = await check_request(route.action, params, scope, body, self.settings_cache)
        except Refused as refused:
            await _answer(send, refused.status, refused.detail)
            return
        except Exception:
            log.exception("CI permission check failed for %s %s", scope.get("method"), scope.get("path"))
            await _answer(send, 503, "the CI permission check failed; see the api-server log")
            return
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-length"]
        scope = {**scope, "headers": [*headers, (b"content-length", str(len(checked)).encode())]}
        await self.app(scope, _replay(checked, receive), send)


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when it is larger than ``MAX_BODY_BYTES``."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = bytes(message.get("body", b""))
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        more = bool(message.get("more_body", False))
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the app ``body`` once, then whatever the client sends next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _answer(send: Send, status: int, detail: str) -> None:
    """Answer as FastAPI's ``HTTPException`` does: ``{"detail": ...}``."""
    payload = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
