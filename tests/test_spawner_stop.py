"""The program launcher leaves by itself when stopped, even with guards whose `ready` the driver never read.

It waits for its unused guards, which leave when their stems' pipes close. A stem's pipe still in
flight on the socket (the driver had not read that guard's `ready`) kept a guard, so the launcher,
waiting, until the driver killed it after 5 s: a runtime shut down soon after it started (most
tests) took 5 s more, about one shutdown in four.
"""

from __future__ import annotations

import os

from steerflow.engines import spawner


def test_a_launcher_stopped_before_its_guards_are_read_leaves_by_itself() -> None:
    for _ in range(2):
        launcher = spawner.Launcher(dict(os.environ))
        launcher.stop()  # at once: its `ready` reports (with the stems' pipes) are still on the socket
        assert launcher.proc.returncode == 0  # left by itself (killed after 5 s: -9)
