"""Worker pipelining on the Dask engine (`engines.base.Pipelining`), on a real cluster: a `dask scheduler`
and 2 `dask worker` processes on 127.0.0.1, each declaring a node of 2 cores.

The driver sends a task queued behind a running one to that task's node; the node's agent queues it on
the task's warm worker (or holds it, where the worker cannot take it) and starts it the moment the one
before ends, with no round trip to the driver. A withdrawal (cancel, kill, steal) goes to the node,
which answers "requeue" if the task had not started. Checked: the local engine's pipelining tests,
unchanged, on Dask nodes; a task too large to wait in a worker's pipe is held on its node and still
starts without the driver; preempting a queued task runs it with its new arguments only; a node lost
with a queued task hands it back without a failed attempt.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from steerflow import Allocation, Runtime, TaskState  # noqa: E402
from steerflow.engines.dask import DaskEngine  # noqa: E402
from steerflow.proctree import descendants  # noqa: E402

from . import test_pipelining as local  # noqa: E402
from .conftest import wait_until  # noqa: E402
from .dask_cluster import DaskCluster  # noqa: E402
from .test_pipelining import BOUND, block_until, queued, stamp, wait_for  # noqa: E402


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = DaskCluster(tmp_path_factory.mktemp("dask-pipe"))
    c.start_scheduler()
    c.start_worker("node0", cores=2, host="localhost")
    c.start_worker("node1", cores=2, host="127.0.0.1")
    c.wait_workers(2)
    yield c
    c.stop()


@pytest.fixture
def make_runtime(cluster, tmp_path):
    """As the local tests' fixture, on the Dask engine (a declared allocation runs on the first workers)."""
    made: list[Runtime] = []

    def make(**kwargs) -> Runtime:
        kwargs.setdefault("run_dir", tmp_path / f"run{len(made)}")
        rt = Runtime(engine=DaskEngine(cluster.address, min_nodes=2), **kwargs)
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.shutdown(kill=True)
    assert wait_until(lambda: not any(descendants(p.pid) for p in cluster.workers.values()), timeout=15), \
        {name: descendants(p.pid) for name, p in cluster.workers.items()}


LOCAL_TESTS = [
    "test_a_queued_task_starts_while_the_driver_is_busy",
    "test_never_two_running_tasks_on_the_same_cores",
    "test_the_timeout_of_a_queued_task_counts_from_its_start",
    "test_cancelling_a_queued_task_withdraws_it_and_spares_the_running_one",
    "test_a_worker_that_dies_hands_its_queued_task_back_without_a_failed_attempt",
    "test_a_queued_task_is_stolen_by_an_idle_core",
]


@pytest.mark.parametrize("name", LOCAL_TESTS)
def test_pipelining_tests_of_the_local_engine_pass_on_dask(name, make_runtime, tmp_path):
    getattr(local, name)(make_runtime, tmp_path)


def test_a_task_too_large_for_the_workers_pipe_is_held_on_its_node(make_runtime, tmp_path):
    """The warm worker cannot take it (over `pool.QUEUE_MAX_BYTES`): the node's agent holds it and starts
    it when the task before ends, still without the driver."""
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=1))
    rt.submit(stamp_len, "").result(timeout=BOUND)  # its module imported on the node's warm worker (slow here)
    gate, mark = str(tmp_path / "gate"), str(tmp_path / "a-runs")
    a = rt.submit(block_until, gate, mark)
    wait_for(mark)
    big = "x" * 200_000  # pickled in-band into the task message
    b = rt.submit(stamp_len, big)
    assert queued(rt, b)
    stall = 3.0

    def slow_listener(record, state):  # the driver's loop, stalled as the first task's result comes back
        if record.id == a.task_id and state is TaskState.DONE:
            time.sleep(stall)

    rt.add_listener(slow_listener)
    Path(gate).touch()
    a_end = a.result(timeout=BOUND)
    b_ran, size = b.result(timeout=BOUND)
    assert size == len(big)
    assert b_ran >= a_end, "the held task ran beside the one it was queued behind"
    assert b_ran - a_end < stall * 0.67, f"the held task started {b_ran - a_end:.2f} s after the first ended"
    assert [x.outcome for x in rt.task(b.task_id).attempts] == ["done"]


def stamp_len(data: str) -> tuple[float, int]:
    return time.time(), len(data)


def test_preempting_a_queued_task_runs_it_with_its_new_arguments_only(make_runtime, tmp_path):
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=1))
    gate, mark = str(tmp_path / "gate"), str(tmp_path / "a-runs")
    old, new = str(tmp_path / "old"), str(tmp_path / "new")
    a = rt.submit(block_until, gate, mark)
    wait_for(mark)
    b = rt.submit(stamp, old)
    assert queued(rt, b)
    states: list[TaskState] = []
    rt.add_listener(lambda record, state: states.append(state) if record.id == b.task_id else None)
    rt.preempt(b, args=(new,))
    # the node takes it back (WAITING again), or preempts it as it starts; before the gate opens, either
    # way (touched at once, the one before could end first and the task start with the old arguments:
    # the preempt would then come after it ran, as for any task that ends before its preempt arrives)
    assert wait_until(lambda: TaskState.WAITING in states or os.path.exists(old), timeout=BOUND)
    Path(gate).touch()
    a.result(timeout=BOUND)
    b.result(timeout=BOUND)
    assert os.path.exists(new) and not os.path.exists(old)
    # whether the node took it back before it started ("requeue") or preempted it as it started, it ran once
    assert [x.outcome for x in rt.task(b.task_id).attempts][-1] == "done"


