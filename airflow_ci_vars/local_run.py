"""``airflow-ci-vars run``: a pipeline run locally, like gitlab-ci-local, with the operator's code.

Two engines. ``direct`` (the default, ``direct_run``): the jobs in this process, through the
operator's own checks, decision and ``operators.job_execution.execute_job``, without importing
Airflow; output streamed as jobs write it (``_Events``; a spinner and durations on a terminal).
``airflow``: the factory's DAG run with ``dag.test()`` on an embedded SQLite metadata DB in a
private ``AIRFLOW_HOME`` when none is configured, Airflow imported only after the environment is
set up; a pipeline the direct engine cannot run (``direct_run.needs_airflow``) takes it.

Everything ``run`` prints -- job output, statuses, its own errors, and Airflow's logs of the run --
passes the run's masker first: every masked or hidden value of the settings file (any layer, any
project) becomes ``[MASKED]``, also in an error raised before a job has resolved its variables
(an include path or a ``needs:project`` built from a masked variable). The same phrases are given
to Airflow's own masker before the run starts, by the operator's rule
(``operators.mask_registration``: phrases up to ``AIRFLOW_MASK_MAX_LENGTH``, in one call).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

from airflow_ci_vars.errors import CIVarsError
from airflow_ci_vars.masking import Masker
from airflow_ci_vars.operators.run_output import RUN_DAG_ID

if TYPE_CHECKING:
    from airflow_ci_vars.pipeline.external.sources import IncludeSources

__all__ = ["RUN_DAG_ID", "loader_dag", "run_pipeline"]

_MIGRATED_MARK = ".airflow-ci-vars-db-migrated"


def _prepare_airflow_home() -> Path:
    """Use the configured ``AIRFLOW_HOME``, or a private one with an SQLite database."""
    home = os.environ.get("AIRFLOW_HOME")
    if not home:
        home = str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "airflow-ci-vars" / "airflow")
        os.environ["AIRFLOW_HOME"] = home
        os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home}/airflow.db")
    Path(home).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    return Path(home)


def _migrate(home: Path) -> None:
    mark = home / _MIGRATED_MARK
    conn = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    if mark.exists() and mark.read_text() == conn:
        return
    airflow = Path(sys.executable).parent / "airflow"
    proc = subprocess.run(
        [str(airflow), "db", "migrate"], capture_output=True, text=True, check=False, env=os.environ.copy()
    )
    if proc.returncode != 0:
        raise CIVarsError(f"airflow db migrate failed:\n{proc.stderr[-2000:]}")
    mark.write_text(conn)


@contextlib.contextmanager
def _airflow_output_masked(masker: Masker) -> Iterator[None]:
    """Send everything printed meanwhile (Airflow's logs and tracebacks, on file descriptors 1
    and 2) through ``masker`` to stderr, so stdout carries only the job output and no secret
    reaches the terminal. A thread streams the pipe through a ``MaskingStream``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    read_end, write_end = os.pipe()
    stream = masker.stream()

    def pump() -> None:
        with open(read_end, "rb", buffering=0) as pipe:
            while chunk := pipe.read(1 << 16):
                os.write(saved_err, stream.write(chunk.decode("utf-8", "replace")).encode())
        os.write(saved_err, stream.flush().encode())

    thread = threading.Thread(target=pump, name="airflow-ci-vars-run-mask", daemon=True)
    thread.start()
    try:
        os.dup2(write_end, 1)
        os.dup2(write_end, 2)
        os.close(write_end)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)  # the last writer of the pipe is gone: the thread reads to the end
        thread.join()
        os.close(saved_out)
        os.close(saved_err)


@contextlib.contextmanager
def _local_user() -> Iterator[None]:
    """Runs started here act for the local user, who holds the pipeline and the settings file:
    trusted, as gitlab-ci-local's user is (docs/security.md)."""
    from airflow_ci_vars.auth import LOCAL_RUN_ENV

    saved = os.environ.get(LOCAL_RUN_ENV)
    os.environ[LOCAL_RUN_ENV] = "1"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(LOCAL_RUN_ENV, None)
        else:
            os.environ[LOCAL_RUN_ENV] = saved


