"""The task runtime: futures in, placements out, one loop thread that owns everything mutable.

This module is the public side, a `concurrent.futures.Executor`: user threads only validate,
build a record and post a message (submit, cancel, quota …). The loop thread that owns the
scheduler and the engine, and applies those messages, is `runloop.RuntimeLoop`.
"""

from __future__ import annotations

import atexit
import itertools
import os
import sys
import tempfile
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from . import engines, serialize
from .admission import check_fits
from .engines.base import Engine
from .engines.local import LocalEngine
from .errors import RuntimeBroken, RuntimeClosed, TaskSpecError
from .estimates import RunTimeEstimates
from .futures import SharedCondition, TaskFuture, find_futures
from .mapping import chunks, map_results, run_chunk
from .records import GC_THRESHOLD, Attempt, FinishedRecords, TaskRecord, tune_gc
from .resources import Allocation
from .runloop import MAX_WAIT_S, Listener, PartialListener, RuntimeLoop
from .scheduler import Request, Scheduler
from .scheduler_shadow import check_max_bypass
from .task import MAX_TIMEOUT, Function, TaskSpec, recheck_policy, recheck_program, recheck_resources

#: how long a thread submitting a burst into a runtime with idle cores gives the loop the GIL, once (see `_post`)
HANDOFF_S = 5e-5

__all__ = ["Attempt", "Listener", "MAX_WAIT_S", "PartialListener", "Runtime", "TaskRecord", "tune_gc"]


