"""What the api-server gate checks, one handler per kind of request (``plugins.gate.ROUTES``).

Each handler finds the CI pipeline's DAG (the serialized DAG of the api-server's dag bag; a DAG
without ``CIJobOperator`` tasks is none of our business), its project's access settings (the
configured store: Vault or the settings file, as the operator reads them), the user of the
request's token and their roles in the auth manager, then calls the decisions of
``permissions``. A refusal raises ``Refused``; a handler returns the body to pass on (stamped),
or None to pass on the body it checked.

=============  ===============================================================================
action         checks
=============  ===============================================================================
trigger        ``POST .../dagRuns`` (REST and the UI's trigger form): the user may run on the
               ref (``conf["ref"]``, else the default branch), set what the conf sets, deploy to
               ``conf["environment"]``; a caller's ``pipeline_source``/``ci_trigger`` is refused;
               the conf is stamped with the source (``web`` when the UI sent it) and the roles
backfill       ``POST /backfills``: the same, for ``dag_run_conf`` (source ``api``)
answer         a manual job's Human-in-the-loop answer: "Run" needs the rights to play the job
               (``check_play``); the answer is stamped with the responder's roles
change_run     clearing (retrying) a run's jobs, setting its or a job's state, deleting it: the
               run rights on its ref (notes and dry runs pass)
change_runs    the same for several runs at once (bulk updates, clearing by dates): the run
               rights on every ref of the project
xcom           writing a CI job's XComs (its dotenv report, artifacts...): refused, jobs write them
asset_event    creating an event of a dotenv Asset (``gitlab-ci/...``): refused, jobs publish them
=============  ===============================================================================
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from airflow_ci_vars.errors import AccessDeniedError, CIVarsError
from airflow_ci_vars.parameters import SERVER_CONF_KEYS, restricted_conf, run_ref
from airflow_ci_vars.permissions import (
    STAMP_KEY,
    Actor,
    ProjectAccess,
    answer_stamp,
    check_deploy,
    check_pipeline_variables,
    check_play,
    check_run,
    may_run_anywhere,
    trigger_stamp,
)
from airflow_ci_vars.settings import Settings

__all__ = ["Refused", "SettingsCache", "airflow_roles_of", "check_request"]

_CI_MODULE = "airflow_ci_vars."
_DOTENV_ASSET_PREFIX = "gitlab-ci/"
_MANUAL_RUN = "Run"
#: How long an answer may wait for the job that asked to park (see ``_wait_until_parked``).
PARK_WAIT_SECONDS = 10.0
_PARKED = frozenset({"awaiting_input", "deferred"})


class Refused(Exception):
    """The gate answers the request itself: ``status`` and ``detail`` (FastAPI's error shape)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class _Request:
    """What a handler needs of the request: its path parameters, JSON body, user and Referer."""

    method: str
    path: str
    params: Mapping[str, str]
    body: dict[str, Any]
    user: Any  # the auth manager's user, or None without valid credentials
    from_ui: bool
    dag_bag: Any
    cache: SettingsCache


@dataclass(frozen=True, slots=True)
class _Pipeline:
    """A CI pipeline's DAG: its project, that project's access settings, the serialized DAG."""

    project: str
    access: ProjectAccess
    dag: Any


async def check_request(
    action: str, params: Mapping[str, str], scope: Mapping[str, Any], body: bytes, cache: SettingsCache
) -> bytes:
    """Check one request the gate caught; return the body to pass on, or raise ``Refused``."""
    from starlette.concurrency import run_in_threadpool

    try:
        doc = json.loads(body or b"{}")
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise Refused(400, "the request body must be a JSON object")
    headers: dict[str, str] = {}
    for key, value in scope.get("headers", []):  # the first of repeated headers, as Starlette reads them
        headers.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
    user = await _user(headers)
    app = scope.get("app")
    request = _Request(
        str(scope.get("method", "")),
        str(scope.get("path", "")),
        params,
        doc,
        user,
        bool(headers.get("referer")),
        getattr(getattr(app, "state", None), "dag_bag", None),
        cache,
    )
    changed = await run_in_threadpool(partial(_HANDLERS[action], request))
    # Airflow gets the body as checked, never another parse of the caller's bytes (duplicate keys...).
    return json.dumps(doc if changed is None else changed).encode()


async def _user(headers: Mapping[str, str]) -> Any:
    """The user of the request's credentials, as Airflow's ``get_user`` finds it (the bearer token,
    else the UI's cookie); None without valid credentials."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

    token = None
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        token = credentials.strip()
    else:
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE_NAME_JWT_TOKEN and value:
                token = value
    if token is None:
        return None
    try:
        return await get_auth_manager().get_user_from_token(token)
    except Exception:
        return None


def airflow_roles_of(user: Any) -> tuple[str, ...]:
    """A user's roles in the auth manager: the Simple auth manager's ``role``, FAB's ``roles``."""
    roles: list[str] = []
    role = getattr(user, "role", None)
    if isinstance(role, str) and role:
        roles.append(role)
    for item in getattr(user, "roles", None) or ():
        name = getattr(item, "name", item)
        if isinstance(name, str) and name:
            roles.append(name)
    return tuple(dict.fromkeys(roles))


def _actor(request: _Request) -> Actor:
    if request.user is None:
        raise Refused(401, "Not authenticated")
    return Actor("user", str(request.user.get_name()), airflow_roles_of(request.user))


def _role(actor: Actor, access: ProjectAccess) -> str | None:
    from airflow_ci_vars.auth import role_mapping

    return actor.role_in(access, role_mapping())


def _pipeline(request: _Request, dag_id: str, session: Any, task_id: str | None = None) -> _Pipeline | None:
    """The CI pipeline of ``dag_id`` (or of its task ``task_id``); None when it is not one."""
    from airflow_ci_vars.stores.configured import configured_store, project_settings

    if request.dag_bag is None:
        raise Refused(503, "the api-server has no dag bag: cannot check CI permissions")
    dag = request.dag_bag.get_latest_version_of_dag(dag_id, session=session)
    if dag is None:
        return None
    tasks = [dag.task_dict.get(task_id)] if task_id is not None else list(dag.tasks)
    job = next((t for t in tasks if t is not None and str(getattr(t, "_task_module", "")).startswith(_CI_MODULE)), None)
    if job is None:
        return None
    try:
        store = request.cache.wrap(configured_store(getattr(job, "settings_file", None)))
        project, settings = project_settings(store, getattr(job, "project", None), dag_id)
    except (CIVarsError, OSError) as err:
        raise Refused(503, f"cannot check CI permissions of {dag_id}: {err}") from None
    return _Pipeline(project, settings.access(project), dag)


class SettingsCache:
    """The settings files the gate read, each parsed again only when it changed (size, mtime,
    inode): the api-server checks every trigger, and parsing a large file costs milliseconds and
    garbage collections (docs/benchmarks.md). One per gate; Vault has its own cache option."""

    LIMIT = 64

    def __init__(self) -> None:
        self._parsed: dict[str, tuple[tuple[int, int, int], Settings]] = {}
        self._lock = threading.Lock()

    def wrap(self, store: Any) -> Any:
        """``store``, reading through this cache when it is a settings file."""
        from airflow_ci_vars.stores.file import FileStore

        return _CachedFile(self, store) if isinstance(store, FileStore) and store.path else store

    def load(self, store: Any) -> Settings:
        path = str(store.path)
        stat = os.stat(path)
        key = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
        with self._lock:
            found = self._parsed.get(path)
        if found is not None and found[0] == key:
            return found[1]
        settings: Settings = store.load()  # a settings file's load() is the whole file
        with self._lock:
            if len(self._parsed) >= self.LIMIT:
                self._parsed.clear()
            self._parsed[path] = (key, settings)
        return settings


@dataclass(frozen=True, slots=True)
class _CachedFile:
    cache: SettingsCache
    store: Any

    def load(self, project: str | None = None) -> Settings:
        return self.cache.load(self.store)


def _prefilled(dag: Any) -> dict[str, object]:
    """The trigger form's prefilled variables (params of the ``Variables`` section) and their values."""
    from airflow_ci_vars.pipeline.run_form import VARIABLES_SECTION

    out: dict[str, object] = {}
    for name in dag.params:
        param = dag.params.get_param(name)
        if (getattr(param, "schema", None) or {}).get("section") == VARIABLES_SECTION:
            out[name] = param.value
    return out


def _denied(err: AccessDeniedError) -> Refused:
    return Refused(403, str(err))


def _session() -> Any:
    from airflow.utils.session import create_session

    return create_session()


# -- handlers ------------------------------------------------------------------------------------


def _trigger(request: _Request) -> dict[str, Any] | None:
    return _start_runs(request, request.params["dag_id"], "conf", "web" if request.from_ui else "api")


def _backfill(request: _Request) -> dict[str, Any] | None:
    dag_id = request.body.get("dag_id")
    return _start_runs(request, dag_id, "dag_run_conf", "api") if isinstance(dag_id, str) else None


def _start_runs(request: _Request, dag_id: str, conf_key: str, source: str) -> dict[str, Any] | None:
    """A new run (or backfill) of a pipeline: GitLab's checks before a pipeline exists, then the stamp."""
    conf = request.body.get(conf_key)
    conf = {} if conf is None else conf
    if not isinstance(conf, dict):
        return None  # Airflow refuses it (422)
    reserved = [key for key in SERVER_CONF_KEYS if key in conf]
    if reserved:
        raise Refused(
            400,
            f"conf key(s) {', '.join(reserved)} may not be given: CI_PIPELINE_SOURCE and the trigger stamp "
            "come from how the run starts",
        )
    with _session() as session:
        pipeline = _pipeline(request, dag_id, session)
    if pipeline is None:
        return None
    actor = _actor(request)
    access = pipeline.access
    role = _role(actor, access)
    ref = run_ref(conf, access.default_branch)
    environment = conf.get("environment")
    if ref is None or not (environment is None or isinstance(environment, str)):
        return None  # Airflow refuses it against the DAG's params (400)
    try:
        check_run(access, actor, role, ref, project=pipeline.project)
        given = restricted_conf(conf, _prefilled(pipeline.dag))
        check_pipeline_variables(given, access, actor, role, project=pipeline.project)
        check_deploy(access, actor, role, environment or None, project=pipeline.project)
    except AccessDeniedError as err:
        raise _denied(err) from None
    conf[STAMP_KEY] = trigger_stamp(source, actor)
    return {**request.body, conf_key: conf}


def _answer(request: _Request) -> dict[str, Any] | None:
    """A manual job's Human-in-the-loop answer: "Run" plays the job (``check_play``)."""
    from airflow_ci_vars.errors import ParameterError
    from airflow_ci_vars.pipeline.manual import manual_job_variables

    params = request.params
    given = request.body.get("params_input")
    params_input = {} if given is None else given
    if not isinstance(params_input, dict):
        return None
    params_input.pop(STAMP_KEY, None)
    with _session() as session:
        pipeline = _pipeline(request, params["dag_id"], session, params["task_id"])
        if pipeline is None:
            return None
        actor = _actor(request)
        run = _dag_run(session, params["dag_id"], params["run_id"])
        if run is None:
            return None  # Airflow answers 404
        asked = _manual_request(session, params, run)
    access = pipeline.access
    chosen = request.body.get("chosen_options")
    if isinstance(chosen, list) and _MANUAL_RUN in chosen:
        try:
            typed = [v.key for v in manual_job_variables(params_input.get("variables"))]
        except ParameterError as err:
            raise Refused(400, str(err)) from None
        ref = str(asked.get("ref") or run_ref(run.conf, access.default_branch))
        environment = asked.get("environment")
        task = pipeline.dag.task_dict[params["task_id"]]
        try:
            check_play(
                access,
                actor,
                _role(actor, access),
                project=pipeline.project,
                job=str(getattr(task, "task_display_name", params["task_id"])),
                ref=ref,
                environment=environment if isinstance(environment, str) else None,
                variables=typed,
            )
        except AccessDeniedError as err:
            raise _denied(err) from None
    params_input[STAMP_KEY] = answer_stamp(actor)
    _wait_until_parked(params)
    return {**request.body, "params_input": params_input}


def _wait_until_parked(params: Mapping[str, str]) -> None:
    """Hold an answer until the job that asked has parked (at most ``PARK_WAIT_SECONDS``).

    Airflow 3.3.2's ``update_hitl_detail`` decides whether to resume the task from a state it read
    before locking the row: an answer that arrives while the task is still parking is recorded,
    and the task is never resumed (it waits until the request times out). Once the task is
    ``awaiting_input`` (or ``deferred``), the answer resumes it.
    """
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import select

    query = select(TaskInstance.state).where(
        TaskInstance.dag_id == params["dag_id"],
        TaskInstance.run_id == params["run_id"],
        TaskInstance.task_id == params["task_id"],
        TaskInstance.map_index == int(params.get("map_index", "-1")),
    )
    deadline = time.monotonic() + PARK_WAIT_SECONDS
    while True:
        with _session() as session:
            state = session.scalar(query)
        if str(getattr(state, "value", state)) in _PARKED or time.monotonic() > deadline:
            return
        time.sleep(0.1)


def _change_run(request: _Request) -> dict[str, Any] | None:
    """Retrying (clearing) a run's jobs, setting a run's or a job's state, deleting a run: as
    GitLab's retry and cancel, these need the run rights on the run's ref. Notes and dry runs pass."""
    body = request.body
    if request.method != "DELETE":
        if request.path.endswith("/clear") and body.get("dry_run", True) is not False:
            return None  # Airflow's clear is a dry run unless told otherwise
        if set(body) <= {"note"}:
            return None
    dag_id, run_id = request.params["dag_id"], request.params["run_id"]
    with _session() as session:
        pipeline = _pipeline(request, dag_id, session)
        if pipeline is None:
            return None
        run = _dag_run(session, dag_id, run_id)
    if run is None:
        return None
    actor = _actor(request)
    access = pipeline.access
    ref = str(run_ref(run.conf, access.default_branch))
    try:
        check_run(access, actor, _role(actor, access), ref, project=pipeline.project)
    except AccessDeniedError as err:
        raise _denied(err) from None
    return None


def _change_runs(request: _Request) -> dict[str, Any] | None:
    """A change that may reach runs of any ref (bulk updates, clearing by dates): the user needs
    the run rights on every ref, protected or not (``may_run_anywhere``). Dry runs pass."""
    body = request.body
    if "clear" in request.path.rsplit("/", 1)[-1] and body.get("dry_run", True) is not False:
        return None
    dag_id = request.params["dag_id"]
    actor = _actor(request)
    if dag_id == "~":  # every DAG: only an owner by their Airflow role alone
        if _role(actor, ProjectAccess()) == "owner":
            return None
        raise Refused(403, f"Changing runs of every DAG at once needs the owner role: {actor} is not an owner")
    with _session() as session:
        pipeline = _pipeline(request, dag_id, session)
    if pipeline is None:
        return None
    role = _role(actor, pipeline.access)
    if not may_run_anywhere(pipeline.access, role):
        raise Refused(
            403,
            f"Changing several runs of a CI pipeline at once needs the run rights on every ref, protected ones "
            f"included: {actor} has role {role or 'none'} in project {pipeline.project}; change one run at a time",
        )
    return None


def _xcom(request: _Request) -> dict[str, Any] | None:
    params = request.params
    with _session() as session:
        pipeline = _pipeline(request, params["dag_id"], session, params["task_id"])
    if pipeline is None:
        return None
    raise Refused(
        403,
        f"The XComs of CI jobs (dotenv reports, artifacts) are written by the jobs themselves: job "
        f"{params['task_id']!r} of {pipeline.project} cannot be changed through the API",
    )


def _asset_event(request: _Request) -> dict[str, Any] | None:
    from airflow.models.asset import AssetModel
    from sqlalchemy import select

    asset_id = request.body.get("asset_id")
    if not isinstance(asset_id, int):
        return None
    with _session() as session:
        name = session.scalar(select(AssetModel.name).where(AssetModel.id == asset_id))
    if isinstance(name, str) and name.startswith(_DOTENV_ASSET_PREFIX):
        raise Refused(
            403,
            f"Events of {name!r} carry a CI job's dotenv report: only the job publishes them, never a call to the API",
        )
    return None


def _dag_run(session: Any, dag_id: str, run_id: str) -> Any:
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    return session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))


def _manual_request(session: Any, params: Mapping[str, str], run: Any) -> dict[str, Any]:
    """What the waiting manual job recorded for this check (its expanded environment, the ref)."""
    from airflow.models.xcom import XComModel

    from airflow_ci_vars.operators.manual_approval import MANUAL_REQUEST_XCOM_KEY

    row = session.scalars(
        XComModel.get_many(
            run_id=run.run_id,
            key=MANUAL_REQUEST_XCOM_KEY,
            task_ids=params["task_id"],
            dag_ids=params["dag_id"],
            map_indexes=int(params.get("map_index", "-1")),
        )
    ).first()
    value = XComModel.deserialize_value(row) if row is not None else None
    return dict(value) if isinstance(value, Mapping) else {}


_HANDLERS = {
    "trigger": _trigger,
    "backfill": _backfill,
    "answer": _answer,
    "change_run": _change_run,
    "change_runs": _change_runs,
    "xcom": _xcom,
    "asset_event": _asset_event,
}
