"""The runtime's loop thread: the one thread that owns the scheduler, the engine and every record.

`Runtime` (runtime.py) is the public side: user threads validate, build a record and post a
message. This module is the other side. The loop waits on the engine's events, applies the
posted messages, retires finished attempts (retry, fail, resolve the future, release
dependents), enforces timeouts, then asks the scheduler for placements and launches them.
Nothing else touches scheduler or engine state, so there are no locks on the hot path.

Pipelining (a function queued one-deep on a busy worker) is `steerflow.pipelining`'s half; timeouts,
preempts and cancels (a function interrupted at its deadline before its worker is killed) are
`steerflow.interrupts`'.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from concurrent.futures import InvalidStateError
from pathlib import Path
from typing import Any, Callable

from . import partial, serialize
from .engines.base import Engine, Event, Launch
from .pipelining import PIPELINE_MIN_RUN_S, Pipeline, run_time_key
from .errors import DependencyFailed, RuntimeBroken, TaskFailed, TaskSpecError, TimedOut, WorkerLost
from .futures import ExecResult, SharedCondition, TaskFuture, substitute
from .interrupts import TIMEOUT_GRACE_S, WORKER_START_GRACE_S, Interrupts  # noqa: F401 - (named here before)
from .records import Attempt, FinishedRecords, TaskRecord
from .resources import Allocation
from .scheduler import Scheduler
from .task import Function, TaskState

Listener = Callable[[TaskRecord, TaskState], None]
PartialListener = Callable[[TaskRecord, int, Any], None]

_NAMES = {state: state.value for state in TaskState}  # (an enum's .value is a slow descriptor; this is per task)

MAX_WAIT_S = 3600.0  # the loop wakes at least this often (epoll cannot wait past ~24 days)
# Messages (submits …) applied per round of the loop: a burst of submits is applied a slice at a time, with
# the workers' replies read and free cores given tasks in between, instead of all of it while they idle.
MESSAGES_PER_ROUND = 16


class RuntimeLoop(Interrupts, Pipeline):
    """The loop-thread half of `Runtime`: every method here runs in the loop thread only.

    `Runtime.__init__` sets the state below and starts ``_thread`` on `_loop`.
    """

    engine: Engine
    allocation: Allocation
    run_dir: Path
    lost_retries: int
    failure: BaseException | None
    finished_counts: dict[str, dict[str, int]]
    _scheduler: Scheduler
    _records: dict[int, TaskRecord]
    _finished: FinishedRecords
    _inbox: deque[tuple]
    _wake_pending: bool
    _waiting: bool
    _deadlines: list[tuple[float, int, int]]
    _futures_condition: SharedCondition
    _active: int
    _listeners: list[Listener]
    _partial_listeners: list[PartialListener]
    _round_listeners: list[Callable[[], None]]
    _closing: bool
    _dead: bool
    _thread: threading.Thread

    def _encode_args(self, spec: Function, args: tuple, kwargs: dict) -> bytes:
        try:
            return serialize.dumps((args, kwargs))
        except Exception as exc:
            raise TaskSpecError("args", args, f"cannot be pickled for the worker ({exc}).") from exc


    def _loop(self) -> None:
        engine, inbox, futures = self.engine, self._inbox, self._futures_condition
        if getattr(engine, "defer_sends", None) is False:  # (the local engine: see `WarmPool.send_all`)
            engine.defer_sends = True  # type: ignore[attr-defined]
        self._init_pipelining()
        self._init_interrupts()
        try:
            while True:
                timeout = MAX_WAIT_S
                if self._deadlines:
                    timeout = min(timeout, max(0.0, self._deadlines[0][0] - time.monotonic()))
                self._waiting = True  # (before looking at the inbox: a post from now on wakes us; see `Runtime._post`)
                if inbox:
                    timeout = 0
                events = engine.wait(timeout)
                self._waiting = False
                self._wake_pending = False
                futures.defer()  # threads waiting for results are woken as the round ends (`SharedCondition`)
                for _ in range(min(len(inbox), MESSAGES_PER_ROUND)):  # the rest next round, after a dispatch
                    message = inbox.popleft()
                    try:
                        self._apply(message)
                    except Exception as exc:  # noqa: BLE001 - a bad message must not stop every task
                        if message[0] == "submit":
                            self._fail_alone(message[1], "queued", exc)
                        else:
                            report(f"steerflow: the runtime could not apply {message[0]!r}")
                for event in events:
                    try:
                        self._on_event(event)
                    except Exception as exc:  # noqa: BLE001 - one task's bad end fails that task only
                        record = self._records.get(event.task_id)
                        if record is None:
                            report(f"steerflow: the runtime could not handle an event of task {event.task_id}")
                        else:
                            self._fail_alone(record, "finished", exc)
                if self._deadlines:
                    self._expire(time.monotonic())
                if self._closing and self._active == 0 and not inbox:  # (every message applied first)
                    break
                self._dispatch()
                self._end_round()
                message = event = events = None  # (kept while we wait, they would keep a dropped task's objects alive)
        except BaseException as exc:  # a bug in the loop itself: fail loudly, never hang
            self.failure = exc
            self._closing = True
            report("steerflow: the runtime's loop failed; every pending task fails with this cause")
        finally:
            self._end_round()  # (the last round's state changes, or those before a failure)
            self._teardown()

    def _end_round(self) -> None:
        """One wake-up's state changes are all made: listeners that gathered them hand them on now, in one go,
        and threads waiting for the round's results are woken (the workers have their next tasks by now)."""
        for listener in self._round_listeners:
            try:
                listener()
            except Exception:  # noqa: BLE001 - a listener's bug must not stop the runtime
                report("steerflow: a round listener failed")
        self._futures_condition.flush()

    def _apply(self, message: tuple) -> None:
        op = message[0]
        if op == "submit":
            self._on_submit(message[1])
        elif op == "cancel":
            record = self._records.get(message[1])
            if record is not None:  # else it finished meanwhile
                self._cancel(record)
        elif op == "suspend" or op == "resume":
            record = self._records.get(message[1])
            if record is None:
                return
            if op == "suspend" and record.state is TaskState.RUNNING:
                self.engine.suspend(record.id)
                self._set_state(record, TaskState.PAUSED)
            elif op == "resume" and record.state is TaskState.PAUSED:
                self.engine.resume(record.id)
                self._set_state(record, TaskState.RUNNING)
        elif op == "preempt":
            record = self._records.get(message[1])
            if record is not None:
                self._preempt(record, *message[2:])
        elif op == "quota":
            self._scheduler.set_quota(message[1], message[2], message[3])
        elif op == "listen":
            self._listeners.append(message[1])
        elif op == "listen_partial":
            self._partial_listeners.append(message[1])
        elif op == "listen_round":
            self._round_listeners.append(message[1])
        elif op == "call":
            message[1]()
        elif op == "close":
            _, cancel_pending, kill = message
            if cancel_pending or kill:
                for record in list(self._records.values()):
                    if kill or record.state in (TaskState.NEW, TaskState.WAITING):
                        self._cancel(record)

    def _on_submit(self, record: TaskRecord) -> None:
        self._active += 1
        if record.future.cancelled():  # cancelled before the loop saw it
            self._finish(record, TaskState.CANCELLED)
            return
        for dep in record.deps:
            dep_record = self._records.get(dep.task_id) if dep._runtime is self else None
            if dep_record is None:
                if not dep.done():
                    self._finish(record, TaskState.FAILED, TaskSpecError(
                        "after", dep, "is a future of another runtime or campaign; pass futures of this one."))
                    return
                if dep.cancelled() or dep.exception() is not None:  # resolved from a journal on resume
                    self._finish(record, TaskState.FAILED, DependencyFailed(
                        f"Task {record.id} did not run: task {dep.task_id}, which it depends on, failed."))
                    return
                continue
            if not dep_record.state.finished:
                dep_record.dependents.append(record)
                record.waiting_on += 1
            elif dep_record.state is not TaskState.DONE:
                self._fail_dependency(record, dep_record)
                return
        self._set_state(record, TaskState.WAITING)
        if record.waiting_on == 0:
            self._make_ready(record)

    def _make_ready(self, record: TaskRecord) -> None:
        record.ready = time.time()
        spec = record.spec
        if record.payload is None and isinstance(spec, Function):
            try:
                inputs = record.inputs
                known = {id(dep) for dep in inputs}  # (a set: a fan-in of n futures is O(n), not O(n^2))

                def by_reference(future: TaskFuture) -> Any:  # a result in its wire form, not loaded here
                    dep = self._records.get(future.task_id) if future._runtime is self else None
                    output = dep.output if dep is not None else None
                    if output is None or not output.shareable:
                        return future.result()
                    if id(dep) not in known:
                        known.add(id(dep))
                        output.readers += 1
                        inputs.append(dep)
                    return serialize.Ref(output.blob)

                args = tuple(substitute(a, by_reference) for a in spec.args)
                kwargs = {k: substitute(v, by_reference) for k, v in spec.kwargs.items()}
                record.payload = self._encode_args(spec, args, kwargs)
            except Exception as exc:  # noqa: BLE001
                self._finish(record, TaskState.FAILED, exc)
                return
        self._scheduler.submit(record.request)

    def _dispatch(self) -> None:
        if self._pipelining and self._unheld:  # placed on cores held ahead, which are free now
            unheld, self._unheld = self._unheld, []
            now = time.time()
            for record in unheld:
                if record.placement is None:
                    continue
                if record.state.finished:  # cancelled while it waited to be launched: its booking goes back
                    self._free(record)
                    if record.output is None:
                        self._retire(record)
                else:
                    self._launch(record, record.placement, now)
        placements = self._scheduler.schedule()
        if placements:
            self._start_all(placements)
        if self._pipelining:
            scheduler = self._scheduler
            if self._candidates and scheduler.n_waiting and not scheduler.free_cores():
                self._release_ahead()
            elif self._queued and scheduler.free_cores() and (not scheduler.n_waiting or not placements):
                self._steal()  # (a core idles and nothing that waits can have it: a wider task waits for more)

    def _start_all(self, placements: list) -> None:
        now = time.time()
        ahead = self._ahead
        for placement in placements:
            record = self._records[placement.request.id]
            record.placement = placement
            if ahead and self._behind(record, placement, now):
                continue
            self._launch(record, placement, now)

    def _launch(self, record: TaskRecord, placement: Any, now: float) -> None:
        record.started = now
        attempt = len(record.attempts) + 1
        slots = placement.slots
        nodes = (self.allocation.nodes[slots[0].node].name,) if len(slots) == 1 else tuple(
            self.allocation.nodes[s.node].name for s in slots)
        record.attempts.append(Attempt(attempt, nodes, now))
        record.kill_reason = ""
        self._set_state(record, TaskState.RUNNING)
        if record.spec.timeout is not None:
            heapq.heappush(self._deadlines, (time.monotonic() + record.spec.timeout, record.id, attempt))
        try:
            self.engine.launch(Launch(record.id, attempt, record.spec, placement, record.payload))
        except Exception as exc:  # noqa: BLE001 - a task the engine cannot start fails alone
            self._fail_alone(record, "launched", exc)
            return
        if self._pipelining and record.request.ranks == 1 and record.request.nodes is None and (
                self._queueable(record.spec) if not isinstance(record.spec, Function) else self._pipeline_all
                or self._run_times.get(run_time_key(record.spec.fn), PIPELINE_MIN_RUN_S) >= PIPELINE_MIN_RUN_S):
            self._candidates[record.id] = record

    def _fail_alone(self, record: TaskRecord, what: str, exc: BaseException) -> None:
        """Fail one task whose launch or bookkeeping raised; its resources go back and the loop goes on."""
        if record.state.finished:
            return
        if record.placement is not None and not (
                (record.id in self._held or record.id in self._queued) and self._take_back(record)):
            try:
                self.engine.kill(record.id)  # whatever part of it did start
            except Exception:  # noqa: BLE001
                pass
            self._free(record)
        try:
            label = record.spec.label()  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - (a description changed after it was made: this task fails, not the loop)
            label = type(record.spec).__name__
        error = TaskFailed(f"Task {record.id} ({label}) could not be {what}: {type(exc).__name__}: {exc}")
        error.__cause__ = exc
        if record.attempts:
            attempt = record.attempts[-1]
            attempt.ended = time.time()
            attempt.outcome, attempt.message = "failed", str(error)
        self._finish(record, TaskState.FAILED, error)

    def _on_event(self, event: Event) -> None:
        if event.kind == "nodes":  # the engine's nodes changed (Dask workers joined or left)
            self.allocation, offline = event.value
            self._scheduler.update_nodes(self.allocation, offline)
            return
        record = self._records.get(event.task_id)
        if record is None or not record.attempts or record.attempts[-1].number != event.attempt:
            return  # a stale report of an attempt we already retired
        if event.kind == "partial":
            self._on_partial(record, event)
            return
        if event.kind == "started":
            self._on_started(record, event)
            return
        if event.kind == "requeue":
            self._on_requeue(record)
            return
        if self._queued and record.id in self._queued:  # queued, and its end is heard before its start: it started
            self._on_started(record, Event("started", record.id, event.attempt,
                                           times=(event.times[1],) if event.times else None))
        if record.placement is not None:
            self._free(record)
        attempt = record.attempts[-1]
        attempt.ended = time.time()
        if event.times:
            attempt.times = event.times
            if self._pipelining and isinstance(record.spec, Function):  # how long this function runs, smoothed
                times, run_times = event.times, self._run_times
                if len(run_times) >= 4096:
                    run_times.clear()
                fn = run_time_key(record.spec.fn)
                run_times[fn] = 0.7 * run_times.get(fn, times[2] - times[1]) + 0.3 * (times[2] - times[1])
        kind = event.kind
        if record.state.finished:  # cancelled while it ran: this is its kill being confirmed
            attempt.outcome = "cancelled"
            if record.output is None:
                self._retire(record)  # its resources are back: nothing more will come about it
            return
        if record.kill_reason == "preempt" and kind != "ok" and not (kind == "exit" and event.code == 0):
            attempt.outcome = "preempted"
            self._set_state(record, TaskState.WAITING)
            self._scheduler.submit(record.request)
            return
        if kind == "ok":
            attempt.outcome = "done"
            # not loaded here: the future loads it when asked, dependents get it by reference
            record.result_blob = event.value
            record.output = serialize.Encoded(event.value)
            self._finish(record, TaskState.DONE, value=record.output)
        elif kind == "exit":
            spec = record.spec
            stem = self.run_dir / "tasks" / f"{record.id}.{attempt.number}"
            result = ExecResult(event.code, Path(f"{stem}.out"), Path(f"{stem}.err"))
            if event.code == 0:
                attempt.outcome = "done"
                self._finish(record, TaskState.DONE, value=result)
            else:
                self._retry_or_fail(record, result.failure(record.id, spec.label()))  # type: ignore[attr-defined]
        elif kind == "error":
            try:
                raised = serialize.loads(event.value)
            except Exception as err:  # noqa: BLE001
                raised = TaskFailed(f"Task {record.id} failed and its exception could not be unpickled: {err}")
            if not isinstance(raised, BaseException):
                raised = TaskFailed(f"Task {record.id} failed with a non-exception: {raised!r}")
            if isinstance(raised, TimedOut) and record.kill_reason == "timeout":  # interrupted at its deadline
                self._retry_or_fail(record, self._timeout_error(record, event.text))
                return
            if event.text:
                raised.add_note(f"Remote traceback of task {record.id}:\n{event.text}")
            self._retry_or_fail(record, raised)
        else:  # lost
            reason = record.kill_reason
            if reason == "timeout":
                self._retry_or_fail(record, self._timeout_error(record))
            else:
                record.lost += 1
                error = WorkerLost(f"Task {record.id} was lost: {event.text}.")
                attempt.outcome, attempt.message = "lost", str(error)
                if record.lost <= self.lost_retries:
                    self._set_state(record, TaskState.WAITING)
                    self._scheduler.submit(record.request)
                else:
                    self._finish(record, TaskState.FAILED, error)

    def _on_partial(self, record: TaskRecord, event: Event) -> None:
        if record.state.finished or not self._partial_listeners:
            return
        try:
            value = serialize.loads(event.value) if event.text == "pickle" else partial.decode(event.value)
        except Exception as exc:  # noqa: BLE001 - a value the driver cannot load is reported, not fatal
            value = TaskFailed(f"Task {record.id} streamed a partial result that could not be loaded: {exc}")
        for listener in self._partial_listeners:
            try:
                listener(record, event.attempt, value)
            except Exception:  # noqa: BLE001
                report(f"steerflow: a partial-result listener failed on task {record.id}")

    def _retry_or_fail(self, record: TaskRecord, error: BaseException) -> None:
        attempt = record.attempts[-1]
        attempt.outcome, attempt.message = "failed", f"{type(error).__name__}: {error}"
        failures = sum(1 for a in record.attempts if a.outcome == "failed")
        if failures <= record.spec.retries:
            self._set_state(record, TaskState.WAITING)
            self._scheduler.submit(record.request)
        else:
            self._finish(record, TaskState.FAILED, error)

    def _finish(self, record: TaskRecord, state: TaskState, error: BaseException | None = None,
                value: Any = None) -> None:
        record.ended = time.time()
        self._active -= 1
        counts = self.finished_counts.get(record.spec.pool)
        if counts is None:
            counts = self.finished_counts[record.spec.pool] = {}
        name = _NAMES[state]
        counts[name] = counts.get(name, 0) + 1
        future = record.future
        try:
            if state is TaskState.DONE:
                future.set_result(value)
            elif state is TaskState.FAILED:
                future.set_exception(error)
            elif not future.cancelled():
                future.mark_cancelled()  # not cancel(): the runtime is the one cancelling
        except InvalidStateError:
            pass  # the user cancelled it at the same moment
        self._set_state(record, state)  # after the future: listeners may read its outcome
        if record.payload is not None:
            self.engine.release_payload(record.id, record.payload)  # shared-memory buffers: finished for good
            record.payload = None
        if record.inputs:  # this task no longer reads its inputs' shared memory
            for dep in record.inputs:
                if dep.output is not None:
                    dep.output.readers -= 1
                    self._settle(dep)
            record.inputs = []
        output = record.output
        dependents, record.dependents = record.dependents, []
        if output is not None:  # each dependent holds the result's files until it ends (it may get it by reference)
            for dependent in dependents:
                if not dependent.state.finished:
                    output.readers += 1
                    dependent.inputs.append(record)
        for dependent in dependents:
            if dependent.state.finished:
                continue
            if state is TaskState.DONE:
                dependent.waiting_on -= 1
                if dependent.waiting_on == 0:
                    self._make_ready(dependent)
            else:
                self._fail_dependency(dependent, record)
        if output is not None:
            self._settle(record)
        record.let_go()
        if record.output is None and record.placement is None:  # (a task killed while it ran: once confirmed)
            self._retire(record)

    def _retire(self, record: TaskRecord) -> None:
        """A finished task leaves the runtime's tables; its future keeps the record, as long as someone holds it.

        The record holds its future weakly (`TaskRecord.let_go`), so there is no cycle: dropping the
        future frees both at once, and a million finished tasks leave nothing behind in the driver.
        """
        if self._records.pop(record.id, None) is None:
            return
        future = record.future
        if future is not None:
            future._record = record
            self._finished.add(record)

    def _settle(self, record: TaskRecord) -> None:
        """Once no task reads a result by reference, its files leave /dev/shm (the future keeps a mapping if it must)."""
        output = record.output
        if output is None or output.readers > 0:
            return
        if not output.settled:
            future = record.future
            output.settle(pin=future is not None and not future.loaded)
        record.output = None  # later dependents get the value (it is not kept twice)
        if record.state.finished and record.placement is None:
            self._retire(record)

    def _fail_dependency(self, record: TaskRecord, dep: TaskRecord) -> None:
        self._finish(record, TaskState.FAILED, DependencyFailed(
            f"Task {record.id} did not run: task {dep.id}, which it depends on, ended {dep.state.value}."))

    def _set_state(self, record: TaskRecord, state: TaskState) -> None:
        record.state = state
        for listener in self._listeners:
            try:
                listener(record, state)
            except Exception:  # noqa: BLE001 - a listener's bug must not stop the runtime
                report(f"steerflow: a listener failed on task {record.id} -> {state.value}")

    def _teardown(self) -> None:
        self._dead = True
        try:
            self.engine.shutdown()
        except Exception:  # noqa: BLE001 - the futures below must resolve whatever happens
            if self.failure is None:
                self.failure = RuntimeError("the engine failed to shut down")
            report("steerflow: the engine failed to shut down")
        finally:
            for record in list(self._records.values()):
                self._resolve_orphan(record)
                if record.output is not None:  # no task reads it any more; the future may still
                    record.output.readers = 0
                    self._settle(record)

    def _resolve_orphan(self, record: TaskRecord) -> None:
        """A task the loop will never run: cancelled by shutdown, or failed with the loop's own failure."""
        if record.state.finished:
            return
        future = record.future
        try:
            if self.failure is not None:
                record.state = TaskState.FAILED
                error = RuntimeBroken(f"Task {record.id} did not finish: the runtime's loop failed "
                                      f"({type(self.failure).__name__}: {self.failure}).")
                error.__cause__ = self.failure
                future.set_exception(error)
            else:
                record.state = TaskState.CANCELLED
                if not future.done():
                    future.mark_cancelled()
        except InvalidStateError:
            pass


def report(what: str) -> None:
    """Print what failed and the current traceback to stderr (the loop goes on)."""
    import sys
    import traceback

    print(f"{what}:\n{traceback.format_exc()}", file=sys.stderr)
