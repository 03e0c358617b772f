"""The warm program launcher (`engines.spawner`) frozen (SIGSTOP, as a fault campaign or a cgroup freezer does):
programs still start (through the wrapper) and a killed one still ends. Before, the runtime's loop waited for the
launcher without a bound (every task with it), and a program killed at its timeout never ended."""
from __future__ import annotations

import os
import signal
import time

import pytest

import steerflow as sf

from .conftest import wait_until

BOUND = 60


def test_a_frozen_program_launcher_neither_freezes_the_runtime_nor_keeps_a_killed_program(make_runtime):
    rt = make_runtime(allocation=sf.Allocation.declare(nodes=1, cores=2), engine=sf.LocalEngine(
        programs_in_workers=False))
    assert rt.submit(sf.Executable(["true"])).result(timeout=BOUND).returncode == 0
    killed = rt.submit(sf.Executable(["sleep", "120"], timeout=1.5))  # started by the launcher, before it froze
    assert wait_until(killed.running, timeout=BOUND) and wait_until(lambda: rt.engine._spawned, timeout=BOUND)
    launcher = rt.engine._spawner.proc.pid
    os.kill(launcher, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        later = [rt.submit(sf.Executable(["true"], timeout=30)) for _ in range(4)]
        assert [f.result(timeout=BOUND).returncode for f in later] == [0] * 4
        with pytest.raises(sf.TaskTimeout):
            killed.result(timeout=BOUND)
        assert time.monotonic() - t0 < BOUND
    finally:
        os.kill(launcher, signal.SIGCONT)
    assert rt.submit(sf.Executable(["true"])).result(timeout=BOUND).returncode == 0
