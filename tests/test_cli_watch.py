"""`steerflow status --watch` follows a campaign as it changes (in a terminal: a pty)."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from steerflow.cli import status

from .conftest import read_until, wait_until

pytestmark = pytest.mark.usefixtures("no_leftover_processes")

SCRIPT = Path(__file__).parent / "campaigns" / "slow_campaign.py"


def _env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), COLUMNS="120", LINES="40", TERM="xterm")


def test_status_watch_shows_the_driver_going_away(tmp_path):
    directory, marker = tmp_path / "camp", tmp_path / "marker"
    driver = subprocess.Popen([sys.executable, str(SCRIPT), str(directory), str(marker)], env=_env(),
                              start_new_session=True, stderr=subprocess.DEVNULL)
    master, slave = pty.openpty()
    watch = None
    try:
        assert wait_until(lambda: (directory / "journal.db").exists() and any(
            r["name"] == "long-nap" for r in status(directory)["running"]), timeout=60)
        watch = subprocess.Popen([sys.executable, "-m", "steerflow.cli", "status", str(directory), "--watch", "0.1"],
                                 env=_env(), stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        slave = -1
        seen: list[bytes] = []
        assert read_until(master, seen, f"driver running (pid {driver.pid})".encode()), b"".join(seen)[-2000:]
        os.killpg(driver.pid, signal.SIGKILL)  # a change after the watch began ...
        driver.wait()
        assert read_until(master, seen, b"no driver running"), b"".join(seen)[-2000:]  # ... is shown
        watch.send_signal(signal.SIGINT)
        read_until(master, seen, b"\0", timeout=0.5)  # keep the pty drained while it exits
        assert watch.wait(timeout=30) == 0
    finally:
        for proc in (driver, watch):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        os.close(master)
        if slave >= 0:
            os.close(slave)
