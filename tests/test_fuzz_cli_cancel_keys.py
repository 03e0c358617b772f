"""`steerflow cancel DIR KEY` of a key the campaign does not have: said by the command, exit 2.

Before: the command said "asked the driver of DIR to cancel 99999" (exit 0), and the driver printed on its own
terminal that 99999 "is not a task of this campaign; pass a future from submit() or its key" (the Python API's words).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from .conftest import wait_until

SCRIPT = textwrap.dedent("""
    import sys, time
    import steerflow as sf

    def nap(s):
        time.sleep(s)
        return s

    camp = sf.Campaign(sys.argv[1], progress=False, allocation=sf.Allocation.declare(nodes=1, cores=1))
    camp.submit(sf.Function(nap, args=(120,)))
    camp.run()
""")


def test_cancel_of_an_unknown_key_says_which_keys_there_are(tmp_path):
    script, directory = tmp_path / "camp.py", tmp_path / "c"
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    driver = subprocess.Popen([sys.executable, "-m", "steerflow", "run", str(script), str(directory)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "steerflow", *args], capture_output=True, text=True, timeout=60,
                              env=env)

    try:
        assert wait_until(lambda: "running" in cli("status", str(directory)).stdout.lower(), timeout=60)
        for key in ("99999", "0"):
            out = cli("cancel", str(directory), key)
            assert out.returncode == 2, out.stdout + out.stderr
            assert f"has no task {key}; its tasks are 1 to 1" in out.stderr, out.stderr
        assert cli("cancel", str(directory), "--stop").returncode == 0
        _, err = driver.communicate(timeout=60)
        assert "not a task of this campaign" not in err, err
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
