"""What the runtime keeps about each task (`TaskRecord`, its `Attempt`s), and the driver's GC setting.

Listeners (journal, campaign, status) read records; only the runtime's loop thread writes them.
A finished record keeps what a status or a journal needs (state, attempts, times) and lets go
of the rest, so results streaming through a runtime are freed as their users let go of them.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass

from . import serialize
from .futures import TaskFuture
from .scheduler import Placement, Request
from .task import TaskSpec, TaskState

GC_THRESHOLD = 10_000


def tune_gc(threshold: int | None = GC_THRESHOLD) -> None:
    """Raise Python's generation-0 collection threshold (700 by default) in the driver.

    A driver that holds a hundred thousand live tasks otherwise spends ~30 % of the scheduler's
    time in the cyclic collector, which re-walks them on every full collection (measured:
    `steerflow bench scheduler`, 49,700 -> 62,600 placements/s). Dask's scheduler throttles its
    collector for the same reason. Only ever raises the threshold; None leaves it alone.
    """
    import gc

    if threshold is not None:
        first, *rest = gc.get_threshold()
        if first < threshold:
            gc.set_threshold(threshold, *rest)


@dataclass(slots=True)
class Attempt:
    """One try of a task: where it ran, when, and how it ended."""

    number: int
    nodes: tuple[str, ...]
    started: float
    ended: float = 0.0
    outcome: str = ""
    message: str = ""
    times: tuple[float, ...] = ()  # the engine's (received, started, returned, result serialised), if known


class TaskRecord:
    """The runtime's view of one task; read by listeners (journal, campaign, status)."""

    __slots__ = ("id", "spec", "state", "_future", "request", "payload", "deps", "waiting_on", "dependents",
                 "placement", "attempts", "lost", "kill_reason", "submitted", "ready", "started", "ended", "result_blob",
                 "output", "inputs", "__weakref__")

    def __init__(self, task_id: int, spec: TaskSpec, future: TaskFuture, request: Request) -> None:
        self.id = task_id
        self.spec = spec
        self.state = TaskState.NEW
        self.future = future
        self.request = request
        self.payload: bytes | None = None
        self.deps: list[TaskFuture] = []
        self.waiting_on = 0
        self.dependents: list[TaskRecord] = []
        self.placement: Placement | None = None
        self.attempts: list[Attempt] = []
        self.lost = 0
        self.kill_reason = ""
        self.submitted = time.time()
        self.ready = 0.0  # its dependencies were met and it was queued for placement
        self.started = 0.0
        self.ended = 0.0
        self.result_blob: bytes | None = None  # the pickled value as it came back (the journal reuses it)
        self.output: serialize.Encoded | None = None  # that value, while dependents may take it by reference
        self.inputs: list[TaskRecord] = []  # tasks whose results this one's arguments may refer to

    @property
    def future(self) -> TaskFuture | None:
        """The task's future; once the task has finished, only while someone else still holds it (else None).

        A finished record does not keep its value alive: results streaming through a runtime
        are freed as their users let go of them, as with any executor.
        """
        future = self._future
        return future() if future.__class__ is weakref.ref else future

    @future.setter
    def future(self, future: TaskFuture) -> None:
        self._future = future

    def let_go(self) -> None:
        """Finished for good: keep the record (state, attempts, times), drop what only a running task needs."""
        future = self._future
        if future.__class__ is not weakref.ref:
            self._future = weakref.ref(future)
        self.deps = []
        self.result_blob = None

    def __repr__(self) -> str:
        return f"<Task {self.id} {self.spec!r} {self.state.value}>"


class FinishedRecords:
    """Finished tasks' records by id, each kept only as long as something else holds it (its future does).

    What a `weakref.WeakValueDictionary` does, for less: that builds a Python-level keyed reference and
    a callback per entry (~1.5 us on every task's path in the loop). This keeps plain weak references
    and sweeps the dead ones out whenever the table has doubled since the last sweep, so it never holds
    more than twice the live records (plus a floor) and costs O(1) per task. Written by the loop thread
    only; read from any thread (a sweep replaces the table: readers keep the one they took).
    """

    __slots__ = ("_refs", "_sweep_at")

    FLOOR = 1024

    def __init__(self) -> None:
        self._refs: dict[int, weakref.ref] = {}
        self._sweep_at = self.FLOOR

    def add(self, record: TaskRecord) -> None:
        refs = self._refs
        refs[record.id] = weakref.ref(record)
        if len(refs) >= self._sweep_at:
            live = {task_id: ref for task_id, ref in list(refs.items()) if ref() is not None}
            self._refs = live
            self._sweep_at = max(self.FLOOR, 2 * len(live))

    def get(self, task_id: int) -> TaskRecord | None:
        ref = self._refs.get(task_id)
        return None if ref is None else ref()

    def values(self) -> list[TaskRecord]:
        """The records still held (a copy)."""
        return [record for ref in list(self._refs.values()) if (record := ref()) is not None]

    def __len__(self) -> int:
        """Entries, dead ones not yet swept out included."""
        return len(self._refs)
