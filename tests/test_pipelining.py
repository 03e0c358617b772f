"""Worker pipelining: a function task queued one-deep behind a running one on its warm worker.

What is checked (see `steerflow.runloop`'s docstring for the mechanism):
- a queued task starts on its worker the moment the one before ends, while the driver's loop is
  busy elsewhere (no round trip in between);
- placements stay exact: never two tasks RUNNING on the same cores; a queued task is RUNNING, and
  its attempt and timeout start, only when its worker starts it;
- a queued task that has not started is taken back for cancel, preempt, shutdown(kill=True), when
  its worker dies (no attempt counted) and when a core idles (stolen and run there);
- a withdrawal racing with the start resolves to exactly one run (engine level, many rounds).
No fixed sleeps wait for anything: tasks block on files the test creates, and waits are bounded.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from steerflow import Allocation, Executable, Function, TaskState
from steerflow.engines.local import LocalEngine
from steerflow.errors import TaskTimeout
from steerflow.scheduler import Request, Scheduler

from .conftest import wait_until

BOUND = 60.0  # every wait in these tests ends by this many seconds, whatever the load


def wait_for(path: str, bound: float = BOUND) -> None:
    deadline = time.monotonic() + bound
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.002)


def block_until(gate: str, mark: str = "") -> float:
    """Announce that it runs (``mark``), wait for the test's gate file, return when it ended."""
    if mark:
        Path(mark).write_text(str(os.getpid()))
    wait_for(gate)
    return time.time()


def stamp(mark: str = "") -> float:
    """When it ran (and a file saying it did)."""
    if mark:
        with open(mark, "a") as f:
            f.write(f"{os.getpid()}\n")
    return time.time()


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return time.time()


def queued(rt, future, bound: float = BOUND) -> bool:
    """The task is queued on a worker behind another (the runtime's own table says so)."""
    return wait_until(lambda: future.task_id in rt._queued, timeout=bound)


def test_a_queued_task_starts_while_the_driver_is_busy(make_runtime, tmp_path):
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=1))
    gate, mark = str(tmp_path / "gate"), str(tmp_path / "a-runs")
    a = rt.submit(block_until, gate, mark)
    wait_for(mark)
    b = rt.submit(stamp)
    assert queued(rt, b), "the second task was never queued behind the first on its worker"
    assert b.state is TaskState.PLACED  # placed, not running: its worker still runs the first

    stall = 3.0

    def slow_listener(record, state):  # the loop thread: stalled as the first task's result comes back
        if record.id == a.task_id and state is TaskState.DONE:
            time.sleep(stall)

    rt.add_listener(slow_listener)
    Path(gate).touch()
    a_end, b_ran = a.result(timeout=BOUND), b.result(timeout=BOUND)
    # the queued task ran while the driver's loop sat in the listener: no driver round trip between the two
    assert b_ran - a_end < stall * 0.67, f"the queued task started {b_ran - a_end:.2f} s after the first ended"
    record_b = rt.task(b.task_id)
    assert len(record_b.attempts) == 1
    assert a_end <= record_b.attempts[0].started <= b_ran  # its attempt starts when its worker started it


def test_never_two_running_tasks_on_the_same_cores(make_runtime, tmp_path):
    """Mixed shapes on 2 cores (1- and 2-core functions, programs): the RUNNING states never overlap on a core."""
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=2))
    holder: dict[tuple, int] = {}
    clashes: list[str] = []
    running = 0

    def watch(record, state):
        nonlocal running
        if state is TaskState.RUNNING:
            running += 1
            for core in [(s.node, c) for s in record.placement.slots for c in s.cores]:
                if core in holder:
                    clashes.append(f"task {record.id} started on core {core} held by task {holder[core]}")
                holder[core] = record.id
        elif state.finished or state is TaskState.WAITING:
            for core, owner in list(holder.items()):
                if owner == record.id:
                    del holder[core]

    rt.add_listener(watch)
    futures = []
    for i in range(60):
        if i % 10 == 3:
            futures.append(rt.submit(Executable(["true"])))
        elif i % 10 == 7:
            futures.append(rt.submit(Function(nap, (0.001,), cores=2)))
        else:
            futures.append(rt.submit(nap, 0.002 * (i % 4)))
    for f in futures:
        f.result(timeout=BOUND)
    assert not clashes, clashes[:5]
    assert running == len(futures)
    assert rt.engine._queued_on == {} and not rt._queued and not rt._held and not rt._ahead


def test_the_timeout_of_a_queued_task_counts_from_its_start(make_runtime, tmp_path):
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=1))
    gate, mark = str(tmp_path / "gate"), str(tmp_path / "a-runs")
    a = rt.submit(block_until, gate, mark)
    wait_for(mark)
    b = rt.submit(Function(nap, (0.05,), timeout=1.0))  # would be past its timeout if counted from queueing
    c = rt.submit(Function(nap, (30.0,), timeout=1.0))  # still times out: its deadline runs once it starts
    assert queued(rt, b)
    assert wait_until(lambda: time.time() - rt.task(b.task_id).attempts[-1].started > 2.0, timeout=BOUND)
    Path(gate).touch()
    a.result(timeout=BOUND)
    b.result(timeout=BOUND)
    with pytest.raises(TaskTimeout):
        c.result(timeout=BOUND)


