"""The runtime loop's half of stopping running tasks: deadlines (timeouts), preempts and cancels.

A function task past its timeout is first interrupted where it runs (`TimedOut` raised in it by
its warm worker, which stays warm: the engine's ``interrupt``), and killed with its worker only if
it is still running `TIMEOUT_GRACE_S` later. A program, a suspended task, or a task on an engine
without ``interrupt`` is killed at once, with its whole process tree. Either way the task fails with
`TaskTimeout` (or is retried). A preempted task is killed once its grace has passed.

A mixin of `steerflow.runloop.RuntimeLoop`: every method runs in the loop thread. It uses the loop's
``_take_back``, ``_set_state``, ``_finish`` and ``_encode_args``.
"""

from __future__ import annotations

import heapq
import os
import time

from .engines.base import Engine
from .errors import TaskTimeout
from .records import TaskRecord
from .scheduler import Scheduler
from .task import Executable, Function, TaskState

#: how long a task's timeout waits for a new worker to start before it counts anyway (see `_expire`)
WORKER_START_GRACE_S = 60.0
#: how long a function interrupted at its timeout (`TimedOut`) has to stop before its worker is killed
TIMEOUT_GRACE_S = 1.0


class Interrupts:
    """Timeouts, preempts and cancels of the loop's tasks (see the module docstring)."""

    engine: Engine
    _scheduler: Scheduler
    _records: dict[int, TaskRecord]
    _deadlines: list[tuple[float, int, int]]
    _queued: dict[int, TaskRecord]
    _held: dict[int, set[int]]

    def _init_interrupts(self) -> None:
        # STEERFLOW_SOFT_TIMEOUT=0: every timeout kills at once, as before soft timeouts (for measuring them)
        self._interrupt = getattr(self.engine, "interrupt", None) \
            if os.environ.get("STEERFLOW_SOFT_TIMEOUT", "1") != "0" else None

    def _expire(self, now: float) -> None:
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, task_id, attempt = heapq.heappop(deadlines)
            record = self._records.get(task_id)
            if record is None or record.attempts[-1].number != attempt or record.placement is None \
                    or record.state.finished:
                continue
            if not record.kill_reason:  # its timeout (else the grace of its preempt or of its interrupt is over)
                timeout = record.spec.timeout
                late_start = getattr(self.engine, "late_start", None)  # (asked only at a deadline, not every round)
                if late_start is not None and timeout is not None:
                    began = late_start(task_id)  # (None: not begun, its worker is still starting)
                    if began is None and time.time() - record.started > timeout + WORKER_START_GRACE_S:
                        began = 0.0  # its worker never started: the timeout holds
                    if began is None or began + timeout > now:
                        heapq.heappush(deadlines, ((now if began is None else began) + timeout, task_id, attempt))
                        continue
                record.kill_reason = "timeout"
                interrupt = self._interrupt
                if interrupt is not None and record.state is TaskState.RUNNING and isinstance(record.spec, Function):
                    try:
                        interrupted = interrupt(task_id)
                    except Exception:  # noqa: BLE001 - then it is killed, as before
                        interrupted = False
                    if interrupted:  # its worker raises `TimedOut` in it; killed if it still runs after the grace
                        heapq.heappush(deadlines, (now + TIMEOUT_GRACE_S, task_id, attempt))
                        continue
            try:
                self.engine.kill(task_id)
            except Exception:  # noqa: BLE001
                from .runloop import report

                report(f"steerflow: could not kill task {task_id} at its deadline")

    @staticmethod
    def _timeout_error(record: TaskRecord, remote_traceback: str = "") -> TaskTimeout:
        """What a task past its timeout fails with, killed or interrupted (the same either way)."""
        error = TaskTimeout(f"Task {record.id} ran past its timeout of {record.spec.timeout} s and was killed.")
        if remote_traceback:  # (interrupted: where it was)
            error.add_note(f"Remote traceback of task {record.id}, where its timeout interrupted it:\n"
                           f"{remote_traceback}")
        return error

    def _preempt(self, record: TaskRecord, grace: float, args: tuple | None, kwargs: dict | None,
                 argv: list[str] | None) -> None:
        if record.state.finished:
            return
        spec = record.spec
        if isinstance(spec, Function) and (args is not None or kwargs is not None):
            spec.args = tuple(args) if args is not None else spec.args
            spec.kwargs = dict(kwargs) if kwargs is not None else spec.kwargs
            if record.payload is not None:
                self.engine.release_payload(record.id, record.payload)
            record.payload = self._encode_args(spec, spec.args, spec.kwargs)  # type: ignore[attr-defined]
        elif isinstance(spec, Executable) and argv is not None:
            spec.argv = list(argv)
        if record.id in self._queued and self._take_back(record):  # type: ignore[attr-defined]
            # (sent with its old arguments, not started)
            self._set_state(record, TaskState.WAITING)  # type: ignore[attr-defined]
            self._scheduler.submit(record.request)
            return
        if record.state in (TaskState.RUNNING, TaskState.PAUSED) or record.id in self._queued:
            record.kill_reason = "preempt"
            if record.state is TaskState.PAUSED:
                self.engine.resume(record.id)
            self.engine.preempt(record.id)
            heapq.heappush(self._deadlines, (time.monotonic() + grace, record.id, record.attempts[-1].number))

    def _cancel(self, record: TaskRecord) -> None:
        state = record.state
        if state.finished:
            return
        if state is TaskState.NEW:  # its submit is not applied: posted after a close, or never (Ctrl-C in `submit`)
            record.future.mark_cancelled()  # (its submit, if it comes, finishes it: finished here too, it was counted
            return  # twice, and the loop, which ends when no task is left, never ended)
        if state is TaskState.PLACED and (record.id in self._held or record.id in self._queued) \
                and self._take_back(record):  # type: ignore[attr-defined]  # it had not started: nothing to kill
            pass
        elif state in (TaskState.RUNNING, TaskState.PAUSED, TaskState.PLACED):
            record.kill_reason = "cancel"
            self.engine.kill(record.id)
            if state is TaskState.PAUSED:
                self.engine.resume(record.id)
        elif state is TaskState.WAITING and record.waiting_on == 0:
            self._scheduler.withdraw(record.id)
        self._finish(record, TaskState.CANCELLED)  # type: ignore[attr-defined]
