"""Worker pipelining: the runtime loop's half of running a function queued one-deep on a busy worker.

Pipelining (engines with `launch_behind`/`withdraw`, see `steerflow.engines.base.Pipelining`): when
tasks wait and no core is free, the loop releases a running one-slot function task's booking
*ahead* of its end, so the scheduler, by its own rules, places the next task there. A function
placed on exactly those cores is written to that task's warm worker as *queued*: it starts the
moment the running one ends, with no round trip to the driver in between. Any other placement on
cores held ahead is *held* in the driver until they truly free. So no two tasks ever run on the
same cores; a queued task becomes RUNNING (its attempt's start, its timeout) when the engine
reports that it started. A queued task that has not started is taken back (withdrawn) when it is
cancelled, killed or preempted, when its worker dies (no attempt counted), and when a core idles
with nothing else to run (it is *stolen* and runs there). Only functions known to run at least
`PIPELINE_MIN_RUN_S` are released ahead. ``STEERFLOW_PIPELINE=0`` turns it off, ``=all`` ignores
the run-time bound.

A mixin of `steerflow.runloop.RuntimeLoop`: every method runs in the loop thread. The engine's half
is `steerflow.engines.base.Pipelining` (the local engine's: `steerflow.engines.pool`).
"""

from __future__ import annotations

import functools
import heapq
import os
import time
import types
from typing import Any

from .engines.base import Engine, Event, Launch, Pipelining
from .records import Attempt, TaskRecord
from .resources import Allocation
from .scheduler import Scheduler
from .task import Executable, Function, TaskState

# A function is queued behind others only if it runs at least this long (so far; unknown ones are). Shorter
# ones gain nothing: the driver's own turn per task (~0.05 ms) is then the bottleneck, and queueing adds to it
# (session 6, with the workers in the driver's autogroup: paired A/Bs of the 0 MB shapes neutral, 0.98-1.05,
# for ~10 % more of the loop's CPU per task; before that fix queueing had hidden some of the hand-over waits).
PIPELINE_MIN_RUN_S = 0.0005


def run_time_key(fn: Any) -> Any:
    """What a function's run times are kept under: its code, never the callable itself.

    A key that held the callable would keep a bound method's object alive (a model the driver dropped,
    with its arrays) and give each closure or ``obj.method`` access its own entry; closures of one
    ``def`` and methods of one class share their estimate.
    """
    code = getattr(fn, "__code__", None)  # a function, or a bound method (it passes its function's on)
    if code.__class__ is types.CodeType:
        return code
    while isinstance(fn, functools.partial):
        fn = fn.func
    fn = getattr(fn, "__func__", fn)  # a bound method: its function
    code = getattr(fn, "__code__", None)
    if code is not None:
        return code
    return fn if isinstance(fn, (types.BuiltinFunctionType, type)) else type(fn)


