"""A plain program runs in a warm worker, as a pool runs its programs (`proctree.run_program`), with a program's
guarantees: bound to its CPUs, its own environment and directory, output in 0600 files, its tree killed with it;
and it is queued behind a running task on that worker, so a core passes between functions and programs with no
round trip to the driver.

Real workers, real programs; the launcher's own path (programs in guards forked ahead) is in test_spawner*.py.
"""

from __future__ import annotations

import os
import sys
import time

import pytest

from steerflow.engines.local import LocalEngine
from steerflow.errors import TaskFailed
from steerflow.proctree import process_alive
from steerflow.resources import Allocation
from steerflow.runtime import Runtime
from steerflow.task import Executable, Function

from .conftest import wait_until

pytestmark = pytest.mark.usefixtures("no_leftover_processes")

# the program prints its parent's command line, its CPUs, cores, directory, a variable of its own, whether it
# leads its own process group, and what its stdin is
SHOW = ("import os; print(open(f'/proc/{os.getppid()}/cmdline', 'rb').read().split(b'\\0')[2].decode(), "
        "sorted(os.sched_getaffinity(0)), os.environ['STEERFLOW_CORES'], os.getcwd(), os.environ['MINE'], "
        "os.getpgid(0) == os.getpid(), os.readlink('/proc/self/fd/0'))")


def _sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@pytest.fixture
def rt(tmp_path):
    with Runtime(Allocation.declare(nodes=1, cores=2), run_dir=tmp_path / "run") as runtime:
        yield runtime


def test_a_program_runs_in_a_warm_worker_bound_in_its_own_environment_and_process_group(rt, tmp_path):
    hold = rt.submit(Function(_sleep, (30,)))  # takes core 0: the program gets core 1
    try:
        assert wait_until(lambda: hold.running(), 30)
        result = rt.submit(Executable([sys.executable, "-c", SHOW], cwd=tmp_path, env={"MINE": "x_y"})).result(60)
    finally:
        hold.cancel()
    parent, cpus, cores, cwd, mine, own_group, stdin = result.stdout.split()
    assert parent == "steerflow.engines.worker"  # a warm worker ran it: no launcher, no Python start
    assert cores == "1" and cpus == str([rt.allocation.nodes[0].physical_cpus((1,))[0]]).replace(" ", "")
    assert cwd == str(tmp_path) and mine == "x_y"
    assert own_group == "True" and stdin == "/dev/null"
    for path in (result.stdout_path, result.stderr_path):
        assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert not rt.engine._programs  # nothing kept of it once it ended


def test_a_program_is_queued_behind_a_function_on_its_worker_and_a_function_behind_it(tmp_path):
    """One core: a function, a program, a function. Each next one waits in the running one's worker (queued),
    not in the driver; every result is right and nothing is left in the engine."""
    with Runtime(Allocation.declare(nodes=1, cores=1), run_dir=tmp_path / "run") as rt:
        first = rt.submit(Function(_sleep, (0.5,)))
        assert wait_until(lambda: first.running(), 30)
        program = rt.submit(Executable(["sh", "-c", "sleep 0.5; echo ran"]))
        assert wait_until(lambda: program.task_id in rt.engine._queued_on, 30), "the program was not queued"
        assert first.result(60) == 0.5
        assert wait_until(lambda: program.running(), 30)
        last = rt.submit(Function(_sleep, (0.01,)))
        assert wait_until(lambda: last.task_id in rt.engine._queued_on or last.done(), 30), \
            "the function was not queued behind the program"
        assert program.result(60).stdout == "ran\n" and last.result(60) == 0.01
        assert not rt.engine._programs and not rt.engine._queued_on


def test_a_queued_program_that_is_cancelled_never_runs_and_leaves_nothing(tmp_path):
    marker = tmp_path / "ran"
    with Runtime(Allocation.declare(nodes=1, cores=1), run_dir=tmp_path / "run") as rt:
        first = rt.submit(Function(_sleep, (0.5,)))
        assert wait_until(lambda: first.running(), 30)
        program = rt.submit(Executable(["sh", "-c", f"touch {marker}"]))
        assert wait_until(lambda: program.task_id in rt.engine._queued_on, 30)
        assert program.cancel()
        assert first.result(60) == 0.5
        after = rt.submit(Executable(["sh", "-c", "echo after"]))
        assert after.result(60).stdout == "after\n"
        assert not marker.exists() and program.cancelled()
        assert not rt.engine._programs and not list((tmp_path / "run" / "tasks").glob("*.partial"))
        assert not list((tmp_path / "run" / "tasks").glob(f"{program.task_id}.*"))  # (its files were made ahead)


def test_a_program_that_cannot_start_in_a_worker_fails_with_127_and_says_why(rt, tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    script = tmp_path / "prog.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o700)
    no_dir = Executable(["true"], cwd=gone)  # valid when made, gone when it runs
    no_program = Executable([str(script)])
    gone.rmdir()
    script.unlink()
    for spec, says in ((no_dir, "could not set up true"), (no_program, f"cannot run {script}")):
        error = rt.submit(spec).exception(60)
        assert "exited with status 127" in str(error) and says in str(error), error


def test_a_program_killed_by_a_signal_in_a_worker_is_reported_as_killed_and_its_worker_lives_on(rt):
    workers = [w.proc.pid for w in rt.engine._idle]
    with pytest.raises(TaskFailed, match="SIGKILL"):
        rt.submit(Executable(["sh", "-c", "kill -KILL $$"])).result(60)
    assert all(process_alive(pid) for pid in workers)  # the worker only reported it; it serves the next task
    assert rt.submit(Executable(["true"])).result(60).returncode == 0
    assert sorted(w.proc.pid for w in rt.engine._idle) == sorted(workers)


def test_without_programs_in_workers_they_start_in_the_launchers_guards(tmp_path):
    with Runtime(Allocation.declare(nodes=1, cores=1), LocalEngine(programs_in_workers=False),
                 run_dir=tmp_path / "run") as rt:
        result = rt.submit(Executable(["sh", "-c", "cat /proc/$PPID/cmdline | tr '\\0' ' '"])).result(60)
        assert "steerflow.engines.worker" not in result.stdout and not rt.engine._programs


def test_cancel_and_timeout_kill_a_running_program_but_not_its_warm_worker(rt, tmp_path):
    """The program's tree goes (a child in its own session too); the worker that ran it serves the next task,
    where killing it would cost a Python start."""
    workers = sorted(w.proc.pid for w in rt.engine._idle if w.binding == ("", "1"))
    tree = ("setsid sleep 3600 & echo $! > {p}.tmp; echo $$ >> {p}.tmp; mv {p}.tmp {p}; wait")
    for i, timeout in enumerate((None, 1.0)):
        pids = tmp_path / f"pids{i}"
        future = rt.submit(Executable(["sh", "-c", tree.format(p=pids)], timeout=timeout))
        assert wait_until(pids.exists, 30)
        running = [int(p) for p in pids.read_text().split()]
        if timeout is None:
            future.cancel()
        else:
            assert "timeout" in str(future.exception(60))
        assert wait_until(lambda: not any(process_alive(p) for p in running), 30)
        assert rt.submit(Executable(["true"])).result(60).returncode == 0
    assert wait_until(lambda: not rt.engine._busy, 30)
    assert sorted(w.proc.pid for w in rt.engine._idle if w.binding == ("", "1")) == workers
    assert all(process_alive(pid) for pid in workers)
