"""A `Runtime` nobody shut down, at interpreter exit: as CPython's `test_concurrent_futures` expects of an
executor (`test_interpreter_shutdown`, `test_submit_after_interpreter_shutdown`, `test_hang_gh83386`).

A script that submits and ends loses nothing: the tasks finish before Python exits (they were killed
before), with a line on stderr saying so; Ctrl-C during that wait stops them at once; a submit from a
later exit hook raises `RuntimeError`.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

from .conftest import wait_until

HEADER = """
import atexit, sys, time
import steerflow as sf

def sleep_and_print(t, msg):
    time.sleep(t)
    print(msg)
    sys.stdout.flush()
"""


def run_script(tmp_path: Path, body: str, timeout: float = 60) -> subprocess.CompletedProcess:
    script = tmp_path / "script.py"
    script.write_text(HEADER + body)
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=timeout,
                          cwd=tmp_path)


def test_tasks_submitted_by_a_script_that_ends_still_finish(tmp_path):
    done = run_script(tmp_path, """
if __name__ == "__main__":
    rt = sf.Runtime(sf.Allocation.declare(nodes=1, cores=2), run_dir="run")
    rt.submit(sleep_and_print, 0.5, "apple")
""")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "apple"
    assert "waiting for 1 submitted task(s) to finish before Python exits" in done.stderr


def test_shutdown_without_waiting_lets_the_task_finish_at_exit(tmp_path):
    done = run_script(tmp_path, """
if __name__ == "__main__":
    rt = sf.Runtime(sf.Allocation.declare(nodes=1, cores=2), run_dir="run")
    rt.submit(sleep_and_print, 0.5, "apple")
    rt.shutdown(wait=False)
""")
    assert done.returncode == 0 and done.stdout.strip() == "apple" and not done.stderr


def test_a_submit_from_a_later_exit_hook_raises_runtime_error(tmp_path):
    done = run_script(tmp_path, """
@atexit.register
def run_last():
    try:
        rt.submit(id, None)
    except RuntimeError:
        print("runtime-error")

if __name__ == "__main__":
    rt = sf.Runtime(sf.Allocation.declare(nodes=1, cores=2), run_dir="run")
    rt.submit(id, 42).result()
""")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "runtime-error"


def test_ctrl_c_while_python_waits_at_exit_stops_the_tasks(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(HEADER + """
if __name__ == "__main__":
    rt = sf.Runtime(sf.Allocation.declare(nodes=1, cores=2), run_dir="run")
    for _ in range(3):
        rt.submit(sleep_and_print, 60, "should not print")
""")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path)
    err_lines: list[str] = []
    reader = threading.Thread(target=lambda: err_lines.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()
    try:
        # in its exit wait once it says so (not after a fixed time: under load it may not be there yet)
        assert wait_until(lambda: any("waiting for 3 submitted task(s)" in line for line in err_lines), timeout=60), \
            err_lines
        proc.send_signal(signal.SIGINT)
        out = proc.stdout.read()
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert "should not print" not in out
