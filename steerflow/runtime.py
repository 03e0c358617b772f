"""The task runtime: futures in, placements out, one loop thread that owns everything mutable.

User threads only validate, build a record and post a message (submit, cancel, quota …).
A single loop thread owns the scheduler and the engine: it waits on the engine's events,
applies messages, retires finished attempts (retry, fail, resolve the future, release
dependents), enforces timeouts, then asks the scheduler for placements and launches them.
Nothing else touches scheduler or engine state, so there are no locks on the hot path.
"""

from __future__ import annotations

import atexit
import heapq
import itertools
import os
import tempfile
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, InvalidStateError
from pathlib import Path
from typing import Any

from . import engines, partial, serialize
from .engines.base import Engine, Event, Launch
from .engines.local import LocalEngine
from .errors import DependencyFailed, RuntimeBroken, RuntimeClosed, TaskFailed, TaskSpecError, TaskTimeout, WorkerLost
from .admission import check_fits
from .futures import ExecResult, TaskFuture, find_futures, substitute
from .mapping import chunks, map_results, run_chunk
from .resources import Allocation
from .scheduler import Request, Scheduler
from .records import GC_THRESHOLD, Attempt, TaskRecord, tune_gc
from .task import Executable, Function, TaskSpec, TaskState

Listener = Callable[["TaskRecord", TaskState], None]
PartialListener = Callable[["TaskRecord", int, Any], None]

MAX_WAIT_S = 3600.0  # the loop wakes at least this often (epoll cannot wait past ~24 days)