def test_a_lost_node_hands_its_queued_task_back_without_a_failed_attempt(tmp_path):
    c = DaskCluster(tmp_path / "cluster")
    c.start_scheduler()
    c.start_worker("node0", cores=1, host="localhost")
    c.start_worker("node1", cores=1, host="127.0.0.1")
    c.wait_workers(2)
    try:
        rt = Runtime(engine=DaskEngine(c.address, min_nodes=2), run_dir=tmp_path / "run", lost_retries=1)
        try:
            gates = [str(tmp_path / f"gate{i}") for i in range(2)]
            marks = [str(tmp_path / f"runs{i}") for i in range(2)]
            first = [rt.submit(block_until, gates[i], marks[i]) for i in range(2)]
            for m in marks:
                wait_for(m)
            b = rt.submit(stamp)
            assert queued(rt, b)
            owner = rt._queued[b.task_id]
            c.kill_worker(owner.attempts[-1].nodes[0])  # the node that runs the first task and holds b
            for g in gates:
                Path(g).touch()
            b.result(timeout=BOUND)
            for f in first:
                f.result(timeout=BOUND)  # the lost one ran again on the other node
            assert [x.outcome for x in rt.task(b.task_id).attempts] == ["done"]
            lost = next(f for f in first if f.task_id == owner.id)
            assert [x.outcome for x in rt.task(lost.task_id).attempts] == ["lost", "done"]
        finally:
            rt.shutdown(kill=True)
    finally:
        c.stop()


def test_many_short_tasks_pipelined_on_dask_nodes_all_finish(make_runtime):
    """Short tasks queued behind short ones: a task is often sent behind one that has already ended on its
    node (the driver hears of that end after sending); its end is told to the runtime with the queued
    task's start, so the runtime never sees a queue behind a task that is gone."""
    from .test_pipelining import nap

    rt = make_runtime(allocation=Allocation.declare(nodes=2, cores=1))
    for rounds in range(150):  # many tails: a core idles while a task is queued (stealing runs then)
        futures = [rt.submit(nap, 0.001 * (1 + (rounds + i) % 3)) for i in range(3)]
        for f in futures:
            f.result(timeout=BOUND)
    assert rt.failure is None
    assert not rt.engine._queued_on and not rt.engine._held_ends and not rt._queued


def test_an_idle_core_takes_back_one_queued_task_not_every_one(make_runtime, tmp_path):
    """Stealing on Dask: `withdraw` answers later (the node says "requeue"), so the runtime must count a
    withdrawal on its way as the free core's: one idle core takes back one queued task, and the others
    stay queued behind their running tasks and start there, on the same warm workers."""
    rt = make_runtime()  # both nodes of the cluster: 4 cores
    gates = [str(tmp_path / f"gate-a{i}") for i in range(4)]
    marks = [str(tmp_path / f"a{i}") for i in range(4)]
    long = [rt.submit(block_until, gates[i], marks[i]) for i in range(4)]
    for m in marks:
        wait_for(m)
    gate_q = str(tmp_path / "gate-q")
    q_marks = [str(tmp_path / f"q{i}") for i in range(3)]
    qs = [rt.submit(block_until, gate_q, q_marks[i]) for i in range(3)]
    for q in qs:
        assert queued(rt, q)
    owner_of = {q.task_id: rt._queued[q.task_id].id for q in qs}
    (free,) = [i for i, a in enumerate(long) if a.task_id not in owner_of.values()]
    back: list[int] = []  # tasks taken back (each is WAITING again before it runs elsewhere)
    rt.add_listener(lambda record, state: back.append(record.id)
                    if record.id in owner_of and state is TaskState.WAITING else None)
    try:
        Path(gates[free]).touch()  # its core idles, nothing waits: one queued task moves there
        assert wait_until(lambda: sum(os.path.exists(m) for m in q_marks) == 1, timeout=BOUND)
        (moved,) = [q for q, m in zip(qs, q_marks) if os.path.exists(m)]
        for q, m in zip(qs, q_marks):
            if q is moved:
                continue
            owner = next(i for i, a in enumerate(long) if a.task_id == owner_of[q.task_id])
            Path(gates[owner]).touch()
            assert wait_until(lambda: os.path.exists(m), timeout=BOUND), "a queued task was taken back as well"
            assert Path(m).read_text() == Path(marks[owner]).read_text(), \
                "a task taken back with the stolen one ran elsewhere, not on its running task's worker"
    finally:
        for g in (*gates, gate_q):
            Path(g).touch()
    for f in (*long, *qs):
        f.result(timeout=BOUND)
    assert all([x.outcome for x in rt.task(q.task_id).attempts] == ["done"] for q in qs)
    assert back == [moved.task_id], "more queued tasks were taken back than there were idle cores"
    assert not getattr(rt, "_stealing", ())


def test_more_distinct_functions_than_a_node_keeps_all_run_right(make_runtime):
    """Closures made per task: the driver tells each node which functions to let go (`fn_forget`) as its
    table of what the node holds drops the oldest; every task still finds its own function."""
    def closure(k: int):
        def task() -> int:
            return k
        return task

    rt = make_runtime()
    futures = [rt.submit(closure(k)) for k in range(700)]  # more than KnownFunctions' 256 per node
    assert [f.result(timeout=BOUND) for f in futures] == list(range(700))
    assert rt.failure is None
