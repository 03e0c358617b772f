"""Preempt, cancel and suspend take effect whenever they arrive: right after submit, right after
launch, while the worker still unpickles a task's arguments. No timers: each phase is reached by
a condition (a file the unpickling writes, a state the runtime reports), and each is repeated."""

from __future__ import annotations

import os
import time
from pathlib import Path


from steerflow import Allocation, Function, TaskState
from steerflow.engines.local import LocalEngine
from steerflow.proctree import process_alive

from .conftest import proc_state, wait_until

ROUNDS = int(os.environ.get("STEERFLOW_RACE_ROUNDS", "25"))


def hold_or_return(mode, *ballast):
    """'hold': run until preempted (an hour at most); anything else: return it at once."""
    if mode == "hold":
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            time.sleep(0.01)
        return "held to the end"
    return mode


def _restore_slowly(inside: str, gate: str) -> str:
    """Unpickling this argument announces itself, then waits for the test's gate (bounded)."""
    Path(inside).write_text(str(os.getpid()))
    deadline = time.monotonic() + 60
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.002)
    return "ballast"


class SlowToUnpickle:
    def __init__(self, inside: Path, gate: Path) -> None:
        self.inside, self.gate = str(inside), str(gate)

    def __reduce__(self):
        return (_restore_slowly, (self.inside, self.gate))


class RecordingEngine(LocalEngine):
    """The local engine, telling the test when a control signal has been sent (kill() returned)."""

    def __init__(self) -> None:
        super().__init__()
        self.preempts_sent = 0
        self.suspends_sent = 0

    def preempt(self, task_id: int) -> None:
        super().preempt(task_id)
        self.preempts_sent += 1

    def suspend(self, task_id: int) -> None:
        super().suspend(task_id)
        self.suspends_sent += 1



def _outcomes(rt, future) -> list[str]:
    return [a.outcome for a in rt.task(future.task_id).attempts]


def test_preempt_right_after_submit_always_restarts_with_new_arguments(make_runtime):
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=1))
    for _ in range(ROUNDS):
        future = rt.submit(Function(hold_or_return, args=("hold",)))
        rt.preempt(future, grace=600, args=("new",))  # before, during or after its launch: all must work
        assert future.result(timeout=60) == "new"
        assert set(_outcomes(rt, future)) <= {"preempted", "done"}


def test_preempt_right_after_launch(make_runtime):
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=1))
    for _ in range(ROUNDS):
        future = rt.submit(Function(hold_or_return, args=("hold",)))
        assert wait_until(lambda: future.state is TaskState.RUNNING, timeout=30)
        rt.preempt(future, grace=600, args=("new",))
        assert future.result(timeout=60) == "new"
        assert _outcomes(rt, future) == ["preempted", "done"]


def test_preempt_while_the_worker_unpickles_the_arguments(make_runtime, tmp_path):
    engine = RecordingEngine()
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=1), engine=engine)
    for i in range(max(5, ROUNDS // 3)):
        inside, gate = tmp_path / f"inside{i}", tmp_path / f"gate{i}"
        future = rt.submit(Function(hold_or_return, args=("hold", SlowToUnpickle(inside, gate))))
        # the worker is inside pickle.loads of the arguments (and wrote its pid: the file exists before that)
        assert wait_until(lambda: inside.exists() and inside.read_text(), timeout=30)
        sent = engine.preempts_sent
        rt.preempt(future, grace=600, args=("new",))
        assert wait_until(lambda: engine.preempts_sent > sent, timeout=30)  # SIGUSR1 is on its way
        gate.touch()  # only now may the unpickling end and the function start
        assert future.result(timeout=60) == "new"
        assert _outcomes(rt, future) == ["preempted", "done"]
        assert process_alive(int(inside.read_text()))  # preempting a function keeps its warm worker


def big_closure_task(size):
    block = bytes(size)

    def run(mode):
        return hold_or_return(mode) if len(block) else None

    return run


def test_preempt_a_task_whose_closure_is_large(make_runtime):
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=1))
    for size in (32 << 20, 64 << 20):  # the closure travels to the worker with the first task
        fn = big_closure_task(size)
        future = rt.submit(fn, "hold")
        rt.preempt(future, grace=600, args=("new",))
        assert future.result(timeout=120) == "new"


def test_cancel_at_any_moment_kills_and_never_runs(make_runtime, tmp_path):
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=1))
    side = tmp_path / "ran"
    for i in range(ROUNDS):  # right after submit
        future = rt.submit(_mark_then_hold, str(side))
        assert future.cancel()
        assert future.cancelled()
    inside, gate = tmp_path / "inside", tmp_path / "gate"
    future = rt.submit(Function(_mark_then_hold, args=(str(side), SlowToUnpickle(inside, gate))))
    assert wait_until(lambda: inside.exists() and inside.read_text(), timeout=30)  # while unpickling
    worker = int(inside.read_text())
    assert future.cancel()
    assert wait_until(lambda: not process_alive(worker), timeout=10)
    assert rt.task(future.task_id).state is TaskState.CANCELLED
    assert rt.submit(os.getpid).result(timeout=30) != worker  # the only core is free again
    ran = side.read_text().split() if side.exists() else []
    assert len(ran) <= ROUNDS  # tasks cancelled after their launch may have started; each was killed
    for pid in map(int, ran):
        assert not process_alive(pid)


def _mark_then_hold(path, *ballast):
    with open(path, "a") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(3600)


def test_suspend_while_unpickling_stops_the_worker_until_resumed(make_runtime, tmp_path):
    engine = RecordingEngine()
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=1), engine=engine)
    inside, gate = tmp_path / "inside", tmp_path / "gate"
    future = rt.submit(Function(hold_or_return, args=("done", SlowToUnpickle(inside, gate))))
    assert wait_until(lambda: inside.exists() and inside.read_text(), timeout=30)
    worker = int(inside.read_text())
    rt.suspend(future)
    assert wait_until(lambda: future.state is TaskState.PAUSED and engine.suspends_sent == 1, timeout=30)
    gate.touch()
    assert wait_until(lambda: proc_state(worker) == "T", timeout=10)  # stopped, not running on
    assert not future.done()
    rt.resume(future)
    assert future.result(timeout=60) == "done"


def test_suspend_racing_the_end_of_a_task_never_leaves_a_stopped_worker(make_runtime):
    """A suspend that lands as the task finishes must not leave its warm worker stopped for the next task."""
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=1))  # one worker serves every task
    for i in range(ROUNDS * 2):
        future = rt.submit(hold_or_return, i)
        rt.suspend(future)
        assert wait_until(lambda: future.done() or future.state is TaskState.PAUSED, timeout=30)
        if not future.done():
            rt.resume(future)
        assert future.result(timeout=30) == i


def test_preempt_racing_the_end_of_a_task_never_hits_the_next_task(make_runtime):
    """A preempt for a task that just finished must not preempt the next task on the same worker."""
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=1))
    for i in range(ROUNDS * 2):
        future = rt.submit(hold_or_return, i)
        rt.preempt(future, grace=600)
        assert future.result(timeout=30) == i
        follow = rt.submit(hold_or_return, -i)
        assert follow.result(timeout=30) == -i
        assert _outcomes(rt, follow) == ["done"]