class Runtime(Executor):
    """Runs tasks on an allocation through an engine; `submit` returns a `TaskFuture`.

    A `concurrent.futures.Executor`: ``submit``, ``map`` and ``shutdown`` have the standard
    signatures and meaning, so a runtime drops into any code written for one; steerflow's
    extras (task options, killing running tasks) are extra keyword arguments.

    ``lost_retries`` is how often a task whose worker died (os._exit, segfault, OOM kill) is run
    again; that is on top of ``retries``, which counts the task's own failures. ``gc_threshold``:
    see `tune_gc` (None keeps Python's collector settings untouched).
    """

    def __init__(self, allocation: Allocation | None = None, engine: Engine | None = None,
                 run_dir: str | os.PathLike[str] | None = None,
                 quotas: dict[str, tuple[int | None, int | None]] | None = None,
                 lost_retries: int = 2, max_bypass: int = 64, gc_threshold: int | None = GC_THRESHOLD) -> None:
        tune_gc(gc_threshold)
        self.engine: Engine = engine or LocalEngine()
        self.allocation = allocation or engines.discover(self.engine) or Allocation.detect()
        if run_dir is None:
            run_dir = tempfile.mkdtemp(prefix="steerflow-")
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.lost_retries = lost_retries
        serialize.cleanup_stale()  # shared memory left by drivers or workers that crashed
        self._scheduler = Scheduler(self.allocation, quotas=quotas, max_bypass=max_bypass)
        self._fits: set[tuple] = set()  # task shapes already known to fit the allocation
        self._records: dict[int, TaskRecord] = {}  # unfinished tasks (and finished ones whose output is in use)
        # finished tasks' records live as long as their futures (the future holds its record): memory stays flat
        self._finished: weakref.WeakValueDictionary[int, TaskRecord] = weakref.WeakValueDictionary()
        self.finished_counts: dict[str, dict[str, int]] = {}  # pool -> final state -> tasks (for live displays)
        self._ids = itertools.count(1)
        self._inbox: deque[tuple] = deque()
        self._wake_pending = False
        self._deadlines: list[tuple[float, int, int]] = []
        self._active = 0  # tasks not yet finished
        self._listeners: list[Listener] = []
        self._partial_listeners: list[PartialListener] = []
        self._closing = False
        self._close_posted = False
        self._closed = False
        self.failure: BaseException | None = None  # why the loop itself failed, if it did (see RuntimeBroken)
        self._dead = False
        self.engine.start(self.allocation, self.run_dir)
        self._thread = threading.Thread(target=self._loop, name="steerflow-runtime", daemon=True)
        self._thread.start()
        atexit.register(_shutdown_at_exit, weakref.ref(self))

    # ---- public API (any thread) ----------------------------------------------------------
    def submit(self, fn: TaskSpec | Callable[..., Any], /, *args: Any, **kwargs: Any) -> TaskFuture:
        """Queue ``fn(*args, **kwargs)``; returns its future. A `Function` or `Executable` is queued as described."""
        if isinstance(fn, TaskSpec):
            if args or kwargs:
                raise TaskSpecError("args", args or kwargs, "give arguments inside the task description, "
                                    "not to submit(), when submitting a Function or Executable.")
            spec = fn
        else:
            spec = Function(fn, args, kwargs)
        return self.submit_spec(spec)

    def submit_spec(self, spec: TaskSpec, task_id: int | None = None) -> TaskFuture:
        """Queue a task description under an id of the caller's choosing (the campaign's stable keys)."""
        if self._closing:
            if self.failure is not None:
                raise RuntimeBroken(f"The runtime's loop failed ({type(self.failure).__name__}: {self.failure}); "
                                    "it runs no more tasks. Create a new runtime.") from self.failure
            raise RuntimeClosed("This runtime has been shut down; create a new one to submit more tasks.")
        self._check_fits(spec)
        if task_id is None:
            task_id = next(self._ids)
        elif task_id in self._records:
            raise ValueError(f"Task id {task_id} is already in use in this runtime.")
        future: TaskFuture = TaskFuture(self, task_id)
        request = Request(task_id, spec.ranks, spec.cores_per_rank, spec.gpus_per_rank,
                          -(-spec.memory_mb // spec.ranks), spec.nodes, spec.priority, spec.pool)
        record = TaskRecord(task_id, spec, future, request)
        if any(not isinstance(d, TaskFuture) for d in spec.after):
            raise TaskSpecError("after", spec.after, "must list futures returned by submit().")
        deps: list[TaskFuture] = list(spec.after)
        if isinstance(spec, Function):
            deps.extend(find_futures(spec.args, spec.kwargs))
            if not deps:
                record.payload = self._encode_args(spec, spec.args, spec.kwargs)
        record.deps = deps
        self._records[task_id] = record
        self._post(("submit", record))
        if self._dead:  # the loop ended while we queued it: nobody will run it
            self._resolve_orphan(record)
        return future

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any], timeout: float | None = None,
            chunksize: int = 1, buffersize: int | None = None, task_timeout: float | None = None,
            **options: Any) -> Iterator[Any]:
        """Like ``concurrent.futures.Executor.map``: the results of ``fn(*items)``, in order.

        ``timeout`` bounds the whole iteration (`TimeoutError` when a result is not there by
        ``timeout`` seconds after the call); ``chunksize`` > 1 runs that many calls per task;
        ``buffersize`` (as in Python 3.14) keeps at most that many tasks submitted ahead of the
        results consumed, so the iterables may be endless. Task options (``cores``, ``gpus``,
        ``pool``, ``priority``, ``retries`` …) apply to every task; ``task_timeout`` is each
        task's own timeout. Tasks whose results are not consumed are cancelled when the iterator
        is closed, garbage-collected, or raises.
        """
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        if buffersize is not None and (not isinstance(buffersize, int) or buffersize < 1):
            raise ValueError("buffersize must be None or an integer >= 1.")
        end = None if timeout is None else time.monotonic() + timeout
        if task_timeout is not None:
            options["timeout"] = task_timeout
        items: Iterator[tuple] = zip(*iterables)
        if chunksize > 1:
            items = zip(itertools.repeat(fn), chunks(items, chunksize))
            fn = run_chunk
        submit = self.submit

        def launch(args: tuple) -> TaskFuture:
            return submit(Function(fn, args, **options) if options else fn, *(() if options else args))

        if buffersize is None:
            futures = deque(launch(args) for args in items)
        else:
            futures = deque(launch(args) for args in itertools.islice(items, buffersize))
        return map_results(futures, items if buffersize is not None else None, launch, end, chunksize > 1)

    def cancel(self, task: TaskFuture | int) -> bool:
        """Cancel a task (kill it if running). False if it had already finished."""
        if isinstance(task, TaskFuture):
            return task.cancel()
        record = self._records.get(task)
        future = record.future if record is not None else None
        return future.cancel() if future is not None else False

    def suspend(self, task: TaskFuture | int) -> None:
        """Stop a running task's processes where they are; it keeps its resources."""
        self._post(("suspend", _task_id(task)))

    def resume(self, task: TaskFuture | int) -> None:
        """Continue a suspended task."""
        self._post(("resume", _task_id(task)))

    def preempt(self, task: TaskFuture | int, grace: float = 10.0, args: tuple | None = None,
                kwargs: dict | None = None, argv: list[str] | None = None) -> None:
        """Release a running task's resources and run it again later, from its checkpoint.

        A function gets `Preempted` raised inside it (catch it to `checkpoint.save`), a program
        gets SIGTERM; after ``grace`` seconds it is killed. New ``args``/``kwargs`` (functions)
        or ``argv`` (programs) give the restart a new starting point.
        """
        self._post(("preempt", _task_id(task), grace, args, kwargs, argv))

    def set_quota(self, pool: str, cores: int | None = None, gpus: int | None = None) -> None:
        """Cap what a pool may hold at once (None: no cap); takes effect for the next placements."""
        self._post(("quota", pool, cores, gpus))

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(record, state)`` on every state change, in the runtime's loop thread.

        It must be quick and must not block: it runs on the runtime's hot path.
        """
        self._post(("listen", listener))

    def add_partial_listener(self, listener: PartialListener) -> None:
        """Call ``listener(record, attempt, value)`` for each partial result a running task streams.

        Loop thread, in the order the task sent them, before the task's own end is handled.
        """
        self._post(("listen_partial", listener))

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` in the loop thread (for code that needs the scheduler's own view)."""
        self._post(("call", fn))

    def task(self, task_id: int) -> TaskRecord:
        """A task's record: while it runs, and after it finished for as long as someone holds its future."""
        record = self.record(task_id)
        if record is None:
            raise KeyError(f"Task {task_id} is not known to this runtime: it never was, or it finished and nobody "
                           "holds its future any more (finished records are not kept; a campaign's journal has them).")
        return record

    def record(self, task_id: int) -> TaskRecord | None:
        """Like `task`, or None."""
        record = self._records.get(task_id)
        return record if record is not None else self._finished.get(task_id)

    def tasks(self) -> list[TaskRecord]:
        """Unfinished tasks, and finished ones whose futures someone still holds."""
        return [*self._records.values(), *self._finished.values()]

    @property
    def scheduler(self) -> Scheduler:
        """The scheduler; read it only from the loop thread (`call_soon`, listeners)."""
        return self._scheduler

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False, kill: bool = False) -> None:
        """Accept no more tasks and stop once the submitted ones have finished (as ``Executor.shutdown``).

        ``wait``: return only when every task has ended and the workers are gone; else return at
        once while the tasks go on. ``cancel_futures``: cancel the tasks that have not started.
        ``kill`` (steerflow): also cancel the running ones, killing their processes.
        """
        if self._closed:
            return
        self._closing = True
        if cancel_futures or kill or not self._close_posted:
            self._close_posted = True
            self._post(("close", cancel_futures or kill, kill))
        if wait:
            self._thread.join()
            self._closed = True

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> bool:
        """As any executor, wait for the tasks; an interrupt (Ctrl-C, `SystemExit`) kills them instead."""
        interrupted = exc_type is not None and not issubclass(exc_type, Exception)
        self.shutdown(wait=True, cancel_futures=interrupted, kill=interrupted)
        return False

    # ---- plumbing --------------------------------------------------------------------------
    def _post(self, message: tuple) -> None:
        self._inbox.append(message)
        if not self._wake_pending:
            self._wake_pending = True
            self.engine.wakeup()

    def _encode_args(self, spec: Function, args: tuple, kwargs: dict) -> bytes:
        try:
            return serialize.dumps((args, kwargs))
        except Exception as exc:
            raise TaskSpecError("args", args, f"cannot be pickled for the worker ({exc}).") from exc

    def _check_fits(self, spec: TaskSpec) -> None:
        """Raise if the task could never run here. The allocation does not change: a shape that fits once always does."""
        shape = (spec.__class__, spec.ranks, spec.cores_per_rank, spec.gpus_per_rank, spec.memory_mb, spec.nodes,
                 spec.pool)
        if shape in self._fits:
            return
        check_fits(spec, self.allocation, self._scheduler)
        if len(self._fits) >= 4096:
            self._fits.clear()
        self._fits.add(shape)

    # ---- the loop (loop thread only) -------------------------------------------------------------
    def _loop(self) -> None:
        engine, inbox = self.engine, self._inbox
        try:
            while True:
                timeout = MAX_WAIT_S
                if self._deadlines:
                    timeout = min(timeout, max(0.0, self._deadlines[0][0] - time.monotonic()))
                if inbox:
                    timeout = 0
                events = engine.wait(timeout)
                self._wake_pending = False
                while inbox:
                    message = inbox.popleft()
                    try:
                        self._apply(message)
                    except Exception as exc:  # noqa: BLE001 - a bad message must not stop every task
                        if message[0] == "submit":
                            self._fail_alone(message[1], "queued", exc)
                        else:
                            _report(f"steerflow: the runtime could not apply {message[0]!r}")
                for event in events:
                    try:
                        self._on_event(event)
                    except Exception as exc:  # noqa: BLE001 - one task's bad end fails that task only
                        record = self._records.get(event.task_id)
                        if record is None:
                            _report(f"steerflow: the runtime could not handle an event of task {event.task_id}")
                        else:
                            self._fail_alone(record, "finished", exc)
                if self._deadlines:
                    self._expire(time.monotonic())
                if self._closing and self._active == 0:
                    break
                self._dispatch()
        except BaseException as exc:  # a bug in the loop itself: fail loudly, never hang
            self.failure = exc
            self._closing = True
            _report("steerflow: the runtime's loop failed; every pending task fails with this cause")
        finally:
            self._teardown()

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
                def by_reference(future: TaskFuture) -> Any:  # a result in its wire form, not loaded here
                    dep = self._records.get(future.task_id) if future._runtime is self else None
                    output = dep.output if dep is not None else None
                    if output is None or not output.shareable:
                        return future.result()
                    if dep not in record.inputs:
                        output.readers += 1
                        record.inputs.append(dep)
                    return serialize.Ref(output.blob)

                args = tuple(substitute(a, by_reference) for a in spec.args)
                kwargs = {k: substitute(v, by_reference) for k, v in spec.kwargs.items()}
                record.payload = self._encode_args(spec, args, kwargs)
            except Exception as exc:  # noqa: BLE001
                self._finish(record, TaskState.FAILED, exc)
                return
        self._scheduler.submit(record.request)

    def _dispatch(self) -> None:
        placements = self._scheduler.schedule()
        if not placements:
            return
        now = time.time()
        for placement in placements:
            record = self._records[placement.request.id]
            record.placement = placement
            record.started = now
            attempt = len(record.attempts) + 1
            nodes = tuple(self.allocation.nodes[s.node].name for s in placement.slots)
            record.attempts.append(Attempt(attempt, nodes, now))
            record.kill_reason = ""
            self._set_state(record, TaskState.RUNNING)
            if record.spec.timeout is not None:
                heapq.heappush(self._deadlines, (time.monotonic() + record.spec.timeout, record.id, attempt))
            try:
                self.engine.launch(Launch(record.id, attempt, record.spec, placement, record.payload))
            except Exception as exc:  # noqa: BLE001 - a task the engine cannot start fails alone
                self._fail_alone(record, "launched", exc)

    def _fail_alone(self, record: TaskRecord, what: str, exc: BaseException) -> None:
        """Fail one task whose launch or bookkeeping raised; its resources go back and the loop goes on."""
        if record.state.finished:
            return
        if record.placement is not None:
            try:
                self.engine.kill(record.id)  # whatever part of it did start
            except Exception:  # noqa: BLE001
                pass
            self._scheduler.release(record.id)
            record.placement = None
        label = record.spec.label()  # type: ignore[attr-defined]
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
        if record.placement is not None:
            self._scheduler.release(record.id)
            record.placement = None
        attempt = record.attempts[-1]
        attempt.ended = time.time()
        if event.times:
            attempt.times = event.times
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
                tail = _tail(result.stderr_path)
                self._retry_or_fail(record, TaskFailed(
                    f"Task {record.id} ({spec.label()}) exited with status {event.code}. "  # type: ignore[attr-defined]
                    f"Last lines of {result.stderr_path}:\n{tail}"))
        elif kind == "error":
            try:
                raised = serialize.loads(event.value)
            except Exception as err:  # noqa: BLE001
                raised = TaskFailed(f"Task {record.id} failed and its exception could not be unpickled: {err}")
            if not isinstance(raised, BaseException):
                raised = TaskFailed(f"Task {record.id} failed with a non-exception: {raised!r}")
            if event.text:
                raised.add_note(f"Remote traceback of task {record.id}:\n{event.text}")
            self._retry_or_fail(record, raised)
        else:  # lost
            reason = record.kill_reason
            if reason == "timeout":
                self._retry_or_fail(record, TaskTimeout(
                    f"Task {record.id} ran past its timeout of {record.spec.timeout} s and was killed."))
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
                _report(f"steerflow: a partial-result listener failed on task {record.id}")

    def _retry_or_fail(self, record: TaskRecord, error: BaseException) -> None:
        attempt = record.attempts[-1]
        attempt.outcome, attempt.message = "failed", f"{type(error).__name__}: {error}"
        failures = sum(1 for a in record.attempts if a.outcome == "failed")
        if failures <= record.spec.retries:
            self._set_state(record, TaskState.WAITING)
            self._scheduler.submit(record.request)
        else:
            self._finish(record, TaskState.FAILED, error)

    def _expire(self, now: float) -> None:
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, task_id, attempt = heapq.heappop(deadlines)
            record = self._records.get(task_id)
            if record is not None and record.attempts[-1].number == attempt and record.placement is not None \
                    and not record.state.finished:
                if record.kill_reason != "preempt":  # a preempted task past its grace is killed, still preempted
                    record.kill_reason = "timeout"
                try:
                    self.engine.kill(task_id)
                except Exception:  # noqa: BLE001
                    _report(f"steerflow: could not kill task {task_id} at its deadline")

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
            record.payload = self._encode_args(spec, spec.args, spec.kwargs)
        elif isinstance(spec, Executable) and argv is not None:
            spec.argv = list(argv)
        if record.state in (TaskState.RUNNING, TaskState.PAUSED):
            record.kill_reason = "preempt"
            if record.state is TaskState.PAUSED:
                self.engine.resume(record.id)
            self.engine.preempt(record.id)
            heapq.heappush(self._deadlines, (time.monotonic() + grace, record.id, record.attempts[-1].number))

    def _cancel(self, record: TaskRecord) -> None:
        state = record.state
        if state.finished:
            return
        if state in (TaskState.RUNNING, TaskState.PAUSED, TaskState.PLACED):
            record.kill_reason = "cancel"
            self.engine.kill(record.id)
            if state is TaskState.PAUSED:
                self.engine.resume(record.id)
        elif state is TaskState.WAITING and record.waiting_on == 0:
            self._scheduler.withdraw(record.id)
        self._finish(record, TaskState.CANCELLED)

    def _finish(self, record: TaskRecord, state: TaskState, error: BaseException | None = None,
                value: Any = None) -> None:
        record.ended = time.time()
        self._active -= 1
        counts = self.finished_counts.get(record.spec.pool)
        if counts is None:
            counts = self.finished_counts[record.spec.pool] = {}
        counts[state.value] = counts.get(state.value, 0) + 1
        future = record.future
        try:
            if state is TaskState.DONE:
                future.set_result(value)
            elif state is TaskState.FAILED:
                future.set_exception(error)
            elif not future.cancelled():
                Future.cancel(future)  # the base method: the runtime is the one cancelling
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
            self._finished[record.id] = record

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
                _report(f"steerflow: a listener failed on task {record.id} -> {state.value}")

    def _teardown(self) -> None:
        self._dead = True
        try:
            self.engine.shutdown()
        except Exception:  # noqa: BLE001 - the futures below must resolve whatever happens
            if self.failure is None:
                self.failure = RuntimeError("the engine failed to shut down")
            _report("steerflow: the engine failed to shut down")
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
                    Future.cancel(future)
        except InvalidStateError:
            pass


def _report(what: str) -> None:
    import sys
    import traceback

    print(f"{what}:\n{traceback.format_exc()}", file=sys.stderr)


def _task_id(task: TaskFuture | int) -> int:
    return task.task_id if isinstance(task, TaskFuture) else int(task)


def _tail(path: Path, size: int = 2000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read().decode(errors="replace")
    except OSError:
        return "(no output)"


def _shutdown_at_exit(ref: weakref.ref) -> None:
    runtime = ref()
    if runtime is not None:  # after shutdown(wait=False) the tasks were meant to finish; else stop them
        runtime.shutdown(wait=True, cancel_futures=not runtime._closing, kill=not runtime._closing)