class _MaskedStream(io.TextIOBase):
    """A text stream that masks every write (whole lines, as ``run`` writes them) with ``masker``."""

    def __init__(self, stream: TextIO, masker: Masker) -> None:
        super().__init__()
        self._stream = stream
        self._masker = masker

    @property
    def raw(self) -> TextIO:
        """The stream written to (whether it is a terminal)."""
        return self._stream

    def write(self, text: str) -> int:
        """Write ``text`` with every secret replaced."""
        self._stream.write(self._masker.mask(text))
        return len(text)

    def flush(self) -> None:
        """Flush the underlying stream."""
        self._stream.flush()


def _run_masker(settings: str | None) -> Masker:
    """Every masked or hidden value of the settings file (all layers, all projects)."""
    if not settings:
        return Masker(())
    from airflow_ci_vars.settings import load_settings

    loaded = load_settings(settings)
    stored = [*loaded.instance]
    for variables in (*loaded.groups.values(), *loaded.projects.values()):
        stored += variables
    return Masker(v.value for v in stored if v.is_secret)


def _seed(variables: dict[str, str], settings: str | None, project: str | None, ref: str) -> dict[str, str]:
    """What include rules and locations see (``seed_variables``): the pipeline ``variables`` over
    the predefined ones and, with a settings file, its stored variables (``*`` scope)."""
    from airflow_ci_vars.pipeline.seed import seed_variables

    if not settings:
        return seed_variables(ref=ref, project=project, pipeline=variables)
    from airflow_ci_vars.settings import load_settings

    loaded = load_settings(settings)
    return seed_variables(
        ref=ref,
        project=project,
        pipeline=variables,
        stored=loaded.layers_for(project),
        ref_protected=loaded.access(project).is_protected(ref),
    )


def _sources(settings: str | None) -> Callable[[], IncludeSources]:
    """The deployment's include sources, read only when an include needs them."""

    def read() -> IncludeSources:
        from airflow_ci_vars.include_settings import include_sources

        return include_sources(settings_file=settings)

    return read


def loader_dag(params: dict[str, Any]) -> Any:
    """Build the DAG described by ``params`` (used by the generated DAG file)."""
    from airflow_ci_vars.dag_factory import build_dag
    from airflow_ci_vars.pipeline.loader import load_pipeline
    from airflow_ci_vars.pipeline.model import select_jobs

    file = Path(params["file"])
    pipeline = load_pipeline(
        file,
        seed=_seed(params.get("variables") or {}, params["settings"], params["project"], params["ref"]),
        sources=_sources(params["settings"]),
    )
    pipeline = select_jobs(pipeline, params["jobs"], with_needs=params["needs"])
    return build_dag(
        pipeline,
        dag_id=RUN_DAG_ID,
        project=params["project"],
        project_dir=file.parent,
        settings=params["settings"],
    )


