"""The runtime's loop does not depend on the order in which an engine reports a queued task's start.

`engines.base.Pipelining` asks an engine to report a queued task's ``"started"`` after the end of the task
it waited behind, and before its own end. An engine whose nodes are far away (Dask) can hear these
in another order, and the loop must stay whole either way: every task ends once, with its result, and
the loop's tables of queued tasks are empty afterwards. The real local engine runs the tasks here; a
subclass only holds back the ``"started"`` events it reads and hands them on later:

- after the next end of another task (the loop works a while with the task before gone and the queued
  one not heard to start: an idle core then looks for a queued task to take back);
- after the queued task's own end (its end is heard before its start).
"""

from __future__ import annotations

from pathlib import Path

from steerflow import Allocation, TaskState
from steerflow.engines.base import Event
from steerflow.engines.local import LocalEngine

from .test_pipelining import BOUND, block_until, queued, stamp, wait_for

ENDS = ("ok", "error", "exit", "lost")


class LateStarts(LocalEngine):
    """The local engine, whose ``"started"`` events reach the runtime late: each is held until an end event
    read in a later `wait` has been handed on, and comes with the call after that one."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[Event] = []
        self.due: list[Event] = []  # handed on by the next call
        self.reordered = 0

    def wait(self, timeout: float | None) -> list[Event]:
        out, self.due = self.due, []
        events = super().wait(0 if out else timeout)
        fresh = []
        for event in events:
            if event.kind == "started":
                fresh.append(event)
            else:
                out.append(event)
                if event.kind in ENDS and self.held:
                    self.due.extend(self.held)
                    self.reordered += len(self.held)
                    self.held.clear()
        self.held.extend(fresh)
        if self.due:
            self.wakeup()  # (the next call must come soon, with nothing else to read)
        return out


def test_a_queued_task_heard_to_start_after_another_end_while_a_core_idles(make_runtime, tmp_path):
    """The task before ends; the queued one's start is heard only after another task's end has freed a
    core with nothing waiting (the loop then looks for queued tasks to take back)."""
    engine = LateStarts()
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=2), engine=engine)
    gate_a, mark_a, gate_c, mark_c, gate_b, mark_b = (str(tmp_path / n) for n in ("ga", "a", "gc", "c", "gb", "b"))
    a = rt.submit(block_until, gate_a, mark_a)
    wait_for(mark_a)
    c = rt.submit(block_until, gate_c, mark_c)
    wait_for(mark_c)
    b = rt.submit(block_until, gate_b, mark_b)
    assert queued(rt, b)
    assert rt._queued[b.task_id].id == a.task_id
    try:
        Path(gate_a).touch()
        a.result(timeout=BOUND)  # heard; b started on a's worker, but the loop has not heard that yet
        wait_for(mark_b)
        Path(gate_c).touch()  # a core idles, nothing waits, b is still queued as far as the loop knows
        c.result(timeout=BOUND)
    finally:
        for g in (gate_a, gate_c, gate_b):
            Path(g).touch()
    b.result(timeout=BOUND)
    assert engine.reordered >= 1, "the engine handed the start on in order: the test proves nothing"
    assert rt.failure is None
    assert [x.outcome for x in rt.task(b.task_id).attempts] == ["done"]
    assert not rt._queued and not rt._queue_of and not rt._stealing


def test_a_queued_task_whose_end_is_heard_before_its_start(make_runtime, tmp_path):
    """A short task queued behind another: its end reaches the loop before its start."""
    engine = LateStarts()
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=1), engine=engine)
    states: list[TaskState] = []
    gate, mark = str(tmp_path / "gate"), str(tmp_path / "a")
    a = rt.submit(block_until, gate, mark)
    wait_for(mark)
    b = rt.submit(stamp, str(tmp_path / "b"))
    assert queued(rt, b)
    rt.add_listener(lambda record, state: states.append(state) if record.id == b.task_id else None)
    Path(gate).touch()
    a.result(timeout=BOUND)
    b.result(timeout=BOUND)
    c = rt.submit(stamp)  # the loop still runs tasks afterwards
    c.result(timeout=BOUND)
    assert engine.reordered >= 1, "the engine handed the start on in order: the test proves nothing"
    assert rt.failure is None
    record = rt.task(b.task_id)
    assert [x.outcome for x in record.attempts] == ["done"]
    assert record.attempts[0].started <= record.attempts[0].ended
    assert states == [TaskState.RUNNING, TaskState.DONE], states  # RUNNING told once, before its end
    assert not rt._queued and not rt._queue_of and not rt._stealing
