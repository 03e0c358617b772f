"""`concurrent.futures.wait` and `as_completed` count a cancelled task as done, as with any executor."""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, as_completed, wait

from steerflow import Allocation, Runtime


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def test_wait_counts_a_task_the_user_cancelled(tmp_path):
    with Runtime(Allocation.declare(nodes=1, cores=1), run_dir=tmp_path) as rt:
        running = rt.submit(nap, 1.0)
        queued = rt.submit(nap, 1.0)
        assert queued.cancel() and queued.cancelled()
        done, not_done = wait([queued], timeout=20)
        assert done == {queued} and not not_done
        first = wait([running, queued], timeout=20, return_when=FIRST_COMPLETED)
        assert queued in first.done
        assert list(as_completed([queued], timeout=20)) == [queued]
        assert running.result(timeout=30) == 1.0


def test_wait_counts_tasks_the_runtime_cancelled_at_shutdown(tmp_path):
    rt = Runtime(Allocation.declare(nodes=1, cores=1), run_dir=tmp_path)
    futures = [rt.submit(nap, 0.5) for _ in range(4)]
    rt.shutdown(wait=False, cancel_futures=True)
    done, not_done = wait(futures, timeout=30)
    assert not not_done and len(done) == 4
    assert sum(f.cancelled() for f in futures) >= 2  # the ones still waiting for the one core
    assert len(list(as_completed(futures, timeout=30))) == 4
    rt.shutdown(wait=True)


def test_a_waiter_installed_before_the_cancel_is_told(tmp_path):
    import threading

    with Runtime(Allocation.declare(nodes=1, cores=1), run_dir=tmp_path) as rt:
        rt.submit(nap, 1.0)
        queued = rt.submit(nap, 1.0)
        got: list = []
        waiter = threading.Thread(target=lambda: got.append(wait([queued], timeout=20)))
        waiter.start()
        time.sleep(0.2)  # (let it install its waiter; the assertion holds either way)
        queued.cancel()
        waiter.join(30)
        assert got and got[0].done == {queued}


def test_a_running_task_cancelled_is_never_both_cancelled_and_running(runtime, tmp_path):
    """The standard library's states exclude each other; a kill on its way must not read as running."""
    from pathlib import Path

    from .conftest import wait_until
    from .test_pipelining import BOUND, block_until, wait_for

    gate, mark = str(tmp_path / "gate"), str(tmp_path / "runs")
    future = runtime.submit(block_until, gate, mark)
    wait_for(mark)
    assert future.running() and not future.cancelled()
    stalled = []
    runtime.call_soon(lambda: (stalled.append(1), time.sleep(1.0)))  # the loop busy: the kill is not made yet
    assert wait_until(lambda: stalled, timeout=BOUND)
    assert future.cancel()
    assert future.cancelled() and not future.running()
    Path(gate).touch()
    assert wait_until(lambda: future.done(), timeout=BOUND)
