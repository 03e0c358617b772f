"""`concurrent.futures.wait` and ``as_completed`` inside a done callback, on the runtime's own thread.

Done callbacks run in the runtime's loop thread, the only thread that finishes tasks: a blocking wait there
for a task of the same runtime froze the whole runtime for ever (or, with a timeout, for all of it, to find
nothing finished). Such a wait now raises the same RuntimeError as ``result()`` there; a wait that does not
block (``timeout=0``, finished futures only) and a wait for another runtime's tasks work as before.
Every wait is bounded: a regression fails the test, it does not hang the suite.
"""
from __future__ import annotations

import concurrent.futures as cf
import os
import time

import pytest

import steerflow as sf

BOUND = 120  # (a loaded machine can starve the test process for tens of seconds)


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def noop() -> int:
    return 1


def until(path: str) -> str:
    """A task that runs until the test lets it end (so it is surely still running when the callback waits)."""
    deadline = time.monotonic() + 600  # (the test lets it go, or its runtime kills it; under load 30 s passed)
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    return "let go"


@pytest.fixture
def later(rt, tmp_path):
    """A task of ``rt`` that runs until the test's callback is over; its future (``.let_go()`` ends it)."""
    gate = tmp_path / "let-go"
    future = rt.submit(until, str(gate))
    future.let_go = gate.touch
    return future


def abandon(rt: sf.Runtime) -> None:
    """Leave a runtime whose loop may be frozen (a regression) without waiting for it."""
    rt.shutdown(wait=False, kill=True)
    rt._closed = True


@pytest.fixture
def rt(tmp_path):
    runtime = sf.Runtime(sf.Allocation.declare(nodes=1, cores=2), run_dir=tmp_path / "run")
    yield runtime
    abandon(runtime)


def in_callback(rt: sf.Runtime, wait_for) -> list:
    """Run ``wait_for()`` in the done callback of a quick task; what it returned or raised."""
    seen: list = []

    def callback(_):
        try:
            seen.append(wait_for())
        except BaseException as exc:  # noqa: BLE001 - (the stdlib would only log it)
            seen.append(exc)

    first = rt.submit(noop)
    first.add_done_callback(callback)
    deadline = time.monotonic() + BOUND
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen, "the callback never ended: the runtime waited for itself"
    return seen


def ends(future) -> bool:
    future.let_go()
    return future.result(timeout=BOUND) == "let go"


@pytest.mark.parametrize("how", ["all", "first", "exception"])
def test_wait_in_a_done_callback_raises_instead_of_freezing_the_runtime(rt, later, how):
    when = {"all": cf.ALL_COMPLETED, "first": cf.FIRST_COMPLETED, "exception": cf.FIRST_EXCEPTION}[how]
    seen = in_callback(rt, lambda: cf.wait([later], return_when=when))
    assert isinstance(seen[0], RuntimeError) and "runtime's own thread" in str(seen[0]), seen
    assert ends(later)  # the runtime goes on
    assert later._waiters == []  # the raised wait left no waiter behind
    assert cf.wait([later], timeout=BOUND).not_done == set()  # and a wait elsewhere works as ever


def test_wait_with_a_timeout_in_a_done_callback_raises_at_once(rt, later):
    t0 = time.monotonic()
    seen = in_callback(rt, lambda: cf.wait([later], timeout=5))
    assert isinstance(seen[0], RuntimeError), seen  # (before: the runtime stood still 5 s, then "not done")
    assert time.monotonic() - t0 < 4
    assert ends(later)


def test_as_completed_in_a_done_callback_yields_the_finished_then_raises(rt, later):
    done_one = rt.submit(noop)
    assert done_one.result(timeout=BOUND) == 1
    got: list = []

    def iterate():
        for f in cf.as_completed([done_one, later]):
            got.append(f)
        return "iterated"

    seen = in_callback(rt, iterate)
    assert got == [done_one]
    assert isinstance(seen[0], RuntimeError), seen
    assert ends(later)
    assert later._waiters == [] and done_one._waiters == []


def test_waits_that_do_not_block_work_in_a_done_callback(rt, later):
    done_one = rt.submit(noop)
    assert done_one.result(timeout=BOUND) == 1
    polled = in_callback(rt, lambda: cf.wait([later, done_one], timeout=0))[0]
    assert polled.done == {done_one} and polled.not_done == {later}
    finished = in_callback(rt, lambda: cf.wait([done_one]))[0]
    assert finished.done == {done_one}
    assert in_callback(rt, lambda: list(cf.as_completed([done_one])))[0] == [done_one]
    assert ends(later)
    assert later._waiters == []


def test_a_callback_may_wait_for_another_runtimes_task(rt, tmp_path):
    other = sf.Runtime(sf.Allocation.declare(nodes=1, cores=1), run_dir=tmp_path / "other")
    try:
        elsewhere = other.submit(nap, 0.2)
        seen = in_callback(rt, lambda: cf.wait([elsewhere], timeout=BOUND))
        assert seen[0].done == {elsewhere}  # (that runtime's loop finishes it: no reason to refuse)
        other.shutdown()
    finally:
        abandon(other)
