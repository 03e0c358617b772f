"""Futures of one runtime share one condition (`futures.SharedCondition`): the standard semantics hold.

A future finished by another thread wakes exactly its waiters' checks, a timeout still times out
while other futures finish, ``wait``/``as_completed``/callbacks/cancel behave as for any future.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, CancelledError, Future, InvalidStateError, as_completed, wait

import pytest

from steerflow import serialize
from steerflow.futures import SharedCondition, TaskFuture

BOUND = 30.0  # seconds: generous bound for a loaded machine (never a timing assert)


def pair() -> tuple[TaskFuture, TaskFuture, SharedCondition]:
    shared = SharedCondition()
    return TaskFuture(None, 1, shared), TaskFuture(None, 2, shared), shared


def in_thread(fn):
    box: dict = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def wait_until(predicate, bound: float = BOUND) -> None:
    end = time.monotonic() + bound
    while not predicate():
        assert time.monotonic() < end, "condition not reached in time"
        time.sleep(0.001)


def test_a_waiter_wakes_for_its_own_future_only_and_sleeps_through_others() -> None:
    a, b, shared = pair()
    thread, box = in_thread(a.result)
    wait_until(lambda: shared.sleepers == 1)
    parked = list(shared.waiting[a])
    b.set_result("b")  # another future's end does not wake it: it stays parked on the same lock
    assert shared.waiting[a] == parked and parked[0].locked()
    for i in range(5):  # cancels of other futures wake every waiter (`Future.cancel`): it parks again
        time.sleep(0.02)
        Future.cancel(TaskFuture(None, 10 + i, shared))
    time.sleep(0.02)
    wait_until(lambda: shared.sleepers == 1)
    assert thread.is_alive() and not box
    a.set_result("a")
    thread.join(BOUND)
    assert box == {"value": "a"}
    assert shared.sleepers == 0


def test_exception_waits_and_returns_the_error() -> None:
    a, _, shared = pair()
    thread, box = in_thread(a.exception)
    wait_until(lambda: shared.sleepers == 1)
    error = ValueError("x")
    a.set_exception(error)
    thread.join(BOUND)
    assert box == {"value": error}
    with pytest.raises(ValueError):
        a.result()


def test_a_timeout_times_out_while_other_futures_finish() -> None:
    a, b, _ = pair()
    stop = threading.Event()

    def finish_others() -> None:
        shared = a._condition
        i = 10
        while not stop.is_set():
            TaskFuture(None, i, shared).set_result(i)  # each end notifies the shared condition
            i += 1
            time.sleep(0.001)

    thread = threading.Thread(target=finish_others, daemon=True)
    thread.start()
    try:
        with pytest.raises(TimeoutError):
            a.result(timeout=0.2)
        with pytest.raises(TimeoutError):
            a.exception(timeout=0.05)
        assert not a.done()
    finally:
        stop.set()
        thread.join(BOUND)


def test_cancel_wakes_a_waiter_with_cancelled_error() -> None:
    a, _, shared = pair()
    thread, box = in_thread(a.result)
    wait_until(lambda: shared.sleepers == 1)
    assert Future.cancel(a) is True  # as the runtime's loop cancels it
    thread.join(BOUND)
    assert isinstance(box.get("error"), CancelledError)
    assert a.cancelled() and a.done()
    with pytest.raises(InvalidStateError):
        a.set_result(1)


def test_finishing_twice_is_an_invalid_state() -> None:
    a, _, _ = pair()
    a.set_result(1)
    with pytest.raises(InvalidStateError):
        a.set_result(2)
    with pytest.raises(InvalidStateError):
        a.set_exception(ValueError())
    assert a.result() == 1


def test_wait_and_as_completed_see_futures_finished_by_another_thread() -> None:
    shared = SharedCondition()
    futures = [TaskFuture(None, i, shared) for i in range(50)]

    def finish() -> None:
        for i, f in enumerate(reversed(futures)):
            f.set_result(i) if i % 2 else f.set_exception(RuntimeError(str(i)))

    done, _ = wait(futures[:1] + futures[-1:], timeout=0.01)
    assert not done
    threading.Thread(target=finish, daemon=True).start()
    done, _ = wait(futures[:3], return_when=FIRST_COMPLETED, timeout=BOUND)
    assert done
    seen = list(as_completed(futures, timeout=BOUND))
    assert sorted(f.task_id for f in seen) == list(range(50))


def test_callbacks_run_once_after_the_state_is_set() -> None:
    a, b, _ = pair()
    calls = []
    a.add_done_callback(lambda f: calls.append(("a", f.done(), f.result())))
    b.add_done_callback(lambda f: calls.append(("b", f.done(), type(f.exception()).__name__)))
    a.set_result(7)
    b.set_exception(KeyError("k"))
    a.add_done_callback(lambda f: calls.append(("late", f.result())))  # already done: called at once
    assert calls == [("a", True, 7), ("b", True, "KeyError"), ("late", 7)]


def test_a_wire_form_result_is_loaded_once_for_all_callers() -> None:
    a, _, _ = pair()
    a.set_result(serialize.Encoded(serialize.dumps({"x": [1, 2]})))
    assert not a.loaded
    results = []
    threads = [threading.Thread(target=lambda: results.append(a.result())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(BOUND)
    assert all(r == {"x": [1, 2]} for r in results) and len(results) == 8
    assert all(r is a.result() for r in results)  # one object, whoever loaded it first
    assert a.loaded


def test_no_wake_up_is_lost_over_many_futures() -> None:
    shared = SharedCondition()
    futures = [TaskFuture(None, i, shared) for i in range(500)]
    thread, box = in_thread(lambda: [f.result() for f in futures])
    for i, f in enumerate(futures):
        f.set_result(i)
        if i % 97 == 0:
            time.sleep(0)  # let the waiter run between some of them
    thread.join(BOUND)
    assert box.get("value") == list(range(500))


def test_the_futures_of_one_runtime_share_one_condition(tmp_path) -> None:
    from steerflow import Allocation, Runtime

    with Runtime(Allocation.declare(nodes=1, cores=1), run_dir=tmp_path) as rt:
        a, b = rt.submit(abs, -1), rt.submit(abs, -2)
        assert a._condition is b._condition
        assert [f.result(timeout=BOUND) for f in as_completed([a, b], timeout=BOUND)] != []
        assert (a.result(), b.result()) == (1, 2)
