"""At a pipelined hand-over the loop lets the worker start its queued task before it reads the worker's reply, when
that worker waits, runnable, on the CPU the loop runs on (the loop preempted it in its write) and the worker's tasks
run 10 ms or longer; never otherwise, never behind short tasks, never for a worker with nothing queued (a round
trip), and not with ``STEERFLOW_HANDOVER_YIELD=0``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import wait

import pytest

from steerflow.bench.runtime import sleep_for
from steerflow.engines import local
from steerflow.resources import Allocation
from steerflow.runtime import Runtime
from steerflow.task import Function


def _run(tmp_path, monkeypatch, here: bool | None, tasks: list[Function]) -> int:
    """Run ``tasks``, the worker seen as preempted on the loop's CPU (``here``; None: no ``sched_getcpu``)."""
    yields = [0]
    real = os.sched_yield

    def counted() -> None:
        yields[0] += 1
        real()

    monkeypatch.setattr(local.os, "sched_yield", counted)
    monkeypatch.setattr(local, "_getcpu", None if here is None else (lambda: 0))
    monkeypatch.setattr(local, "_preempted_here", lambda pid: bool(here) and pid > 0)
    with Runtime(Allocation.declare(nodes=1, cores=2), run_dir=tmp_path / "run") as rt:
        rt.submit(Function(sleep_for, (0.001,), cores=2)).result(timeout=60)  # (its worker started)
        futures = [rt.submit(task) for task in tasks]
        wait(futures, timeout=120)
        assert all(f.result() is not None for f in futures)
    return yields[0]


def test_the_loop_yields_at_a_pipelined_hand_over_to_a_worker_it_preempted(tmp_path, monkeypatch):
    queued = [Function(sleep_for, (0.02,), cores=2) for _ in range(12)]  # one at a time: each queued behind the last
    assert _run(tmp_path, monkeypatch, True, queued) >= 5


def test_no_yield_when_the_worker_is_not_waiting_here_or_without_the_cpu(tmp_path, monkeypatch):
    queued = [Function(sleep_for, (0.02,), cores=2) for _ in range(12)]
    assert _run(tmp_path / "a", monkeypatch, False, queued) == 0  # it runs elsewhere (or sleeps): a yield helps nobody
    assert _run(tmp_path / "b", monkeypatch, None, queued) == 0  # no sched_getcpu (or the yield turned off)


def test_no_yield_behind_tasks_shorter_than_the_bound(tmp_path, monkeypatch):
    """A yield delays the loop's own turn by up to a scheduler slice: a pipeline of short tasks cannot spare it.
    (The bound raised above these tasks' run time, so that a loaded machine stretching a short sleep past it
    cannot decide the test.)"""
    monkeypatch.setattr(local, "HAND_OVER_YIELD_MIN_RUN_S", 5.0)
    queued = [Function(sleep_for, (0.02,), cores=2) for _ in range(12)]
    assert _run(tmp_path, monkeypatch, True, queued) == 0


def test_no_yield_in_a_round_trip(tmp_path, monkeypatch):
    yields = [0]
    monkeypatch.setattr(local.os, "sched_yield", lambda: yields.__setitem__(0, yields[0] + 1))
    monkeypatch.setattr(local, "_getcpu", lambda: 0)
    monkeypatch.setattr(local, "_preempted_here", lambda pid: True)
    with Runtime(Allocation.declare(nodes=1, cores=2), run_dir=tmp_path / "run") as rt:
        for _ in range(20):
            rt.submit(Function(sleep_for, (0.001,), cores=2)).result(timeout=60)
    assert yields[0] == 0


def test_preempted_here_reads_the_process_state_and_cpu():
    if local._getcpu is None:
        pytest.skip("no sched_getcpu here")
    assert local._preempted_here(os.getpid())  # this process runs, here (state R on this CPU)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and local._preempted_here(sleeper.pid):
            time.sleep(0.01)  # (it starts running first)
        assert not local._preempted_here(sleeper.pid)  # asleep (state S)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not local._preempted_here(sleeper.pid)  # gone
    assert not local._preempted_here(2**22 + 12345)  # never was


@pytest.mark.parametrize("value, on", [("0", False), ("1", True), (None, True)])
def test_the_switch(value, on):
    env = {k: v for k, v in os.environ.items() if k != "STEERFLOW_HANDOVER_YIELD"}
    if value is not None:
        env["STEERFLOW_HANDOVER_YIELD"] = value
    out = subprocess.run([sys.executable, "-c", "from steerflow.engines import local; "
                          "print(local.HAND_OVER_YIELD, local._getcpu is not None)"],
                         env=env, capture_output=True, text=True, timeout=120, check=True).stdout.split()
    assert out == [str(on), str(on)]
