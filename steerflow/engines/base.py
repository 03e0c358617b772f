"""What an engine is: it carries out placements and reports what happened.

Engines never import the campaign or the ML code. The runtime's loop thread is the only
caller of an engine, except `wakeup`, which any thread may call to interrupt `wait`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..resources import Allocation
from ..scheduler import Placement
from ..task import TaskSpec


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
    ``"pickle"``, one JSON line when it is ``"json"``), or ``"nodes"`` (the engine's nodes
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
