"""The warm program launcher: programs start as a fork of it, below a guard, bound and in their environment."""

from __future__ import annotations

import os
import signal
import sys

from steerflow.engines.local import LocalEngine
from steerflow.proctree import process_alive
from steerflow.resources import Allocation
from steerflow.runtime import Runtime
from steerflow.task import Executable

from .conftest import wait_until

# the program prints its guard's parent (read while the guard lives), CPUs, cores, directory, and whether
# it runs in the session its guard started for it
SHOW = ("import os; s = open(f'/proc/{os.getppid()}/stat', 'rb').read(); "
        "print(int(s[s.rfind(b')') + 2:].split()[1]), sorted(os.sched_getaffinity(0)), "
        "os.environ['STEERFLOW_CORES'], os.getcwd(), os.getsid(0) == os.getppid())")


def test_a_program_runs_below_a_guard_forked_by_the_launcher(tmp_path):
    with Runtime(Allocation.declare(nodes=1, cores=2), LocalEngine(programs_in_workers=False),
                 run_dir=tmp_path / "run") as rt:  # (the launcher's path: programs not in warm workers)
        launcher = rt.engine._spawner
        assert launcher is not None and process_alive(launcher.proc.pid)
        hold = rt.submit(Executable(["sleep", "30"]))  # takes core 0: the next one gets core 1
        try:
            assert wait_until(lambda: hold.running(), 30)
            result = rt.submit(Executable([sys.executable, "-c", SHOW], cwd=tmp_path)).result(timeout=60)
        finally:
            hold.cancel()
        grandparent, cpus, cores, cwd, own_session = result.stdout.split()
        assert int(grandparent) == launcher.proc.pid  # program -> guard -> launcher (no Python start per task)
        assert cores == "1" and cpus == str([rt.allocation.nodes[0].physical_cpus((1,))[0]]).replace(" ", "")
        assert cwd == str(tmp_path) and own_session == "True"
        assert oct(os.stat(result.stdout_path).st_mode & 0o777) == "0o600"


def test_programs_outlive_a_dead_launcher_never_and_later_ones_still_run(tmp_path):
    pidfile = tmp_path / "pid"
    with Runtime(Allocation.declare(nodes=1, cores=1), LocalEngine(programs_in_workers=False),
                 run_dir=tmp_path / "run", lost_retries=0) as rt:
        launcher = rt.engine._spawner
        running = rt.submit(Executable(["sh", "-c", f"echo $$ > {pidfile}; exec sleep 60"]))
        assert wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), 30)
        program = int(pidfile.read_text())
        os.kill(launcher.proc.pid, signal.SIGKILL)  # its guards are told by their parent's death
        assert wait_until(lambda: not process_alive(program), 30), "the program outlived its launcher"
        assert running.exception(timeout=30) is not None  # lost, not left waiting
        later = rt.submit(Executable(["sh", "-c", "echo fine"])).result(timeout=60)
        assert later.stdout.strip() == "fine" and rt.engine._spawner is None  # through the wrapper now
