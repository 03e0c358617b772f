"""A program's partial-results pipe ($STEERFLOW_PARTIAL) lives in shared memory, not on the run's disk.

Making and removing a named pipe next to the task's output files cost a journalled metadata write
each (0.1-1 ms per program on a busy disk, in the driver's loop); in ``/dev/shm`` it costs a few us.
Checked: the pipe is there while the program runs, private, named so no one can guess it, streams
its lines, and is gone when the task ends, on both program paths; one left by a driver that died
is removed by the next runtime's clean-up.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

import steerflow as sf
from steerflow import serialize
from steerflow.engines.local import LocalEngine

SHOW = ('stat -c "%F %a" "$STEERFLOW_PARTIAL"; echo "$STEERFLOW_PARTIAL"; '
        'echo "{\\"step\\": 1}" > "$STEERFLOW_PARTIAL"; echo "{\\"step\\": 2}" > "$STEERFLOW_PARTIAL"')


@pytest.mark.parametrize("in_workers", [True, False], ids=["worker", "launcher"])
def test_a_programs_partial_pipe_is_private_in_shared_memory_and_gone_after(tmp_path, in_workers):
    partials = []
    with sf.Runtime(sf.Allocation.declare(nodes=1, cores=1), run_dir=tmp_path / "run",
                    engine=LocalEngine(programs_in_workers=in_workers)) as rt:
        rt.add_partial_listener(lambda record, attempt, value: partials.append(value))
        done = rt.submit(sf.Executable(["bash", "-c", SHOW]))
        assert done.result(timeout=60).returncode == 0
        kind, path = done.result().stdout.splitlines()
    assert kind == "fifo 600"
    assert os.path.dirname(path) == serialize.SHM_DIR
    assert os.path.basename(path).startswith(f"{serialize.PREFIX}{os.getpid()}-")
    assert len(os.path.basename(path)) > len(f"{serialize.PREFIX}{os.getpid()}-") + 16  # a random part
    assert partials == [{"step": 1}, {"step": 2}]
    assert not os.path.exists(path)
    assert not list((tmp_path / "run" / "tasks").glob("*.partial"))


def test_a_pipe_left_by_a_driver_that_died_is_removed_by_the_next_clean_up(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    path = os.path.join(serialize.SHM_DIR, f"{serialize.PREFIX}{dead.stdout.strip()}-{os.urandom(8).hex()}-7.1.partial")
    os.mkfifo(path, 0o600)
    try:
        assert stat.S_ISFIFO(os.stat(path).st_mode)
        os.utime(path, (0, 0))  # (older than any process now alive with that pid)
        serialize.cleanup_stale()
        assert not os.path.exists(path)
    finally:
        if os.path.exists(path):
            os.unlink(path)