class Pipeline:
    """Release ahead, queue behind, hold, take back and steal (see the module docstring).

    It uses the loop's state and these of its methods: ``_launch``, ``_start_all``, ``_set_state``,
    ``_fail_alone``, ``_retire``.
    """

    engine: Engine
    allocation: Allocation
    _scheduler: Scheduler
    _records: dict[int, TaskRecord]
    _deadlines: list[tuple[float, int, int]]

    def _init_pipelining(self) -> None:
        mode = os.environ.get("STEERFLOW_PIPELINE", "1")
        self._pipelining = isinstance(self.engine, Pipelining) and mode != "0"
        self._pipeline_all = mode == "all"  # (for measuring: also functions that run shorter than the driver's turn)
        # function -> its smoothed run time on its worker (`run_time_key`): the scheduler's estimates read it
        self._run_times: dict[Any, float] = {}
        self._ahead: dict[tuple, TaskRecord] = {}  # ("c"|"g", node, index) -> running task whose booking went ahead
        self._ahead_keys: dict[int, frozenset] = {}  # that task's id -> its keys
        self._candidates: dict[int, TaskRecord] = {}  # running one-slot functions, oldest first: may go ahead
        self._queued: dict[int, TaskRecord] = {}  # task queued on a worker -> the task it waits behind
        self._queue_of: dict[int, TaskRecord] = {}  # the reverse
        self._held: dict[int, set[int]] = {}  # task placed on cores held ahead, waiting in the driver -> whose end
        self._holders: dict[int, list[TaskRecord]] = {}  # the reverse
        self._holds: set[int] = set()  # tasks whose cores are booked as -id (a task queued behind was taken back)
        self._unheld: list[TaskRecord] = []  # held tasks whose cores are free now: launched by the next dispatch
        self._stolen: set[int] = set()  # stolen since a task last ended (not stolen twice: no back and forth)
        self._stealing: set[int] = set()  # asked back to run on an idle core, the answer not heard yet

    def _queueable(self, spec: Any) -> bool:
        """A function, or a plain program where the engine runs programs in its warm workers (they then go
        ahead and queue behind as functions do: a core passes from one to the other with no driver between)."""
        return isinstance(spec, Function) or (isinstance(spec, Executable) and spec.launcher == "none"
                                              and getattr(self.engine, "programs_in_workers", False))

    @staticmethod
    def _keys(placement: Any) -> frozenset:
        keys = []
        for slot in placement.slots:
            node = slot.node
            keys.extend(("c", node, c) for c in slot.cores)
            keys.extend(("g", node, g) for g in slot.gpus)
        return frozenset(keys)

    def _release_ahead(self) -> None:
        """Release running functions' bookings early, oldest first, while tasks wait and no core is free."""
        scheduler, candidates = self._scheduler, self._candidates
        while candidates and scheduler.n_waiting and not scheduler.free_cores():
            record = candidates.pop(next(iter(candidates)))
            if record.state is not TaskState.RUNNING or record.placement is None or record.kill_reason:
                continue
            keys = self._keys(record.placement)
            scheduler.release(record.id)
            self._ahead_keys[record.id] = keys
            for key in keys:
                self._ahead[key] = record
            placements = scheduler.schedule()
            if placements:
                self._start_all(placements)

    def _behind(self, record: TaskRecord, placement: Any, now: float) -> bool:
        """A placement on cores held ahead: queue it on the running task's worker, or hold it here. False: free."""
        keys = self._keys(placement)
        ahead = self._ahead
        owners = {ahead[k].id: ahead[k] for k in keys if k in ahead}
        if not owners:
            return False
        if len(owners) == 1:
            (owner,) = owners.values()
            if keys == self._ahead_keys[owner.id] and owner.id not in self._queue_of and owner.state is TaskState.RUNNING \
                    and not owner.kill_reason and self._queueable(record.spec) and record.request.ranks == 1 \
                    and record.request.nodes is None:
                attempt = len(record.attempts) + 1
                nodes = tuple(self.allocation.nodes[s.node].name for s in placement.slots)
                try:
                    queued = self.engine.launch_behind(  # type: ignore[attr-defined]
                        Launch(record.id, attempt, record.spec, placement, record.payload), owner.id)
                except Exception as exc:  # noqa: BLE001 - as a failed launch: this task fails alone
                    self._fail_alone(record, "launched", exc)
                    return True
                if queued:
                    record.attempts.append(Attempt(attempt, nodes, now))
                    record.kill_reason = ""
                    self._queued[record.id] = owner
                    self._queue_of[owner.id] = record
                    record.state = TaskState.PLACED  # (listeners see it wait until it runs: no row per state)
                    return True
        self._held[record.id] = set(owners)
        for owner in owners.values():
            self._holders.setdefault(owner.id, []).append(record)
        record.state = TaskState.PLACED
        return True

    def _free(self, record: TaskRecord) -> None:
        """The task's cores are truly free now: give back its booking, start what waited for them."""
        if self._pipelining:
            self._candidates.pop(record.id, None)
            if self._stolen:
                self._stolen.clear()
            keys = self._ahead_keys.pop(record.id, None)
            if keys is not None:  # released ahead: its booking is already someone else's
                for key in keys:
                    if self._ahead.get(key) is record:
                        del self._ahead[key]
                if record.id in self._holds:
                    self._holds.discard(record.id)
                    self._scheduler.release(-record.id)
                record.placement = None
                for held in self._holders.pop(record.id, ()):
                    waits = self._held.get(held.id)
                    if waits is None:
                        continue
                    waits.discard(record.id)
                    if not waits:  # launched by the next dispatch, after this task's end is told
                        del self._held[held.id]
                        self._unheld.append(held)
                return
        self._scheduler.release(record.id)
        record.placement = None

    def _take_back(self, record: TaskRecord) -> bool:
        """Take back a task placed on cores held ahead that has not started. False: it has started."""
        if record.id in self._held:
            for owner in self._held.pop(record.id):
                holders = self._holders.get(owner)
                if holders is not None and record in holders:
                    holders.remove(record)
            self._scheduler.release(record.id)  # (cores still held ahead stay guarded by the ahead table)
            record.placement = None
            return True
        owner = self._queued.get(record.id)
        if owner is None or not self.engine.withdraw(record.id):  # type: ignore[attr-defined]
            return False
        self._unqueued(record, owner)
        return True

    def _unqueued(self, record: TaskRecord, owner: TaskRecord) -> None:
        """A queued task that never started: off its owner's worker; the cores stay booked while the owner runs."""
        del self._queued[record.id]
        self._stealing.discard(record.id)
        if self._queue_of.get(owner.id) is record:
            del self._queue_of[owner.id]
        if owner.id in self._ahead_keys and owner.id not in self._holds:
            self._scheduler.rename(record.id, -owner.id)
            self._holds.add(owner.id)
        else:
            self._scheduler.release(record.id)
        record.placement = None
        record.attempts.pop()  # it never ran: no attempt

    def _steal(self) -> None:
        """A core idles and nothing waits: run tasks queued behind others there instead."""
        scheduler = self._scheduler
        booked: set = set()
        ahead_keys = self._ahead_keys
        for owner in self._queue_of:  # (an owner whose end came before its queued task's start has no keys left:
            booked |= ahead_keys.get(owner, frozenset())  # that task's own booking holds the cores meanwhile)
        for owner in self._holds:
            booked |= ahead_keys.get(owner, frozenset())
        for held in self._held:
            placement = self._records[held].placement
            if placement is not None:
                booked |= self._keys(placement)
        free = scheduler.free_cores() - sum(1 for k in self._ahead if k[0] == "c" and k not in booked)
        stealing = self._stealing
        if stealing:  # asked back already (an engine whose nodes answer later): each answer is meant for a free core
            stealing.intersection_update(self._queued)
            free -= sum(r.request.cores_per_rank for t in stealing if (r := self._records.get(t)) is not None)
        stolen = False
        for task_id in list(self._queued):
            if free < 1:
                break
            if task_id in self._stolen or task_id in stealing:  # (stolen before and queued again: let it be)
                continue
            record = self._records.get(task_id)
            if record is None or record.state.finished:  # (its end was heard before its start: nothing to take)
                continue
            if not self._take_back(record):
                # it started (or may have: the engine's node answers later, "started" or "requeue"): either way
                # this free core is spoken for until that answer, so no other queued task is taken back for it
                stealing.add(task_id)
                free -= record.request.cores_per_rank
                continue
            self._stolen.add(task_id)
            self._set_state(record, TaskState.WAITING)
            scheduler.submit(record.request)
            free -= record.request.cores_per_rank
            stolen = True
        if stolen:
            placements = scheduler.schedule()
            if placements:
                self._start_all(placements)

    def _on_started(self, record: TaskRecord, event: Event) -> None:
        """A queued task started on its worker: RUNNING from the worker's start, its timeout from then."""
        owner = self._queued.pop(record.id, None)
        if owner is None:  # not queued (any more): its start is heard after its end (which implied it), or twice
            return
        self._stealing.discard(record.id)
        if self._queue_of.get(owner.id) is record:
            del self._queue_of[owner.id]
        if record.state.finished:  # cancelled meanwhile: its kill is on its way
            return
        started = event.times[0] if event.times else time.time()
        record.started = record.attempts[-1].started = started
        self._set_state(record, TaskState.RUNNING)
        if record.spec.timeout is not None:
            heapq.heappush(self._deadlines, (time.monotonic() - max(0.0, time.time() - started) + record.spec.timeout,
                                             record.id, event.attempt))
        if self._pipelining:
            self._candidates[record.id] = record

    def _on_requeue(self, record: TaskRecord) -> None:
        """Its worker died (or was killed) before it started: back to waiting, no attempt counted."""
        owner = self._queued.get(record.id)
        if owner is None:
            return  # (already taken back)
        self._unqueued(record, owner)
        if record.state.finished:
            if record.output is None:
                self._retire(record)
            return
        self._set_state(record, TaskState.WAITING)
        self._scheduler.submit(record.request)