def test_cancelling_a_queued_task_withdraws_it_and_spares_the_running_one(make_runtime, tmp_path):
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=1))
    gate, mark, never = str(tmp_path / "gate"), str(tmp_path / "a-runs"), str(tmp_path / "b-ran")
    a = rt.submit(block_until, gate, mark)
    wait_for(mark)
    b = rt.submit(stamp, never)
    assert queued(rt, b)
    assert b.cancel()
    assert wait_until(lambda: b.task_id not in rt._queued, timeout=BOUND)
    after = rt.submit(stamp)  # runs on the same worker once the first ends
    Path(gate).touch()
    a.result(timeout=BOUND)
    after.result(timeout=BOUND)
    assert b.cancelled() and not os.path.exists(never)
    assert [x.outcome for x in rt.task(a.task_id).attempts] == ["done"]  # the running one was not killed with it


def test_preempting_a_queued_task_restarts_it_with_its_new_arguments(make_runtime, tmp_path):
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=1))
    gate, mark = str(tmp_path / "gate"), str(tmp_path / "a-runs")
    old, new = str(tmp_path / "old"), str(tmp_path / "new")
    a = rt.submit(block_until, gate, mark)
    wait_for(mark)
    b = rt.submit(stamp, old)
    assert queued(rt, b)
    rt.preempt(b, args=(new,))
    assert wait_until(lambda: b.task_id not in rt._queued or os.path.exists(old), timeout=BOUND)
    Path(gate).touch()
    a.result(timeout=BOUND)
    b.result(timeout=BOUND)
    assert os.path.exists(new) and not os.path.exists(old)
    assert [x.outcome for x in rt.task(b.task_id).attempts] == ["done"]  # no attempt for the withdrawn one


def test_shutdown_with_kill_takes_back_a_queued_task(tmp_path):
    from steerflow.runtime import Runtime

    rt = Runtime(allocation=Allocation.declare(nodes=1, cores=1), run_dir=tmp_path / "run")
    gate, mark, never = str(tmp_path / "gate"), str(tmp_path / "a-runs"), str(tmp_path / "b-ran")
    try:
        a = rt.submit(block_until, gate, mark)
        wait_for(mark)
        b = rt.submit(stamp, never)
        assert queued(rt, b)
    finally:
        rt.shutdown(kill=True)
    Path(gate).touch()
    assert a.cancelled() and b.cancelled()
    assert not os.path.exists(never)


def test_a_worker_that_dies_hands_its_queued_task_back_without_a_failed_attempt(make_runtime, tmp_path):
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=1), lost_retries=0)
    gate, mark = str(tmp_path / "gate"), str(tmp_path / "a-runs")
    a = rt.submit(block_until, gate, mark)
    wait_for(mark)
    b = rt.submit(stamp)
    assert queued(rt, b)
    os.kill(int(Path(mark).read_text()), signal.SIGKILL)  # the worker that runs the first and holds the second
    with pytest.raises(Exception, match="lost"):
        a.result(timeout=BOUND)
    b.result(timeout=BOUND)
    attempts = rt.task(b.task_id).attempts
    assert [x.outcome for x in attempts] == ["done"], attempts


def test_a_queued_task_is_stolen_by_an_idle_core(make_runtime, tmp_path):
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=2))
    gate, mark_a, gate_b, mark_b = (str(tmp_path / n) for n in ("gate", "a-runs", "gate-b", "b-runs"))
    a = rt.submit(block_until, gate, mark_a)  # long: ends when the test says so
    wait_for(mark_a)
    b = rt.submit(block_until, gate_b, mark_b)
    wait_for(mark_b)
    c = rt.submit(stamp)
    assert queued(rt, c)
    owner = rt._queued[c.task_id].id
    Path(gate_b).touch()  # one task ends, nothing else waits: the queued one must not wait for the other
    try:
        c.result(timeout=BOUND)
        assert not a.done(), "the long task ended first: the test proves nothing"
        assert len(rt.task(c.task_id).attempts) == 1
        assert owner in (a.task_id, b.task_id)
    finally:
        Path(gate).touch()
    a.result(timeout=BOUND)
    b.result(timeout=BOUND)


