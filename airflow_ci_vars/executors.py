"""``LocalExecutor`` that does not start a task again while its previous process is still reported running.

Set ``[core] executor = airflow_ci_vars.executors.LocalExecutor`` where manual jobs (Airflow's
Human-in-the-loop requests) run on the LocalExecutor. Why:

A task that asks (``upsert_hitl_detail``, then ``TaskAwaitingInput``) is resumed *in the same
try*, so the resumed run has the same ``TaskInstanceKey`` as the process that asked. An answer
given while that process is still parking or exiting (``ti_update_state`` resumes an answered
task straight to ``scheduled`` when it parks; ``update_hitl_detail`` does so as soon as it is
parked) lets the scheduler queue and start the resumed run before it has read the executor's
event for the first process. When it reads that event, ``change_state`` drops the key from
``running``, and ``SchedulerJobRunner.process_executor_events`` sees a ``queued``/``running``
task whose executor "finished" with the same try number and does not have it (``has_task``);
the "resume after defer" exception only covers a task still ``scheduled``. It fails the resumed
task ("finished with state success, but the task instance's state attribute is queued").

Airflow 2's ``BaseExecutor.trigger_tasks`` kept such a workload queued while its key was still
``running`` (``RunningRetryAttemptType``; the comment explaining it is still in 3.3.2, the check
is gone), and Airflow 3.3.2's ``LocalExecutor`` no longer records its workloads in ``running``.
This class restores both: a queued task whose key is still running waits (up to
``RunningRetryAttemptType.MIN_SECONDS``) until the first process's end has been read, which
``has_task`` then sees, so the scheduler keeps the resumed task.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.executors import workloads
from airflow.executors.base_executor import RunningRetryAttemptType
from airflow.executors.local_executor import LocalExecutor as _AirflowLocalExecutor
from airflow.utils.state import TaskInstanceState

__all__ = ["LocalExecutor"]

# Events that mean "picked up", not "finished": the key stays running.
_NOT_FINISHED = frozenset({TaskInstanceState.QUEUED, TaskInstanceState.RUNNING})


class LocalExecutor(_AirflowLocalExecutor):
    """Airflow's ``LocalExecutor``, holding back a task whose previous process has not ended yet."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        # Own bookkeeping: BaseExecutor.trigger_tasks clears `attempts` before every hand-over.
        self._waiting: dict[Any, RunningRetryAttemptType] = {}

    def _process_workloads(self, workload_list: Sequence[Any]) -> None:
        ready = []
        for workload in workload_list:
            if isinstance(workload, workloads.ExecuteTask):
                key = workload.ti.key
                waiting = self._waiting.setdefault(key, RunningRetryAttemptType())
                if key in self.running and waiting.can_try_again():  # type: ignore[no-untyped-call]
                    # Stays in queued_tasks (so has_task is true) until the old process's end is read.
                    self.log.info("Task %s is queued but its previous process is still running; waiting", key)
                    continue
                self._waiting.pop(key, None)
                self.running.add(key)
            ready.append(workload)
        if ready:
            super()._process_workloads(ready)  # type: ignore[no-untyped-call]

    def change_state(self, key: Any, state: Any, info: Any = None, remove_running: bool = True) -> None:
        # The worker reports "running" when it picks a workload up: the process has not ended.
        super().change_state(key, state, info, remove_running=remove_running and state not in _NOT_FINISHED)
