"""Faults at the runtime's boundary that froze it: each test here hung (or took the task's whole run) before its fix.

Every wait is bounded: a regression fails the test, it does not hang the suite.
"""
from __future__ import annotations

import os
import threading
import time

import pytest

import steerflow as sf

BOUND = 60


def closes_its_descriptors(seconds: float) -> str:
    os.closerange(3, 4096)  # the worker's pipes to the driver too
    time.sleep(seconds)
    return "slept"


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def noop() -> int:
    return 1


def abandon(rt: sf.Runtime) -> None:
    """Leave a runtime whose loop may be frozen (a regression): its workers end with pytest, their driver, and
    Python's exit does not wait for it (it would wait for ever)."""
    rt.shutdown(wait=False, kill=True)
    rt._closed = True


def test_a_task_that_closes_its_workers_descriptors_does_not_freeze_the_runtime(make_runtime):
    rt = make_runtime(allocation=sf.Allocation.declare(nodes=1, cores=2))
    assert rt.submit(noop).result(timeout=BOUND) == 1
    t0 = time.monotonic()
    bad = rt.submit(sf.Function(closes_its_descriptors, (100,)))
    blocker = rt.submit(nap, 0.3)  # the other core is busy a moment: the next task waits for it, in the loop
    quick = rt.submit(noop)
    assert quick.result(timeout=BOUND) == 1  # (the loop waited for the worker's exit: 100 s, frozen)
    with pytest.raises(sf.WorkerLost, match="closed its pipe to the driver"):
        bad.result(timeout=BOUND)
    assert blocker.result(timeout=BOUND) == 0.3
    assert time.monotonic() - t0 < BOUND


def test_a_done_callback_that_waits_for_another_task_gets_an_error_not_a_frozen_runtime(tmp_path):
    rt = sf.Runtime(sf.Allocation.declare(nodes=1, cores=2), run_dir=tmp_path / "run")
    try:
        later = rt.submit(nap, 0.5)
        first = rt.submit(noop)
        seen: list = []

        def callback(_):
            try:
                seen.append(later.result())
            except RuntimeError as exc:
                seen.append(exc)

        first.add_done_callback(callback)
        assert later.result(timeout=BOUND) == 0.5  # (the loop waited for itself in the callback: for ever)
        assert len(seen) == 1 and isinstance(seen[0], RuntimeError) and "another thread" in str(seen[0])
        rt.shutdown()
    finally:
        abandon(rt)


def test_a_submit_that_races_a_shutdown_does_not_hang_it(tmp_path):
    rt = sf.Runtime(sf.Allocation.declare(nodes=1, cores=2), run_dir=tmp_path / "run")
    rt.submit(noop).result(timeout=BOUND)
    post = rt._post

    def late_post(message):  # the shutdown lands between this submit's check and its message
        if message[0] == "submit":
            rt.shutdown(wait=False, cancel_futures=True)
        post(message)

    rt._post = late_post
    future = rt.submit(noop)
    closer = threading.Thread(target=rt.shutdown, daemon=True)
    closer.start()
    closer.join(BOUND)
    if closer.is_alive():
        abandon(rt)
        pytest.fail(f"shutdown hangs: {rt._active} tasks counted active")
    assert future.cancelled()


def test_ctrl_c_inside_submit_then_the_with_block_exits(tmp_path):
    rt = sf.Runtime(sf.Allocation.declare(nodes=1, cores=2), run_dir=tmp_path / "run")
    post = rt._post

    def interrupted(message):  # Ctrl-C after the record is made, before its message is posted
        if message[0] == "submit":
            raise KeyboardInterrupt
        post(message)

    running = rt.submit(nap, 30)
    rt._post = interrupted
    outcome: list = []

    def user_script():
        try:
            with rt:
                rt.submit(noop)
        except KeyboardInterrupt:
            outcome.append("interrupted")

    script = threading.Thread(target=user_script, daemon=True)
    script.start()
    script.join(BOUND)
    if script.is_alive():
        rt._post = post
        abandon(rt)
        pytest.fail(f"the with block's exit hangs: {rt._active} tasks counted active")
    assert outcome == ["interrupted"]
    assert running.cancelled()


def test_shutdown_wakes_the_loop_even_if_an_interrupted_post_left_its_wake_up_unsent(tmp_path):
    rt = sf.Runtime(sf.Allocation.declare(nodes=1, cores=2), run_dir=tmp_path / "run")
    assert rt.submit(noop).result(timeout=BOUND) == 1
    assert wait_until_waiting(rt)
    rt._wake_pending = True  # as a Ctrl-C between `_post`'s flag and its eventfd write leaves it
    closer = threading.Thread(target=rt.shutdown, daemon=True)
    closer.start()
    closer.join(BOUND)  # (the loop slept until its next event: with nothing running, up to an hour)
    if closer.is_alive():
        abandon(rt)
        pytest.fail("shutdown waits for a loop nobody woke")


def wait_until_waiting(rt: sf.Runtime) -> bool:
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        if rt._waiting and not rt._inbox:
            return True
        time.sleep(0.01)
    return False
