"""Pipelining beside tasks wider than one core: a core that idles while a wider task waits for more cores.

A task queued behind a running one (see `steerflow.pipelining`) is taken back and run on a core that
idles; this also holds while a task that needs more cores than are free waits (it cannot have the idle
core anyway). Before, the queued task stayed behind the long one, and the idle core waited for both.
"""

from __future__ import annotations

from pathlib import Path

from steerflow import Allocation, Function, TaskState

from .conftest import wait_until
from .test_pipelining import BOUND, block_until, queued, stamp, wait_for


def test_a_queued_task_is_stolen_by_an_idle_core_while_a_wider_task_waits(make_runtime, tmp_path):
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=2))
    gate, mark_a, gate_b, mark_b = (str(tmp_path / n) for n in ("gate", "a-runs", "gate-b", "b-runs"))
    a = rt.submit(block_until, gate, mark_a)  # long: ends when the test says so
    wait_for(mark_a)
    b = rt.submit(block_until, gate_b, mark_b)
    wait_for(mark_b)
    c = rt.submit(stamp)
    assert queued(rt, c)
    assert rt._queued[c.task_id].id == a.task_id, "queued behind the newer task: the test proves nothing"
    wide = rt.submit(Function(stamp, cores=2))
    assert wait_until(lambda: wide.state is TaskState.WAITING, timeout=BOUND)
    Path(gate_b).touch()  # a core idles; the 2-core task cannot have it: the queued one must run there now
    try:
        c.result(timeout=BOUND / 3)
        assert not a.done(), "the long task ended first: the test proves nothing"
        assert not wide.done()
        assert len(rt.task(c.task_id).attempts) == 1  # taken back before it started: no attempt counted
    finally:
        Path(gate).touch()
    assert a.result(timeout=BOUND) <= wide.result(timeout=BOUND)  # the wide task still ran, once both were free
