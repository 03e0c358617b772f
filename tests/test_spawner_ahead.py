"""The program launcher keeps guards forked ahead, and a guard reports its program's end itself.

Real launcher processes, driven through `spawner.Launcher` as the local engine drives it.
"""

from __future__ import annotations

import os
import signal
import sys

import pytest

from steerflow.engines import spawner
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


def _run(launcher: spawner.Launcher, task_id: int, argv: list[str], tmp_path,
         cwd: str | None = None) -> tuple[int, list[tuple]]:
    """Start one program: its guard's pid, and every report read up to its end (``ended`` or ``exit``)."""
    env = dict(os.environ)
    launcher.send((task_id, spawner.request_frame(
        (argv, env, cwd, str(tmp_path / f"{task_id}.out"), str(tmp_path / f"{task_id}.err"), []))))
    replies, guard = [], None
    while True:
        reply = launcher.read()
        assert reply is not None, "the launcher went away"
        replies.append(reply)
        if reply[0] == "started" and reply[1] == task_id:
            guard = reply[2]
        if guard is not None and guard in launcher.exits:
            return guard, replies


@pytest.fixture
def launcher():
    started = spawner.Launcher(dict(os.environ))
    yield started
    started.stop()


def test_guards_wait_forked_ahead_and_a_program_runs_in_the_one_waiting_first(launcher, tmp_path):
    assert wait_until(lambda: len(_children(launcher.proc.pid)) == spawner.READY, 30)
    waiting = _children(launcher.proc.pid)
    guard, _ = _run(launcher, 1, [sys.executable, "-c", "import os; print(os.getppid())"], tmp_path)
    assert guard in waiting  # no fork between the request and the start
    assert int((tmp_path / "1.out").read_text()) == guard  # program -> its guard -> the launcher
    assert launcher.exits.pop(guard) == 0
    assert wait_until(lambda: len(_children(launcher.proc.pid)) == spawner.READY, 30)  # another one forked


def test_the_guard_reports_the_end_and_the_launchers_own_report_is_dropped(launcher, tmp_path):
    guard, replies = _run(launcher, 1, ["sh", "-c", "exit 3"], tmp_path)
    assert ("ended", guard, 3) in replies and launcher.exits.pop(guard) == 3
    # the launcher then reaps that guard: its report of the same end is read and dropped, never kept
    assert wait_until(lambda: launcher.read() == ("exit-seen", guard), 30)
    assert guard not in launcher.exits
    guard, _ = _run(launcher, 2, ["sh", "-c", "kill -TERM $$"], tmp_path)  # died of a signal: as Popen says it
    assert launcher.exits.pop(guard) == -signal.SIGTERM


def test_a_program_that_cannot_start_fails_with_127_and_says_why(launcher, tmp_path):
    guard, _ = _run(launcher, 1, ["no-such-program-steerflow"], tmp_path)
    assert launcher.exits.pop(guard) == 127
    assert "cannot run no-such-program-steerflow" in (tmp_path / "1.err").read_text()
    guard, _ = _run(launcher, 2, ["true"], tmp_path, cwd=str(tmp_path / "missing"))
    assert launcher.exits.pop(guard) == 127
    assert "could not set up true" in (tmp_path / "2.err").read_text()


def test_a_guard_killed_while_it_waits_is_replaced_and_never_reported(launcher, tmp_path):
    assert wait_until(lambda: len(descendants(launcher.proc.pid)) == 2 * spawner.READY, 30)
    victim = _children(launcher.proc.pid)[0]
    stem = descendants(victim)
    assert len(stem) == 1
    os.kill(victim, signal.SIGKILL)  # its stem (the program-to-be) dies with it
    assert wait_until(lambda: victim not in _children(launcher.proc.pid)
                      and len(_children(launcher.proc.pid)) == spawner.READY, 30)
    assert all(not process_alive(p) for p in stem)
    guard, replies = _run(launcher, 1, ["sh", "-c", "echo fine"], tmp_path)
    assert (tmp_path / "1.out").read_text() == "fine\n" and launcher.exits.pop(guard) == 0
    assert victim not in launcher.exits and all(r[1] != victim for r in replies if r[0] != "started")


def test_stopping_the_launcher_takes_its_waiting_guards_along(tmp_path):
    launcher = spawner.Launcher(dict(os.environ))
    assert wait_until(lambda: len(descendants(launcher.proc.pid)) == 2 * spawner.READY, 30)  # each guard, its stem
    waiting = [launcher.proc.pid, *descendants(launcher.proc.pid)]
    launcher.stop()
    assert all(proc_state(p) == "gone" for p in waiting)


def test_programs_of_a_runtime_start_in_guards_forked_ahead(tmp_path):
    """Through the engine: many short programs, two at a time, each below a guard the launcher had ready."""
    with Runtime(Allocation.declare(nodes=1, cores=2), run_dir=tmp_path / "run") as rt:
        futures = [rt.submit(Executable(["sh", "-c", f"echo {i}; exit {i % 3}"])) for i in range(30)]
        for i, future in enumerate(futures):
            if i % 3 == 0:
                assert future.result(timeout=60).stdout == f"{i}\n"
            else:
                assert f"exited with status {i % 3}" in str(future.exception(timeout=60))
