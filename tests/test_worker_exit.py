"""A warm worker whose driver is already gone when it starts leaves quietly: exit 0, nothing on stderr.

A warm worker told to stop runs its atexit handlers and flushes its output, but skips the interpreter's
teardown (the modules a task imported took 30-250 ms to tear down, and a runtime's shutdown waits for it).
"""

import os
import subprocess
import sys
import textwrap

import steerflow as sf


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


def register_atexit(path):
    import atexit

    def write():
        with open(path, "w") as f:
            f.write("ran")

    atexit.register(write)
    return True


def test_a_workers_atexit_handlers_run_when_the_runtime_shuts_down(tmp_path):
    marker = tmp_path / "atexit"
    with sf.Runtime(sf.Allocation.declare(nodes=1, cores=1), run_dir=tmp_path / "run") as rt:
        assert rt.submit(register_atexit, str(marker)).result(timeout=60)
    assert marker.read_text() == "ran"  # (shutdown waits for its workers: the handler ran before it returned)


def test_a_workers_unflushed_print_reaches_the_drivers_output(tmp_path):
    script = textwrap.dedent("""
        import sys
        import steerflow as sf

        def say():
            sys.stdout.write("no newline, still buffered")  # (stdout of a worker is a pipe or file: block-buffered)
            return 1

        if __name__ == "__main__":
            with sf.Runtime(sf.Allocation.declare(nodes=1, cores=1)) as rt:
                rt.submit(say).result(timeout=60)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "no newline, still buffered" in out.stdout
