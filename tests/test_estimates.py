"""The runtime's run-time estimates reach the scheduler: with a timeout (a bound, as a batch system's time
limit), a short task starts in a reserved wide task's shadow; without one nothing is known, and it waits."""

from __future__ import annotations

import time

import pytest

import steerflow as sf
from steerflow.task import Function


def stamp(seconds: float) -> float:
    started = time.time()
    time.sleep(seconds)
    return started


def wide_and_short(tmp_path, timeout: float | None) -> tuple[float, list[float]]:
    """A long 1-core task runs; a 2-core task reserves at once (max_bypass=0); then short 1-core tasks."""
    with sf.Runtime(sf.Allocation.declare(nodes=1, cores=2), run_dir=tmp_path / "run", max_bypass=0) as rt:
        long = rt.submit(Function(stamp, (3.0,), timeout=60))  # (the shorts start well within it, even under load)
        deadline = time.monotonic() + 60
        while not long.running() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert long.running()
        wide = rt.submit(Function(stamp, (0.01,), cores=2))
        shorts = [rt.submit(Function(stamp, (0.02,), timeout=timeout)) for _ in range(3)]
        return wide.result(timeout=120), [f.result(timeout=120) for f in shorts]


def test_a_short_task_with_a_timeout_starts_in_the_shadow(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEERFLOW_PIPELINE", "0")  # (its release ahead would hide the long task's core)
    wide, shorts = wide_and_short(tmp_path, timeout=10)
    assert min(shorts) < wide  # started while the wide task waited for the long one's core


def test_without_estimates_the_reservation_holds(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEERFLOW_PIPELINE", "0")
    wide, shorts = wide_and_short(tmp_path, timeout=None)  # a function never seen ending: unknown run time
    assert min(shorts) > wide
