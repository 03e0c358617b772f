"""The 0 MB shapes' per-task path (session 6, #13d): which functions are pipelined, the workers' session, the
engine's poller, and the table of finished records.

- A function known to run for microseconds is not queued behind a running one (``=all`` queues it).
- Warm workers are in the driver's session (its scheduler autogroup), each leading its own process group.
- `Poller` hands back the data of ready descriptors, as `selectors` did for the engine.
- `FinishedRecords` keeps a record exactly as long as something else holds it, and its table stays
  bounded while a stream of tasks goes through.
"""

from __future__ import annotations

import gc
import os
import weakref

import pytest

from steerflow import Allocation
from steerflow.engines.poller import Poller
from steerflow.records import FinishedRecords


def noop() -> None:
    return None


def _queued_after_warm_up(rt) -> list[int]:
    """The tasks of a 300-task bag queued behind running ones, once the function's run time is known."""
    for f in [rt.submit(noop) for _ in range(20)]:  # one at a time: its run time (microseconds) is known from here on
        f.result(timeout=60)
    engine = rt.engine
    real = engine.launch_behind
    queued: list[int] = []

    def counting(launch, behind):  # the engine's own method, counted
        ok = real(launch, behind)
        if ok:
            queued.append(launch.task_id)
        return ok

    engine.launch_behind = counting
    futures = [rt.submit(noop) for _ in range(300)]
    assert [f.result(timeout=60) for f in futures] == [None] * 300
    assert all(rt.task(f.task_id).attempts[-1].outcome == "done" for f in futures)
    return queued


def test_functions_shorter_than_the_bound_are_not_queued_unless_asked(make_runtime, monkeypatch):
    """Below `PIPELINE_MIN_RUN_S` the driver's turn is the bottleneck, and queueing costs it ~10 % more CPU a task
    for no gain (session 6, workers in the driver's autogroup); ``STEERFLOW_PIPELINE=all`` queues them anyway."""
    assert _queued_after_warm_up(make_runtime(allocation=Allocation.declare(nodes=1, cores=1))) == []
    monkeypatch.setenv("STEERFLOW_PIPELINE", "all")
    assert _queued_after_warm_up(make_runtime(allocation=Allocation.declare(nodes=1, cores=1)))


def test_the_poller_returns_the_data_of_ready_descriptors():
    poller = Poller()
    pipes = [os.pipe() for _ in range(3)]
    try:
        for i, (r, _) in enumerate(pipes):
            poller.register(r, 1, None if i == 0 else ("source", i))
        assert poller.select(0) == []
        os.write(pipes[0][1], b"x")
        os.write(pipes[2][1], b"x")
        assert sorted(poller.select(1.0), key=repr) == sorted([None, ("source", 2)], key=repr)
        with pytest.raises(KeyError):
            poller.register(pipes[1][0], 1, "again")
        poller.unregister(pipes[2][0])
        with pytest.raises(KeyError):
            poller.unregister(pipes[2][0])
        assert poller.select(0.001) == [None]
        os.close(pipes[0][0])  # closed before it is unregistered: no error
        poller.unregister(pipes[0][0])
        assert poller.select(0) == []
    finally:
        poller.close()
        for r, w in pipes:
            for fd in (r, w):
                try:
                    os.close(fd)
                except OSError:
                    pass


class _Record:
    __slots__ = ("id", "__weakref__")

    def __init__(self, task_id: int) -> None:
        self.id = task_id


def test_finished_records_live_as_long_as_they_are_held_and_the_table_stays_bounded():
    table = FinishedRecords()
    held = [_Record(i) for i in range(100)]
    for record in held:
        table.add(record)  # type: ignore[arg-type]
    for i in range(100, 50_100):  # a stream of tasks nobody holds
        table.add(_Record(i))  # type: ignore[arg-type]
        assert len(table) <= 2 * 100 + FinishedRecords.FLOOR
    gc.collect()
    assert table.get(7) is held[7] and table.get(50_000) is None and table.get(10**9) is None
    assert sorted(r.id for r in table.values()) == list(range(100))
    ref = weakref.ref(held[3])
    del held[3]
    gc.collect()
    assert ref() is None and table.get(3) is None and len(table.values()) == 99


def test_workers_lead_their_own_process_group_in_the_drivers_session(make_runtime):
    """In the driver's session, so in its scheduler autogroup (not one per worker); in a group of their own,
    so a worker's tree is killed as one and the terminal's signals to the driver's group do not reach them."""
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=2))
    assert rt.submit(noop).result(timeout=60) is None
    workers = [*rt.engine._idle, *rt.engine._busy.values()]
    assert workers
    for worker in workers:
        pid = worker.proc.pid
        assert os.getsid(pid) == os.getsid(0)
        assert os.getpgid(pid) == pid != os.getpgid(0)
