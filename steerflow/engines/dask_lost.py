"""The Dask engine when nodes leave: their tasks reported lost, once each (a part of `steerflow.engines.dask`).

`NodeLoss._nodes_changed` turns the nodes that went away into "lost" events for the tasks that ran there (and
"requeue" for those only queued there), marks the results they kept as lost, and gives the runtime the new
allocation. A task on several nodes (MPI) is lost as soon as one of its nodes goes; a node of it that lives on
is told to kill its ranks, and reports that attempt's end later: `_late_end` keeps that second end from the
runtime, which had requeued the task on the first (it submitted the task to the scheduler again: "ValueError:
Request id 1 is already waiting", and the task failed).
"""

from __future__ import annotations

from typing import Any

from ..resources import Allocation
from .base import Event


class NodeLoss:
    """A base of `DaskEngine` (its state is set in `DaskEngine.__init__`); not used on its own."""

    _lock: Any
    _dirty: bool
    _map: list[int] | None
    _nodes: list
    _links: dict
    _view: Any
    _allocation: Any
    _refs: dict[str, int]
    _lost: dict[str, str]
    _tasks: dict[int, tuple[int, int, frozenset[int]]]
    _launches: dict
    _behind: dict[int, int]
    _queued_on: dict[int, int]
    _withdrawing: set[int]
    _held_ends: dict[int, Event]
    _ended: set[tuple[int, int]]
    _started: bool

    def _link(self, index: int) -> Any:  # DaskEngine's
        raise NotImplementedError

    def _flush(self) -> None:  # DaskEngine's
        raise NotImplementedError

    def _late_end(self, event: Event) -> bool:
        """True for an event of an attempt already reported lost (dropped); its end clears the mark."""
        if event.kind not in ("partial", "started"):
            self._ended.discard((event.task_id, event.attempt))
        return True

    def _nodes_changed(self) -> list[Event]:
        """Lost events for tasks on nodes that went away, then the new allocation for the runtime."""
        out: list[Event] = []
        with self._lock:
            self._dirty = False
            if self._map is None:
                allocation = self._allocation = Allocation(tuple(self._nodes), source="dask")
                offline = frozenset(i for i, link in self._links.items() if not link.online)
            else:  # a declared allocation keeps its shape; its nodes go offline with their workers
                allocation = self._view  # type: ignore[assignment]
                offline = frozenset(i for i, j in enumerate(self._map) if not self._links[j].online)
        if self._refs:  # results kept on nodes now gone: recomputed where a task still reads one (`_recompute`)
            gone_nodes = {i for i, link in self._links.items() if not link.online}
            for key, owner in self._refs.items():
                if owner in gone_nodes and key not in self._lost:
                    self._lost[key] = self._nodes[owner].name
        for task_id, (first, attempt, nodes) in list(self._tasks.items()):
            gone = nodes & offline
            if gone:
                del self._tasks[task_id]
                self._launches.pop(task_id, None)
                self._behind.pop(task_id, None)
                names = ", ".join(allocation.nodes[i].name for i in sorted(gone))
                if task_id in self._queued_on:  # queued behind another there, never started: back, no attempt counted
                    del self._queued_on[task_id]
                    self._withdrawing.discard(task_id)
                    held = self._held_ends.pop(task_id, None)
                    if held is not None:
                        out.append(held)
                    out.append(Event("requeue", task_id, attempt, text=f"its node {names} left the Dask cluster"))
                    continue
                out.append(Event("lost", task_id, attempt, text=f"its node {names} left the Dask cluster", code=-1))
                if nodes - offline:  # a node of it lives on, and will report this attempt's end too: not heard
                    if len(self._ended) >= 65536:
                        self._ended.clear()  # (bounded: the ends of tasks of nodes that never answered)
                    self._ended.add((task_id, attempt))
                link = self._link(first)
                if first not in offline and link is not None:
                    link.pending.append(("kill", task_id))  # an MPI task's other ranks
        if self._started:
            out.append(Event("nodes", 0, 0, (allocation, offline)))
        self._flush()
        return out
