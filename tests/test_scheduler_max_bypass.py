"""``max_bypass=None``: never reserve (greedy backfill, the policy of a plain list scheduler and of a
ProcessPoolExecutor); the default (64) reserves for a wide request; wrong values are clear errors."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import steerflow as sf
from steerflow.bench.floor import list_schedule_makespan, mixed_set, same_policy_makespan
from steerflow.resources import Allocation
from steerflow.scheduler import Request, Scheduler
from steerflow.task import Function


def wide_behind_narrow(max_bypass: int | None) -> tuple[Scheduler, list[int]]:
    """2 cores busy with 1-core requests, and a 2-core request (id 0) waiting, first in order."""
    s = Scheduler(Allocation.declare(nodes=1, cores=2), max_bypass=max_bypass)
    s.submit(Request(1, 1, 1))
    s.submit(Request(2, 1, 1))
    running = [p.request.id for p in s.schedule()]
    assert running == [1, 2]
    s.submit(Request(0, 1, 2))
    return s, running


def stream(s: Scheduler, running: list[int], steps: int) -> int | None:
    """Each step one 1-core request ends and a new one arrives. The step at which the wide request was placed
    (None: never)."""
    next_id = 100
    for step in range(steps):
        s.release(running.pop(0))
        s.submit(Request(next_id, 1, 1))
        next_id += 1
        for p in s.schedule():
            if p.request.id == 0:
                return step
            running.append(p.request.id)
    return None


def test_with_none_a_wide_request_waits_while_narrower_work_keeps_arriving():
    s, running = wide_behind_narrow(None)
    assert stream(s, running, 1000) is None
    assert s.max_bypass is None and s.n_waiting == 1 and len(running) == 2
    # the arrivals stop: it runs once no narrower request waits and its cores are free
    s.release(running.pop(0))
    assert s.schedule() == []
    s.release(running.pop(0))
    assert [p.request.id for p in s.schedule()] == [0]


def test_by_default_a_wide_request_reserves_after_64_bypasses():
    s, running = wide_behind_narrow(64)
    step = stream(s, running, 1000)
    assert step is not None and 64 <= step <= 66  # 64 bypasses, then its reservation drains the other core
    assert Scheduler(Allocation.declare(nodes=1, cores=2)).max_bypass == 64


@pytest.mark.parametrize("value, error, words", [
    (-1, ValueError, "negative"), ("5", TypeError, "not an integer"), (2.5, TypeError, "not an integer"),
    (True, TypeError, "not an integer")])
def test_wrong_values_are_clear_errors(value, error, words, tmp_path):
    with pytest.raises(error, match=words) as caught:
        Scheduler(Allocation.declare(nodes=1, cores=2), max_bypass=value)
    assert "None never to reserve" in str(caught.value)
    run_dir = tmp_path / "run"
    with pytest.raises(error, match=words):
        sf.Runtime(sf.Allocation.declare(nodes=1, cores=2), run_dir=run_dir, max_bypass=value)
    assert not run_dir.exists()  # refused before anything was made


def test_at_zero_overhead_none_is_the_greedy_list_scheduler():
    """The benchmark's greedy ideal (`list_schedule_makespan`) is exactly the scheduler with max_bypass=None."""
    for seed in range(7, 19):
        tasks = [(cores, seconds) for _, cores, seconds in mixed_set(seed=seed)]
        assert same_policy_makespan(tasks, 2, None) == pytest.approx(list_schedule_makespan(tasks, 2))


def stamp(seconds: float) -> float:
    started = time.time()
    time.sleep(seconds)
    return started


def hold(gate: str) -> float:
    """Hold a core until the file ``gate`` exists (bounded)."""
    started = time.time()
    deadline = time.monotonic() + 120
    while not Path(gate).exists() and time.monotonic() < deadline:
        time.sleep(0.002)
    return started


def run_wide_among_narrow(tmp_path: Path, max_bypass: int | None) -> tuple[float, list[float]]:
    """One core held until a gate opens; a 2-core task; then 100 short 1-core tasks. With None the gate opens
    once every short task is done; with a bound, once nearly that many are (it reserves after about as many)."""
    gate = tmp_path / "gate"
    with sf.Runtime(sf.Allocation.declare(nodes=1, cores=2), run_dir=tmp_path / "run", max_bypass=max_bypass) as rt:
        holder = rt.submit(Function(hold, (str(gate),)))
        deadline = time.monotonic() + 60
        while not holder.running() and time.monotonic() < deadline:
            time.sleep(0.005)
        wide = rt.submit(Function(stamp, (0.01,), cores=2))
        narrow = [rt.submit(Function(stamp, (0.002,))) for _ in range(100)]
        deadline = time.monotonic() + 60
        if max_bypass is None:
            while not all(f.done() for f in narrow) and time.monotonic() < deadline:
                time.sleep(0.005)
            assert all(f.done() for f in narrow), "the narrow tasks should all run beside the held core"
        else:
            while sum(f.done() for f in narrow) < max_bypass - 4 and time.monotonic() < deadline:  # (63 here)
                time.sleep(0.005)
        gate.touch()
        return wide.result(timeout=120), [f.result(timeout=120) for f in narrow]


def test_runtime_none_runs_every_narrow_task_before_the_wide_one(tmp_path):
    wide, narrow = run_wide_among_narrow(tmp_path, None)
    assert max(narrow) < wide


def test_runtime_default_reserves_for_the_wide_task(tmp_path):
    wide, narrow = run_wide_among_narrow(tmp_path, 64)
    assert sum(started > wide for started in narrow) >= 30  # the reservation held them back for the wide one
