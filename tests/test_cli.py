"""The command line against a real driver in another process: status, cancel, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from steerflow.cli import driver_pid, main, status

from .conftest import wait_until

pytestmark = pytest.mark.usefixtures("no_leftover_processes")  # nothing it starts outlives a test

SCRIPT = Path(__file__).parent / "campaigns" / "slow_campaign.py"
STEERFLOW = [sys.executable, "-m", "steerflow.cli"]


def _env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))


def test_status_cancel_and_resume_from_another_process(tmp_path, capsys):
    directory, marker = tmp_path / "camp", tmp_path / "marker"
    driver = subprocess.Popen([sys.executable, str(SCRIPT), str(directory), str(marker)], env=_env(),
                              start_new_session=True, stderr=subprocess.PIPE)
    try:
        assert wait_until(lambda: (directory / "journal.db").exists() and any(
            r["name"] == "long-nap" for r in status(directory)["running"]), timeout=30)
        info = status(directory)
        assert info["driver_pid"] == driver.pid
        assert info["running"][0]["where"] in ("node0[c0]", "node0[c1]")  # node and core ids
        assert main(["status", str(directory)]) == 0
        out = capsys.readouterr().out
        assert "simulate" in out and "long-nap" in out and f"pid {driver.pid}" in out
        assert "per min" in out  # throughput per pool while a driver runs
        # let the short naps finish and be journaled, then kill the driver while the long one runs
        assert wait_until(lambda: status(directory)["pools"]["simulate"].get("done") == 2, timeout=30)
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
        driver.stderr.close()
    assert driver_pid(directory) is None
    # resume reruns the same command; cancel the long task from outside once it runs again
    resumed = subprocess.Popen([*STEERFLOW, "resume", str(directory)], env=_env(), stderr=subprocess.PIPE)
    try:
        assert wait_until(lambda: driver_pid(directory) not in (None,) and any(
            r["name"] == "long-nap" for r in status(directory)["running"]), timeout=30)
        key = next(r["key"] for r in status(directory)["running"] if r["name"] == "long-nap")
        assert subprocess.run([*STEERFLOW, "cancel", str(directory), str(key)], env=_env()).returncode == 0
        _, err = resumed.communicate(timeout=60)
        assert resumed.returncode == 0, err.decode()
    finally:
        if resumed.poll() is None:
            resumed.kill()
            resumed.wait()
    assert marker.read_text().split() == ["0.5", "0.5"]  # the short naps did not run again
    final = status(directory)
    assert final["pools"]["simulate"] == {"done": 2, "cancelled": 1}
    assert final["drivers_so_far"] == 2


def test_cancel_without_a_driver_and_bad_dirs(tmp_path, capsys):
    assert subprocess.run([*STEERFLOW, "status", str(tmp_path)], env=_env(), capture_output=True).returncode != 0
    (tmp_path / "c").mkdir()
    import steerflow as sf
    camp = sf.Campaign(tmp_path / "c", allocation=sf.Allocation.declare(nodes=1, cores=1), progress=False)
    camp.close()
    assert main(["cancel", str(tmp_path / "c"), "1"]) == 1
    assert "no driver runs" in capsys.readouterr().err
    meta = json.loads(json.dumps(status(tmp_path / "c")))
    assert meta["driver_pid"] is None
