"""A campaign script that ends before its run() (a bug after submitting, or no run() at all) stops at once.

Since the Executor waits at interpreter exit for the tasks of a Runtime nobody shut down (0e63bf8, as
concurrent.futures does), a campaign's own runtime did too: a script that raised after submitting
its simulations ran every one of them before Python exited, with no agent to see their results.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.usefixtures("no_leftover_processes")

SCRIPT = '''
import sys, time
import steerflow as sf

def simulate(x):
    time.sleep(30)
    return x

camp = sf.Campaign(sys.argv[1], allocation=sf.Allocation.declare(nodes=1, cores=1), progress=False)
for x in range(2):
    camp.submit(simulate, x)
if sys.argv[2] == "bug":
    raise ValueError("a bug after submitting")
'''


@pytest.mark.parametrize("ending", ["bug", "no-run"])
def test_a_script_that_ends_before_run_stops_its_tasks_and_says_so(tmp_path, ending):
    script = tmp_path / "camp.py"
    script.write_text(SCRIPT)
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "c"), ending], capture_output=True,
                          text=True, timeout=50, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    took = time.monotonic() - started
    assert took < 29, f"the script waited {took:.0f} s for its tasks"  # before: 60 s (2 x 30 s on 1 core)
    assert "its 2 submitted task(s) were stopped" in done.stderr, done.stderr
    assert f"steerflow resume {tmp_path / 'c'}" in done.stderr
    from steerflow import rundirs

    status = rundirs.status(tmp_path / "c")
    assert sum(status["pools"]["default"].values()) == 2
    assert status["pools"]["default"].get("interrupted") == 2, status


SLOW = __import__("pathlib").Path(__file__).parent / "campaigns" / "slow_campaign.py"


@pytest.mark.parametrize("cli", [False, True])
def test_a_closed_terminal_sighup_stops_the_driver_cleanly(tmp_path, cli):
    """The ssh session a driver ran in closes (SIGHUP): before, Python ended at once, as SIGKILL ends it (the
    journal left open: "the last driver stopped without closing"); now as SIGTERM does: closed, resumable."""
    import signal

    from steerflow import rundirs
    from tests.conftest import wait_until

    directory = tmp_path / "camp"
    command = [sys.executable, *(["-m", "steerflow.cli", "run"] if cli else []), str(SLOW), str(directory),
               str(tmp_path / "marker")]
    proc = subprocess.Popen(command, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: (directory / "journal.db").exists()
                          and bool(rundirs.status(directory)["running"]), timeout=60)
        proc.send_signal(signal.SIGHUP)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0 and "SIGHUP" in err and "steerflow resume" in err, err
    info = rundirs.status(directory)
    assert info["driver_pid"] is None and info["pools"]["simulate"].get("interrupted", 0) >= 1
    shown = subprocess.run([sys.executable, "-m", "steerflow.cli", "status", str(directory)], capture_output=True,
                           text=True, timeout=60, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert "stopped without closing" not in shown.stdout, shown.stdout
