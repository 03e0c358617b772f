"""The Dask engine's soft timeouts, and a timeout's clock from a task's real start (a part of `steerflow.engines.dask`).

As on the local engine (`steerflow.interrupts`): at a function task's deadline the runtime asks the engine to
`interrupt` it; the driver tells the task's node, whose agent has its warm worker raise `TimedOut` in the task (the
worker stays warm), or kills the task at once where that cannot be done (a program run by a warm worker, a worker
suspended or still starting). The runtime kills the task `interrupts.TIMEOUT_GRACE_S` later if it still runs.
Before, every timeout on Dask killed the task's warm worker, and the node started another (a Python start each).

A task sent to a warm worker that is still starting (a new node, or a worker replacing one killed) waits in its
pipe: the node says so ("late") and, when the worker is up, when the task began ("begun"), and `late_start` gives
the runtime that start, so the timeout counts from there (not from the driver's send, which counted the worker's
start: under load a task could time out before it began). Neither message is sent for a task whose worker was ready.
"""

from __future__ import annotations

import time
from typing import Any

from .base import Launch


class SoftTimeouts:
    """A base of `DaskEngine` (its state is set in `DaskEngine.__init__`); not used on its own."""

    _tasks: dict[int, tuple[int, int, frozenset[int]]]
    _launches: dict[int, Launch]
    _queued_on: dict[int, int]
    _late: dict[int, tuple[int, float | None]]  # task -> (attempt, the monotonic time it began; None: not yet)

    def _link(self, index: int) -> Any:  # DaskEngine's
        raise NotImplementedError

    def interrupt(self, task_id: int) -> bool:
        """At a function task's deadline: ask its node to raise `TimedOut` in it (the node kills it at once where it
        cannot). False where the driver cannot ask (not a function, queued behind another, its node gone): the
        runtime kills it. The runtime kills it anyway if it still runs a grace later."""
        where = self._tasks.get(task_id)
        if where is None or task_id not in self._launches or task_id in self._queued_on:
            return False
        link = self._link(where[0])
        if link is None or not link.online:
            return False
        link.pending.append(("interrupt", task_id))
        return True

    def late_start(self, task_id: int) -> float | None:
        """At a function task's deadline: None if it has not begun (its node's warm worker is still starting), the
        monotonic time it began where its node said it began late, else 0.0 (it began as it was sent)."""
        late = self._late.get(task_id)
        if late is None:
            return 0.0
        where = self._tasks.get(task_id)
        if where is None or where[1] != late[0]:
            return 0.0
        return late[1]

    def _on_late(self, kind: str, task_id: int, attempt: int, times: Any) -> None:
        """A node's "late" (the task waits for its warm worker to start) or "begun" (it began then: ``times[0]``, on
        the driver's clock)."""
        if kind == "late":
            self._late[task_id] = (attempt, None)
        elif self._late.get(task_id, (None,))[0] == attempt:
            began = times[0] if times else time.time()
            self._late[task_id] = (attempt, time.monotonic() - max(0.0, time.time() - began))
