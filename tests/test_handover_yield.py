"""At a pipelined hand-over the loop lets the worker start its queued task before it reads the worker's reply, when
it runs on one of that worker's CPUs (there it preempted the worker in its write) and the worker's tasks run 10 ms
or longer; never elsewhere, never behind short tasks, never for a worker with nothing queued (a round trip), and not
with ``STEERFLOW_HANDOVER_YIELD=0``."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import wait

import pytest

from steerflow.bench.runtime import sleep_for
from steerflow.engines import local
from steerflow.resources import Allocation
from steerflow.runtime import Runtime
from steerflow.task import Function


def _run(tmp_path, monkeypatch, cpu: int | None, tasks: list[Function]) -> int:
    yields = [0]
    real = os.sched_yield

    def counted() -> None:
        yields[0] += 1
        real()

    monkeypatch.setattr(local.os, "sched_yield", counted)
    monkeypatch.setattr(local, "_getcpu", None if cpu is None else (lambda: cpu))
    with Runtime(Allocation.declare(nodes=1, cores=2), run_dir=tmp_path / "run") as rt:
        rt.submit(Function(sleep_for, (0.001,), cores=2)).result(timeout=60)  # (its worker started)
        futures = [rt.submit(task) for task in tasks]
        wait(futures, timeout=120)
        assert all(f.result() is not None for f in futures)
    return yields[0]


WORKER_CPU = Allocation.declare(nodes=1, cores=2).nodes[0].physical_cpus([0, 1])[0]  # (a 2-core worker's first)


def test_the_loop_yields_at_a_pipelined_hand_over_on_the_workers_cpu(tmp_path, monkeypatch):
    queued = [Function(sleep_for, (0.02,), cores=2) for _ in range(12)]  # one at a time: each queued behind the last
    assert _run(tmp_path, monkeypatch, WORKER_CPU, queued) >= 5


def test_no_yield_on_another_cpu_without_the_cpu_or_without_a_queued_task(tmp_path, monkeypatch):
    queued = [Function(sleep_for, (0.02,), cores=2) for _ in range(12)]
    assert _run(tmp_path / "a", monkeypatch, 99, queued) == 0  # the loop runs on none of the worker's CPUs
    assert _run(tmp_path / "b", monkeypatch, None, queued) == 0  # no sched_getcpu (or the yield turned off)


def test_no_yield_behind_tasks_shorter_than_the_bound(tmp_path, monkeypatch):
    """A yield delays the loop's own turn by up to a scheduler slice: a pipeline of short tasks cannot spare it.
    (The bound raised above these tasks' run time, so that a loaded machine stretching a short sleep past it
    cannot decide the test.)"""
    monkeypatch.setattr(local, "HAND_OVER_YIELD_MIN_RUN_S", 5.0)
    queued = [Function(sleep_for, (0.02,), cores=2) for _ in range(12)]
    assert _run(tmp_path, monkeypatch, WORKER_CPU, queued) == 0


def test_no_yield_in_a_round_trip(tmp_path, monkeypatch):
    yields = [0]
    monkeypatch.setattr(local.os, "sched_yield", lambda: yields.__setitem__(0, yields[0] + 1))
    monkeypatch.setattr(local, "_getcpu", lambda: WORKER_CPU)
    with Runtime(Allocation.declare(nodes=1, cores=2), run_dir=tmp_path / "run") as rt:
        for _ in range(20):
            rt.submit(Function(sleep_for, (0.001,), cores=2)).result(timeout=60)
    assert yields[0] == 0


@pytest.mark.parametrize("value, on", [("0", False), ("1", True), (None, True)])
def test_the_switch(value, on):
    env = {k: v for k, v in os.environ.items() if k != "STEERFLOW_HANDOVER_YIELD"}
    if value is not None:
        env["STEERFLOW_HANDOVER_YIELD"] = value
    out = subprocess.run([sys.executable, "-c", "from steerflow.engines import local; "
                          "print(local.HAND_OVER_YIELD, local._getcpu is not None)"],
                         env=env, capture_output=True, text=True, timeout=120, check=True).stdout.split()
    assert out == [str(on), str(on)]
