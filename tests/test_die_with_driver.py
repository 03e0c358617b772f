"""A SIGKILLed driver takes everything it started with it: function workers, programs, MPI ranks."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from steerflow.proctree import descendants, process_alive

from .conftest import wait_until

SCRIPT = Path(__file__).parent / "campaigns" / "busy_driver.py"



def test_sigkilled_driver_leaves_no_worker_program_or_rank(tmp_path):
    mpi = shutil.which("mpirun") is not None
    names = ["fn0", "fn1", "exe"] + (["rank0", "rank1"] if mpi else [])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    started: set[int] = set()
    passed = False
    driver = subprocess.Popen([sys.executable, str(SCRIPT), str(tmp_path), *(["mpi"] if mpi else [])], env=env,
                              start_new_session=True, stderr=subprocess.PIPE)
    try:
        assert wait_until(lambda: all((tmp_path / f"{n}.pid").exists() and (tmp_path / f"{n}.pid").read_text()
                                      for n in names) or driver.poll() is not None, timeout=60)
        assert driver.poll() is None, driver.stderr.read().decode()
        pids = {n: int((tmp_path / f"{n}.pid").read_text()) for n in names}
        started |= set(descendants(driver.pid))  # workers, launch wrappers, mpirun and its helpers too
        assert set(pids.values()) <= started
        assert all(process_alive(p) for p in pids.values())
        os.kill(driver.pid, signal.SIGKILL)  # the driver alone: everything else must follow by itself
        driver.wait(timeout=30)
        assert wait_until(lambda: not any(process_alive(p) for p in started), timeout=10), \
            {p: open(f"/proc/{p}/cmdline").read().replace("\0", " ") for p in started if process_alive(p)}
        passed = True
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
        driver.stderr.close()
        for p in (set() if passed else started) | set(descendants(os.getpid())):  # a failed test leaves nothing
            if p != driver.pid and process_alive(p):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
