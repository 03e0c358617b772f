"""A burst of posted submits is applied a slice per round of the loop (`runloop.MESSAGES_PER_ROUND`).

Free cores get tasks between slices, so workers start while the rest of a burst is applied,
instead of idling until the whole burst has been read.
"""

from __future__ import annotations

import threading

from steerflow import Allocation, Runtime
from steerflow.runloop import MESSAGES_PER_ROUND
from steerflow.task import TaskState

BOUND = 60.0


def test_a_burst_of_submits_starts_tasks_before_it_is_all_applied(tmp_path) -> None:
    n = 10 * MESSAGES_PER_ROUND
    with Runtime(Allocation.declare(nodes=1, cores=2), run_dir=tmp_path) as rt:
        order: list[TaskState] = []
        rt.add_listener(lambda record, state: order.append(state))
        gate = threading.Event()
        rt.call_soon(lambda: gate.wait(BOUND))  # the loop holds here while the whole burst is posted
        futures = [rt.submit(abs, -i) for i in range(n)]
        gate.set()
        assert [f.result(timeout=BOUND) for f in futures] == list(range(n))
        first_running = order.index(TaskState.RUNNING)
        waiting_before = order[:first_running].count(TaskState.WAITING)
        assert waiting_before <= MESSAGES_PER_ROUND < n  # (all n before the first start, without the slices)
        assert order.count(TaskState.DONE) == n


def fail() -> None:
    raise ValueError("bad input")


def test_shutdown_runs_every_task_submitted_before_it_even_when_a_slice_ends_with_none_active(tmp_path) -> None:
    # a slice of submits that all fail at once (their input failed) leaves no task active: the loop must still
    # apply the rest of its inbox before it stops, not stop and cancel the tasks still in it
    rt = Runtime(Allocation.declare(nodes=1, cores=2), run_dir=tmp_path)
    bad = rt.submit(fail)
    assert isinstance(bad.exception(timeout=BOUND), ValueError)
    gate = threading.Event()
    rt.call_soon(lambda: gate.wait(BOUND))  # the loop holds here while everything below is posted
    doomed = [rt.submit(abs, bad) for _ in range(MESSAGES_PER_ROUND + 4)]
    good = [rt.submit(abs, -i) for i in range(3)]
    rt.shutdown(wait=False)
    gate.set()
    rt.shutdown(wait=True)
    assert all(f.exception(timeout=BOUND) is not None for f in doomed)
    assert [f.result(timeout=BOUND) for f in good] == [0, 1, 2]
