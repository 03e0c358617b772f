"""The program launcher keeps guards forked ahead and hands them to the driver, which starts a program with one
write to a waiting guard's stem; the guard reports its program's end itself.

Real launcher processes, driven through `spawner.Launcher` as the local engine drives it.
"""

from __future__ import annotations

import os
import select
import signal
import statistics
import sys
import time

import pytest

from steerflow.engines import spawner
from steerflow.engines.local import LocalEngine
from steerflow.proctree import descendants, process_alive
from steerflow.resources import Allocation
from steerflow.runtime import Runtime
from steerflow.task import Executable

from .conftest import proc_state, wait_until

pytestmark = pytest.mark.usefixtures("no_leftover_processes")


def _children(pid: int) -> list[int]:
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/children") as f:
            out.extend(int(c) for c in f.read().split())
    return out


def _run(launcher: spawner.Launcher, argv: list[str], out: str, cwd: str | None = None) -> tuple[int, list[tuple]]:
    """Start one program: its guard's pid, and every report read up to its end (``ended`` or ``exit``)."""
    guard = launcher.start(spawner.request_frame((argv, dict(os.environ), cwd, f"{out}.out", f"{out}.err", [])))
    assert guard is not None, "the launcher went away"
    replies = []
    while guard not in launcher.exits:
        reply = launcher.read()
        assert reply is not None, "the launcher went away"
        replies.append(reply)
    return guard, replies


def _wait_ready(launcher: spawner.Launcher) -> list[int]:
    """The guards the driver holds, waiting, once the launcher handed `READY` of them (their stems forked too)."""
    def handed() -> bool:
        while select.select([launcher.rfd], [], [], 0)[0]:
            assert launcher.read() is not None
        return len(launcher.ready) == spawner.READY and len(descendants(launcher.proc.pid)) == 2 * spawner.READY

    assert wait_until(handed, 30)
    return [guard for guard, _ in launcher.ready]


@pytest.fixture
def launcher():
    started = spawner.Launcher(dict(os.environ))
    yield started
    started.stop()


def test_guards_wait_forked_ahead_and_a_program_runs_in_the_one_waiting_first(launcher, tmp_path):
    waiting = _wait_ready(launcher)
    assert sorted(waiting) == sorted(_children(launcher.proc.pid))
    guard, _ = _run(launcher, [sys.executable, "-c", "import os; print(os.getppid())"], str(tmp_path / "1"))
    assert guard == waiting[0]  # no fork, no round trip to the launcher between the start and the program
    assert int((tmp_path / "1.out").read_text()) == guard  # program -> its guard -> the launcher
    assert launcher.exits.pop(guard) == 0
    assert guard not in _wait_ready(launcher)  # another one forked in its place


def test_the_guard_reports_the_end_and_the_launchers_own_report_is_dropped(launcher, tmp_path):
    guard, replies = _run(launcher, ["sh", "-c", "exit 3"], str(tmp_path / "1"))
    assert ("ended", guard, 3) in replies and launcher.exits.pop(guard) == 3
    # the launcher then reaps that guard: its report of the same end is read and dropped, never kept
    assert wait_until(lambda: launcher.read() == ("exit", guard, 3), 30)
    assert guard not in launcher.exits
    guard, _ = _run(launcher, ["sh", "-c", "kill -TERM $$"], str(tmp_path / "2"))  # died of a signal: as Popen says
    assert launcher.exits.pop(guard) == -signal.SIGTERM


def test_a_program_that_cannot_start_fails_with_127_and_says_why(launcher, tmp_path):
    guard, _ = _run(launcher, ["no-such-program-steerflow"], str(tmp_path / "1"))
    assert launcher.exits.pop(guard) == 127
    assert "cannot run no-such-program-steerflow" in (tmp_path / "1.err").read_text()
    guard, _ = _run(launcher, ["true"], str(tmp_path / "2"), cwd=str(tmp_path / "missing"))
    assert launcher.exits.pop(guard) == 127
    assert "could not set up true" in (tmp_path / "2.err").read_text()