def run_pipeline(
    file: str,
    *,
    engine: str = "direct",
    jobs: Sequence[str] = (),
    needs: bool = False,
    variables: Sequence[str] = (),
    settings: str | None = None,
    project: str | None = None,
    ref: str | None = None,
    manual: Sequence[str] = (),
    output: str = "text",
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run the pipeline in ``file``; return 0 if and only if it succeeded (130: interrupted).

    ``engine``: ``direct`` (``direct_run``, in this process; a pipeline that needs Airflow is
    run by it instead, said on ``err``) or ``airflow`` (the factory's DAG with ``dag.test()``).
    Everything written to ``out`` and ``err`` passes the run's masker (``_run_masker``); an
    unexpected exception is printed as ``Type: message``, masked, with exit code 1. Ctrl-C stops
    the running job's processes and removes its workspace.
    """
    err = err or sys.stderr
    try:
        masker = _run_masker(settings)
    except (CIVarsError, OSError) as error:  # messages name the file, never a value
        err.write(f"{error}\n")
        return 1
    masked_err = _MaskedStream(err, masker)
    try:
        return _run_pipeline(
            file,
            engine=engine,
            jobs=jobs,
            needs=needs,
            variables=variables,
            settings=settings,
            project=project,
            ref=ref,
            manual=manual,
            output=output,
            out=_MaskedStream(out or sys.stdout, masker),
            err=masked_err,
            masker=masker,
        )
    except KeyboardInterrupt:  # the job's processes are killed and its workspace removed on the way
        masked_err.write("interrupted\n")
        return 130
    except CIVarsError as error:  # a settings file the seed reads: FILE:LINE: message
        masked_err.write(f"{error}\n")
    except Exception as error:  # whatever Airflow or a job raised: never a secret on the terminal
        masked_err.write(f"{type(error).__name__}: {error}\n")
    return 1


def _run_pipeline(
    file: str,
    *,
    engine: str,
    jobs: Sequence[str],
    needs: bool,
    variables: Sequence[str],
    settings: str | None,
    project: str | None,
    ref: str | None,
    manual: Sequence[str],
    output: str,
    out: _MaskedStream,
    err: _MaskedStream,
    masker: Masker,
) -> int:
    path = Path(file).resolve()
    conf_variables: dict[str, str] = {}
    for item in variables:
        key, sep, value = item.partition("=")
        if not sep:
            err.write(f"--variable {item!r}: expected KEY=VALUE\n")
            return 2
        conf_variables[key] = value

    # Validate before starting Airflow, with the loader lint uses: its errors as file:line:col: message.
    from airflow_ci_vars.pipeline.loader import check_pipeline
    from airflow_ci_vars.pipeline.model import select_jobs

    if settings and not project:
        from airflow_ci_vars.settings import load_settings

        project = load_settings(settings).project
    try:
        loaded = check_pipeline(
            path, seed=_seed(conf_variables, settings, project, ref or "main"), sources=_sources(settings)
        )
    except CIVarsError as error:  # the settings file
        err.write(f"{error}\n")
        return 1
    if loaded.pipeline is None:
        err.writelines(f"{problem}\n" for problem in loaded.problems() if problem.severity == "error")
        return 1
    try:
        selected = select_jobs(loaded.pipeline, jobs, with_needs=needs)
    except KeyError as error:
        err.write(f"{error}\n")
        return 1
    conf: dict[str, Any] = {"variables": conf_variables, "manual": list(manual)}
    if ref:
        conf["ref"] = ref
    home = _prepare_airflow_home()
    if engine == "direct":
        from airflow_ci_vars.direct_run import needs_airflow

        reason = needs_airflow(selected)
        if reason is None:
            return _run_direct(selected, path, settings, project, conf, output, out, err)
        err.write(f"run: {reason}: running it on Airflow (--engine airflow)\n")
    _quiet_airflow_warnings()
    with tempfile.TemporaryDirectory(prefix="airflow-ci-vars-run-") as tmp:
        dags = Path(tmp) / "dags"
        dags.mkdir()
        params = {
            "file": str(path),
            # The stored values are read again by the DAG file: only the given ones are kept in clear.
            "variables": conf_variables,
            "ref": ref or "main",
            "jobs": list(jobs),
            "needs": needs,
            "settings": str(Path(settings).resolve()) if settings else None,
            "project": project,
        }
        loader = dags / "pipeline.py"
        loader.write_text(
            "# airflow DAG generated by airflow-ci-vars run\n"
            "import json\n"
            "from airflow_ci_vars.local_run import loader_dag\n"
            f"dag = loader_dag(json.loads({json.dumps(params)!r}))\n"
        )
        records = Path(tmp) / "output.jsonl"
        records.touch()
        os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags)
        os.environ["AIRFLOW_CI_VARS_RUN_OUTPUT"] = str(records)
        with _airflow_output_masked(masker), _local_user():
            _migrate(home)
            from airflow_ci_vars.operators.mask_registration import register_with_airflow

            register_with_airflow(masker)
            spec = importlib.util.spec_from_file_location("airflow_ci_vars_run_pipeline", loader)
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            dag_run = module.dag.test(run_conf=conf)
        state = str(getattr(dag_run.state, "value", dag_run.state))
        events = _Events(out, output, progress=False)
        for line in records.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if "line" in record:
                events.line(record["job"], record["line"])
            else:
                events.status(record["job"], record["status"], None)
        out.flush()
    if state != "success":
        err.write(f"pipeline {state}\n")
        return 1
    return 0


def _quiet_airflow_warnings() -> None:
    """No Airflow warning noise on the user's terminal: the deprecation warnings Airflow's own
    imports raise (Starlette's about ``httpx`` in its in-process execution API, for one) are
    Airflow's to fix, not the pipeline author's."""
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
    warnings.filterwarnings("ignore", module=r"(fastapi|starlette)(\.|$)")  # StarletteDeprecationWarning


class _Events:
    """``direct_run.JobEvents`` on ``run``'s output: ``JOB > LINE`` and ``JOB: STATUS`` as text,
    or one JSON record each (``--output jsonl``). With ``progress`` (text on a terminal), a
    status line shows the running job (rich) and each status line gets its duration."""

    def __init__(self, out: io.TextIOBase, output: str, *, progress: bool) -> None:
        self._out = out
        self._jsonl = output == "jsonl"
        self._console: Any = None
        self._spinner: Any = None
        if progress and not self._jsonl:
            from rich.console import Console

            self._console = Console(file=cast(TextIO, out), force_terminal=True, highlight=False)

    def started(self, job: str, stage: str) -> None:
        """A spinner names the running job (terminal only)."""
        if self._console is not None:
            self._spinner = self._console.status(f"[bold]{job}[/bold] running (stage {stage})", spinner="dots")
            self._spinner.start()

    def line(self, job: str, text: str) -> None:
        """One masked output line, written at once."""
        if self._jsonl:
            self._write(json.dumps({"job": job, "line": text}, ensure_ascii=False))
        elif self._console is not None:
            self._console.print(f"{job} > {text}", markup=False)
        else:
            self._write(f"{job} > {text}")

    def status(self, job: str, status: str, seconds: float | None) -> None:
        """The job's final status."""
        if self._jsonl:
            self._write(json.dumps({"job": job, "status": status}, ensure_ascii=False))
        elif self._console is not None:
            if self._spinner is not None:
                self._spinner.stop()
                self._spinner = None
            colour = {"success": "green", "failed": "red", "warning": "yellow"}.get(status, "dim")
            took = f" [dim]({seconds:.1f} s)[/dim]" if seconds is not None else ""
            self._console.print(f"[bold]{job}[/bold]: [{colour}]{status}[/{colour}]{took}")
        else:
            self._write(f"{job}: {status}")

    def close(self) -> None:
        """Stop a spinner left by an interrupted job."""
        if self._spinner is not None:
            self._spinner.stop()
            self._spinner = None

    def _write(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()


def _run_direct(
    pipeline: Any,
    path: Path,
    settings: str | None,
    project: str | None,
    conf: dict[str, Any],
    output: str,
    out: _MaskedStream,
    err: _MaskedStream,
) -> int:
    """Run ``pipeline`` with the direct engine (``direct_run.DirectRun``); its exit code."""
    import logging

    from airflow_ci_vars.direct_run import DirectRun

    log = logging.Logger("airflow_ci_vars.run", logging.WARNING)  # unregistered: no global state
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    log.addHandler(handler)
    terminal = bool(getattr(out.raw, "isatty", lambda: False)())
    events = _Events(out, output, progress=terminal)
    with tempfile.TemporaryDirectory(prefix="airflow-ci-vars-run-") as tmp:
        run = DirectRun(
            pipeline,
            project=project,
            project_dir=str(path.parent),
            settings=str(Path(settings).resolve()) if settings else None,
            conf=conf,
            events=events,
            log=log,
            root=Path(tmp) / "artifacts",
        )
        try:
            outcome = run.run()
        finally:
            events.close()
    if outcome.status == "failed":
        err.write(f"{outcome.reason}\n")
        return 1
    return 0