class Runtime(RuntimeLoop, Executor):
    """Runs tasks on an allocation through an engine; `submit` returns a `TaskFuture`.

    A `concurrent.futures.Executor`: ``submit``, ``map`` and ``shutdown`` have the standard
    signatures and meaning, so a runtime drops into any code written for one; steerflow's
    extras (task options, killing running tasks) are extra keyword arguments.

    ``lost_retries`` is how often a task whose worker died (os._exit, segfault, OOM kill) is run
    again; that is on top of ``retries``, which counts the task's own failures. ``gc_threshold``:
    see `tune_gc` (None keeps Python's collector settings untouched).

    ``max_bypass``: after that many narrower tasks have started ahead of a task that does not fit
    yet (a wide one), it reserves its cores, which idle until it fits: the guarantee that a wide
    task is not starved (see `steerflow.scheduler`). None never reserves: greedy backfill, the
    policy of a ``ProcessPoolExecutor`` (whose tasks all fit one worker), which idles no core for a
    wide task but lets it wait for as long as narrower work keeps arriving.
    """

    def __init__(self, allocation: Allocation | None = None, engine: Engine | None = None,
                 run_dir: str | os.PathLike[str] | None = None,
                 quotas: dict[str, tuple[int | None, int | None]] | None = None,
                 lost_retries: int = 2, max_bypass: int | None = 64, gc_threshold: int | None = GC_THRESHOLD) -> None:
        check_max_bypass(max_bypass)  # (before anything is made: a wrong value leaves nothing behind)
        tune_gc(gc_threshold)
        self.engine: Engine = engine or LocalEngine()
        self.allocation = allocation or engines.discover(self.engine) or Allocation.detect()
        self._temporary_run_dir = run_dir is None  # (removed at the end if nothing was left in it)
        if run_dir is None:
            run_dir = tempfile.mkdtemp(prefix="steerflow-")
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.lost_retries = lost_retries
        serialize.cleanup_stale()  # shared memory left by drivers or workers that crashed
        # (a reservation for a wide task lets what is estimated to end before it start meanwhile: estimates.py)
        self._scheduler = Scheduler(self.allocation, quotas=quotas, max_bypass=max_bypass,
                                    estimator=RunTimeEstimates(self))
        self._fits: set[tuple] = set()  # task shapes already known to fit the allocation
        self._records: dict[int, TaskRecord] = {}  # unfinished tasks (and finished ones whose output is in use)
        # finished tasks' records live as long as their futures (the future holds its record): memory stays flat
        self._finished = FinishedRecords()
        self.finished_counts: dict[str, dict[str, int]] = {}  # pool -> final state -> tasks (for live displays)
        self._ids = itertools.count(1)
        self._futures_condition = SharedCondition()  # one for all its futures (see `SharedCondition`)
        self._inbox: deque[tuple] = deque()
        self._wake_pending = False
        self._waiting = True  # (until the loop runs: a post wakes it)
        self._deadlines: list[tuple[float, int, int]] = []
        self._active = 0  # tasks not yet finished
        self._listeners: list[Listener] = []
        self._partial_listeners: list[PartialListener] = []
        self._round_listeners: list[Callable[[], None]] = []
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
            spec = Function.call(fn, args, kwargs)  # (every option at its default: validated once)
        return self.submit_spec(spec)

    def submit_spec(self, spec: TaskSpec, task_id: int | None = None,
                    on_accept: Callable[[TaskFuture], None] | None = None) -> TaskFuture:
        """Queue a task description under an id of the caller's choosing (the campaign's stable keys).

        ``on_accept`` runs once every check passed, just before the task is queued: a campaign journals the
        task there, so a rejected submit leaves no row behind and a state row never precedes its task's.
        """
        if self._closing:
            if self.failure is not None:
                raise RuntimeBroken(f"The runtime's loop failed ({type(self.failure).__name__}: {self.failure}); "
                                    "it runs no more tasks. Create a new runtime.") from self.failure
            raise RuntimeClosed("This runtime has been shut down; create a new one to submit more tasks.")
        timeout, retries, priority = spec.timeout, spec.retries, spec.priority
        if (timeout is not None and (timeout.__class__ is not float and timeout.__class__ is not int
                                     or not 0 < timeout <= MAX_TIMEOUT)) \
                or retries.__class__ is not int or retries < 0 or priority.__class__ is not int:
            recheck_policy(spec)  # (changed since it was made: its fields are plain attributes)
        if spec.__class__ is not Function:
            recheck_program(spec)  # type: ignore[arg-type]
        self._check_fits(spec)
        if task_id is None:
            task_id = next(self._ids)
        elif task_id in self._records:
            raise ValueError(f"Task id {task_id} is already in use in this runtime.")
        future: TaskFuture = TaskFuture(self, task_id, self._futures_condition)
        request = Request(task_id, spec.ranks, spec.cores_per_rank, spec.gpus_per_rank,
                          -(-spec.memory_mb // spec.ranks), spec.nodes, spec.priority, spec.pool)
        record = TaskRecord(task_id, spec, future, request)
        if spec.after and any(not isinstance(d, TaskFuture) for d in spec.after):
            raise TaskSpecError("after", spec.after, "must list futures returned by submit().")
        deps: list[TaskFuture] = list(spec.after)
        if isinstance(spec, Function):
            deps.extend(find_futures(spec.args, spec.kwargs))
            if not deps:
                record.payload = self._encode_args(spec, spec.args, spec.kwargs)
        record.deps = deps
        if on_accept is not None:
            on_accept(future)
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

    def add_round_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` in the loop thread once per wake-up of the loop, after its state changes.

        A listener that gathers what the per-task listeners saw hands it on here in one go (one
        queue put and one wake-up of another thread per round instead of one per task).
        """
        self._post(("listen_round", listener))

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
            if self._waiting and not self._dead:  # (a Ctrl-C inside an earlier `_post` may have left its wake-up
                self.engine.wakeup()  # unsent, the flag saying it was sent)
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
    def _teardown(self) -> None:
        super()._teardown()
        if self._temporary_run_dir:  # a runtime per call of a library must not leave a folder in /tmp each time
            _remove_empty_dirs(self.run_dir)

    def _post(self, message: tuple) -> None:
        """Hand a message to the loop; wake it only if it waits (or is about to) and nobody woke it yet.

        The loop sets ``_waiting`` before it looks at the inbox, and we look at ``_waiting`` after the
        append: either it sees the message, or we see it waiting. A loop at work finds the message at
        its next round without a wake-up (a burst of submits costs no eventfd write per round).
        """
        self._inbox.append(message)
        if self._waiting:
            if not self._wake_pending:
                self._wake_pending = True
                self.engine.wakeup()
            elif len(self._inbox) == 2 and self._scheduler.free_cores() and HANDOFF_S \
                    and threading.get_ident() != self._thread.ident:
                # a burst into a runtime with idle cores: let the woken loop start the first tasks now. It needs the
                # GIL, which a thread that keeps submitting gives up only after the switch interval (5 ms): the
                # idle cores' first tasks started 1-7 ms late
                time.sleep(HANDOFF_S)


    def _check_fits(self, spec: TaskSpec) -> None:
        """Raise if the task could never run here. The allocation does not change: a shape that fits once always does."""
        shape = (spec.__class__, spec.ranks, spec.cores_per_rank, spec.gpus_per_rank, spec.memory_mb, spec.nodes,
                 spec.pool)
        if shape in self._fits and spec.cores_per_rank.__class__ is int:
            return
        recheck_resources(spec)  # (changed since it was made: 0 or 1.5 cores broke the scheduler, so every task)
        check_fits(spec, self.allocation, self._scheduler)
        if len(self._fits) >= 4096:
            self._fits.clear()
        self._fits.add(shape)


def _task_id(task: TaskFuture | int) -> int:
    return task.task_id if isinstance(task, TaskFuture) else int(task)


def _remove_empty_dirs(top: Path) -> None:
    """``top`` and the folders below it, those that hold nothing (a program's output stays, and its folders)."""
    for folder, _, _ in sorted(os.walk(top), key=lambda entry: -len(entry[0])):
        try:
            os.rmdir(folder)
        except OSError:
            pass


def _shutdown_at_exit(ref: weakref.ref) -> None:
    """As the standard executors do at interpreter exit: the submitted tasks finish first (a script that
    submits and ends loses nothing). Ctrl-C while it waits stops them instead."""
    runtime = ref()
    if runtime is None or runtime._closed:
        return
    pending = sum(1 for record in list(runtime._records.values()) if not record.state.finished)
    if pending and not runtime._closing:
        print(f"steerflow: waiting for {pending} submitted task(s) to finish before Python exits, as "
              "concurrent.futures executors do (Ctrl-C stops them; shutdown(cancel_futures=True) or a `with` "
              "block says what you want).", file=sys.stderr, flush=True)
    try:
        runtime.shutdown(wait=True)
    except KeyboardInterrupt:
        runtime.shutdown(wait=True, cancel_futures=True, kill=True)