def test_a_guard_killed_while_it_waits_is_replaced_and_never_reported(launcher, tmp_path):
    victim = _wait_ready(launcher)[0]
    stem = descendants(victim)
    assert len(stem) == 1
    os.kill(victim, signal.SIGKILL)  # its stem (the program-to-be) dies with it
    assert wait_until(lambda: victim not in _wait_ready(launcher), 30)  # dropped from the waiting ones, replaced
    assert all(not process_alive(p) for p in stem)
    guard, _ = _run(launcher, ["sh", "-c", "echo fine"], str(tmp_path / "1"))
    assert (tmp_path / "1.out").read_text() == "fine\n" and launcher.exits.pop(guard) == 0
    assert victim not in launcher.exits and guard != victim


def test_stopping_the_launcher_takes_its_waiting_guards_along(tmp_path):
    launcher = spawner.Launcher(dict(os.environ))
    _wait_ready(launcher)
    waiting = [launcher.proc.pid, *descendants(launcher.proc.pid)]
    launcher.stop()
    assert all(proc_state(p) == "gone" for p in waiting)


def test_programs_of_a_runtime_start_in_guards_forked_ahead(tmp_path):
    """Through the engine: many short programs, two at a time, each below a guard the launcher had ready."""
    with Runtime(Allocation.declare(nodes=1, cores=2), LocalEngine(programs_in_workers=False),
                 run_dir=tmp_path / "run") as rt:
        futures = [rt.submit(Executable(["sh", "-c", f"echo {i}; exit {i % 3}"])) for i in range(30)]
        for i, future in enumerate(futures):
            if i % 3 == 0:
                assert future.result(timeout=60).stdout == f"{i}\n"
            else:
                assert f"exited with status {i % 3}" in str(future.exception(timeout=60))


TREE = ("setsid sleep 3600 & echo $! > {pids}.tmp; sleep 3600 & echo $! >> {pids}.tmp; echo $$ >> {pids}.tmp; "
        "mv {pids}.tmp {pids}; wait")  # a child in its own session, a plain child, and the program itself


def _tree_of(path) -> list[int]:
    assert wait_until(lambda: path.exists(), 30)
    return [int(p) for p in path.read_text().split()]


def _all_gone_after(action, pids: list[int]) -> float:
    """Seconds from ``action()`` until every one of ``pids`` has ended (pidfds: no polling)."""
    fds = [os.pidfd_open(p) for p in pids]
    try:
        t0 = time.perf_counter()
        action()
        left = list(fds)
        while left:
            ready, _, _ = select.select(left, [], [], 30)
            assert ready, f"processes still running 30 s after: {pids}"
            left = [fd for fd in left if fd not in ready]
        return time.perf_counter() - t0
    finally:
        for fd in fds:
            os.close(fd)


@pytest.mark.parametrize("in_workers", [False, True], ids=["guard", "worker"])
def test_cancel_and_timeout_of_a_program_end_its_whole_tree_quickly(tmp_path, in_workers):
    """A program started in a guard forked ahead, or in a warm worker, is killed with all it started, as fast as
    a function's worker (the bar of tests/test_claims.py: one within 100 ms, the median within 0.5 s on a loaded
    machine)."""
    took = []
    with Runtime(Allocation.declare(nodes=1, cores=1), LocalEngine(programs_in_workers=in_workers),
                 run_dir=tmp_path / "run") as rt:
        for i in range(5):
            pids = tmp_path / f"pids{i}"
            future = rt.submit(Executable(["sh", "-c", TREE.format(pids=pids)]))
            took.append(_all_gone_after(future.cancel, _tree_of(pids)))
            assert future.cancelled()
        pids = tmp_path / "pids-timeout"
        timed = rt.submit(Executable(["sh", "-c", TREE.format(pids=pids)], timeout=1.0))
        _all_gone_after(lambda: None, _tree_of(pids))
        assert "timeout" in str(timed.exception(timeout=60))
    assert min(took) < 0.1 and statistics.median(took) < 0.5, took


@pytest.mark.parametrize("in_workers", [False, True], ids=["guard", "worker"])
def test_preempting_a_program_ends_its_tree_and_runs_it_again_with_its_new_arguments(tmp_path, in_workers):
    with Runtime(Allocation.declare(nodes=1, cores=1), LocalEngine(programs_in_workers=in_workers),
                 run_dir=tmp_path / "run") as rt:
        pids = tmp_path / "pids"
        future = rt.submit(Executable(["sh", "-c", TREE.format(pids=pids)]))
        tree = _tree_of(pids)
        _all_gone_after(lambda: rt.preempt(future, grace=30, argv=["sh", "-c", "echo again"]), tree)
        assert future.result(timeout=60).stdout == "again\n"
