"""What an engine is: it carries out placements and reports what happened.

Engines never import the campaign or the ML code. The runtime's loop thread is the only
caller of an engine, except `wakeup`, which any thread may call to interrupt `wait`.
"""

from __future__ import annotations

import functools
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

from ..resources import Allocation
from ..scheduler import Placement
from ..task import TaskSpec


class FunctionKeys:
    """A number for each function an engine sends, with its bytes made once.

    Engines send a function's bytes to a worker the first time and only its number after. An entry
    lives as long as its function does (held weakly: the table must not keep a bound method's object,
    say a model the driver dropped, nor its bytes, alive). The table is also emptied when it holds
    ``limit`` functions (callables that cannot be held weakly are held until then), and ``on_clear``
    then runs (e.g. to forget which workers know which numbers); numbers are never reused, so a
    worker's old entries stay correct.
    """

    __slots__ = ("_entries", "_next", "_dumps", "_limit", "_on_clear")

    def __init__(self, dumps: Callable[[Any], bytes], limit: int = 4096,
                 on_clear: Callable[[], None] | None = None) -> None:
        self._entries: dict[int, tuple[Callable[[], object], int, bytes]] = {}
        self._next = 0
        self._dumps, self._limit, self._on_clear = dumps, limit, on_clear

    def get(self, fn: object) -> tuple[int, bytes]:
        """``fn``'s number and bytes (the same object gives the same number while the table holds it)."""
        entry = self._entries.get(id(fn))
        if entry is not None and entry[0]() is fn:  # (the object itself: an id is reused once an object is gone)
            return entry[1], entry[2]
        if len(self._entries) >= self._limit:
            self._entries.clear()
            if self._on_clear is not None:
                self._on_clear()
        self._next += 1
        try:
            ref: Callable[[], object] = weakref.ref(fn, functools.partial(self._forget, id(fn)))
        except TypeError:  # (no weak references to it: held until the table is emptied)
            ref = functools.partial(_same, fn)
        entry = (ref, self._next, self._dumps(fn))
        self._entries[id(fn)] = entry
        return entry[1], entry[2]

    def _forget(self, key: int, ref: object) -> None:
        """(A function is gone: its entry and bytes go; called by the collector, in any thread.)"""
        entry = self._entries.get(key)
        if entry is not None and entry[0] is ref:
            self._entries.pop(key, None)


def _same(value: object) -> object:
    return value


@dataclass(slots=True)
class Launch:
    """One attempt of one task on its placement."""

    task_id: int
    attempt: int
    spec: TaskSpec
    placement: Placement
    payload: bytes | None = None  # pickled (args, kwargs) of a Function task


@dataclass(slots=True)
class Event:
    """What an engine reports about an attempt.

    ``kind`` is ``"ok"`` (value holds the pickled result), ``"error"`` (value holds the pickled
    exception, ``text`` the remote traceback), ``"exit"`` (an executable ended: ``code``), or
    ``"lost"`` (its process died or was killed: ``code`` is the wait status, ``text`` why), or
    ``"partial"`` (the attempt, still running, streamed a value: pickled bytes when ``text`` is
    ``"pickle"``, one JSON line when it is ``"json"``), or ``"started"`` / ``"requeue"`` (a task queued
    by `Pipelining.launch_behind` started, ``times[0]`` being when; or went back unstarted), or ``"nodes"`` (the engine's nodes
    changed: ``value`` is ``(allocation, offline node indices)``, the allocation grown by
    appending, never reordered; ``task_id`` is 0).
    ``times``: (received, started, returned, result serialised) on the executing side's clock,
    where the engine knows them; the journal splits the task's overhead with them.
    """

    kind: str
    task_id: int
    attempt: int
    value: Any = None
    text: str = ""
    code: int = 0
    times: tuple[float, ...] | None = None


class Engine(Protocol):
    def start(self, allocation: Allocation, run_dir: Path) -> None: ...

    def launch(self, launch: Launch) -> None: ...

    def kill(self, task_id: int) -> None: ...

    def release_payload(self, task_id: int, payload: bytes) -> None:
        """The task is finished for good: free (or recycle) its argument payload's shared memory."""
        ...

    def preempt(self, task_id: int) -> None: ...

    def suspend(self, task_id: int) -> None: ...

    def resume(self, task_id: int) -> None: ...

    def wait(self, timeout: float | None) -> list[Event]: ...

    def wakeup(self) -> None: ...

    def shutdown(self) -> None: ...


@runtime_checkable
class Pipelining(Protocol):
    """What an engine offers to run a function task queued one-deep behind a running one (optional).

    The runtime's loop (`steerflow.runloop`) uses it when tasks wait and no core is free. The contract:

    - ``launch_behind(launch, behind)``: send ``launch`` (a one-slot `Function` task placed on
      exactly the cores and GPUs of running task ``behind``) to the worker that runs ``behind``, to
      start there the moment ``behind`` ends, with no round trip to the driver. Return False, having
      sent nothing, where it cannot (no such worker, another binding, one already queued there, too
      large): the runtime then holds the task until ``behind`` ends and launches it as usual.
    - Once queued, the engine reports exactly one of: ``Event("started", id, attempt, times=(t,))``
      when it starts (``t``: when, on the engine's clock; it must come after ``behind``'s end event),
      then its end as for any task; or ``Event("requeue", id, attempt)`` when its worker is lost or
      killed before it started (the runtime puts it back without counting an attempt).
    - ``withdraw(task_id)``: take a queued task back. True only if it will never start (and no event
      about it follows); False if it has started or may have (the runtime then treats it as running:
      `kill` and `preempt` must reach it, even before its ``"started"`` event is read).
    - ``kill(behind)`` must not silently run the queued task: report ``"requeue"``, or start and end it.
    """

    def launch_behind(self, launch: Launch, behind: int) -> bool: ...

    def withdraw(self, task_id: int) -> bool: ...