def test_a_withdrawal_racing_with_the_start_runs_the_task_exactly_once(tmp_path):
    """Engine level: queue a task behind a very short one and withdraw it at once, many times over."""
    allocation = Allocation.declare(nodes=1, cores=1)
    engine = LocalEngine(workers=1)
    engine.start(allocation, tmp_path)
    scheduler = Scheduler(allocation)
    marks = tmp_path / "marks"
    marks.mkdir()
    withdrawn = started = 0
    try:
        for n in range(1, 2 * int(os.environ.get("STEERFLOW_RACE_ROUNDS", "25")) * 4 + 1, 2):
            scheduler.submit(Request(n))
            (placement,) = scheduler.schedule()
            first = Function(stamp, ())
            engine.launch(_launch(n, first, placement))
            mark = str(marks / str(n + 1))
            assert engine.launch_behind(_launch(n + 1, Function(stamp, (mark,)), placement), n)
            spin = time.perf_counter() + (n // 2 % 25) * 0.0002  # 0-5 ms: some withdrawals come too late
            while time.perf_counter() < spin:
                pass
            taken = engine.withdraw(n + 1)
            seen: dict[int, list[str]] = {n: [], n + 1: []}
            deadline = time.monotonic() + BOUND
            while time.monotonic() < deadline and not (seen[n] and ("ok" in seen[n + 1] or taken and engine._idle)):
                for event in engine.wait(1.0):
                    seen[event.task_id].append(event.kind)
            scheduler.release(n)
            assert seen[n] == ["ok"], seen
            if taken:
                withdrawn += 1
                assert seen[n + 1] == [] and not os.path.exists(mark)
            else:
                started += 1
                assert seen[n + 1] == ["started", "ok"], seen
                assert len(Path(mark).read_text().split()) == 1
        # the worker skipped what was withdrawn and served the next round: no worker was started for it
        assert len(engine._idle) == 1 and not engine._skipping and not engine._busy and not engine._queued_on
    finally:
        engine.shutdown()
    assert withdrawn > 0 and started > 0, f"{withdrawn} withdrawn, {started} started: one way was never exercised"


def _launch(task_id, spec, placement):
    from steerflow.engines.base import Launch
    from steerflow import serialize

    return Launch(task_id, 1, spec, placement, serialize.dumps((spec.args, spec.kwargs)))


def test_scheduler_rename_keeps_what_was_held_under_the_new_id():
    scheduler = Scheduler(Allocation.declare(nodes=1, cores=1))
    scheduler.submit(Request(1))
    assert scheduler.schedule()
    scheduler.rename(1, -7)
    scheduler.submit(Request(2))
    assert scheduler.schedule() == [] and scheduler.free_cores() == 0  # still held, by -7 now
    with pytest.raises(KeyError):
        scheduler.release(1)
    with pytest.raises(KeyError):
        scheduler.rename(-7, 2)  # 2 is waiting: not an unused id
    scheduler.release(-7)
    assert [p.request.id for p in scheduler.schedule()] == [2]


def test_chains_of_queued_tasks_withdrawn_at_random_run_exactly_once(tmp_path):
    """Engine level, 2 workers: tasks queued behind running ones, also behind queued ones that just started
    (the worker may not have taken that one's byte yet), withdrawn at random moments. Each task withdrawn
    never runs; each other one runs exactly once. (A gate token re-armed by the worker failed this.)"""
    import random

    allocation = Allocation.declare(nodes=1, cores=2)
    engine = LocalEngine(workers=2)
    engine.start(allocation, tmp_path)
    (placement,) = one_placement(allocation)  # (the engine binds tasks to it; which core does not matter here)
    rng = random.Random(int(os.environ.get("STEERFLOW_RACE_SEED", "3")))
    marks = tmp_path / "marks"
    marks.mkdir()
    running: set[int] = set()
    queued: dict[int, int] = {}  # task -> the task it is queued behind
    once: set[int] = set()
    never: set[int] = set()
    task = 0

    def pump(timeout: float) -> None:
        for event in engine.wait(timeout):
            if event.kind in ("ok", "error", "lost", "requeue"):
                assert event.kind == "ok", event
                running.discard(event.task_id)
            elif event.kind == "started":
                del queued[event.task_id]
                running.add(event.task_id)

    try:
        for _ in range(int(os.environ.get("STEERFLOW_RACE_ROUNDS", "25")) * 24):
            while len(running) + len(queued) < 2:
                task += 1
                once.add(task)
                engine.launch(_launch(task, Function(stamp, (str(marks / str(task)),)), placement))
                running.add(task)
            owners = sorted(t for t in running if t not in queued.values())
            if owners:
                owner = rng.choice(owners)
                task += 1
                if engine.launch_behind(_launch(task, Function(stamp, (str(marks / str(task)),)), placement), owner):
                    queued[task] = owner
                    spin = time.perf_counter() + rng.random() * 0.001
                    while time.perf_counter() < spin:
                        pass
                    if rng.random() < 0.5 and engine.withdraw(task):
                        del queued[task]
                        never.add(task)
                    else:
                        once.add(task)
            pump(0.0005)
        deadline = time.monotonic() + BOUND
        while (running or queued) and time.monotonic() < deadline:
            pump(0.1)
        assert not running and not queued, (running, queued)
    finally:
        engine.shutdown()
    ran = {t: len((marks / str(t)).read_text().split()) for t in range(1, task + 1) if (marks / str(t)).exists()}
    assert all(ran.get(t) == 1 for t in once), {t: ran.get(t) for t in once if ran.get(t) != 1}
    assert not any(t in ran for t in never), [t for t in never if t in ran]
    assert never, "nothing was withdrawn: the race was never exercised"


def one_placement(allocation):
    scheduler = Scheduler(allocation)
    scheduler.submit(Request(1))
    return scheduler.schedule()
