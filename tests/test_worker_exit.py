"""A warm worker whose driver is already gone when it starts leaves quietly: exit 0, nothing on stderr."""

import os
import subprocess
import sys


def test_worker_started_as_the_driver_dies_exits_quietly():
    to_worker_r, to_worker_w = os.pipe()
    from_worker_r, from_worker_w = os.pipe()
    os.close(from_worker_r)  # the driver's end is gone: the worker's 'ready' hits a broken pipe
    try:
        proc = subprocess.run([sys.executable, "-m", "steerflow.engines.worker", str(to_worker_r), str(from_worker_w)],
                              pass_fds=(to_worker_r, from_worker_w), capture_output=True, timeout=60)
    finally:
        for fd in (to_worker_r, to_worker_w, from_worker_w):
            os.close(fd)
    assert proc.returncode == 0
    assert proc.stderr == b""
