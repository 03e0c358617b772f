"""A task's timeout counts from when it begins, not from when it is sent to a worker still starting.

A new warm worker takes 0.02-0.5 s to start (more under load), and the runtime starts one whenever no idle
worker fits the task (another binding, or one killed at a timeout). Counted from the send, a short timeout
killed tasks that had not begun, and each kill started another worker: 30 of the mixed set's 120 tasks with
timeouts of 1.3x their run time failed at load 5.
"""
import time

import steerflow as sf


def nap(seconds):
    time.sleep(seconds)
    return seconds


SLOW_START = """import os, time
if os.environ.get("SF_TEST_SLOW_START"):
    time.sleep(float(os.environ["SF_TEST_SLOW_START"]))
"""


def test_a_short_timeout_does_not_count_a_new_workers_start(tmp_path, monkeypatch):
    # every worker's start takes 1 s more (its Python runs this sitecustomize first): so a new worker's start
    # surely outlasts the timeout below, and the task surely fits in it, at any load (with a real start of
    # 20-500 ms against a 20 ms timeout and a 5 ms task, a loaded machine failed it)
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SLOW_START)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))  # (the workers' PYTHONPATH is the driver's sys.path)
    monkeypatch.setenv("SF_TEST_SLOW_START", "1.0")
    with sf.Runtime(sf.Allocation.declare(nodes=1, cores=2), run_dir=tmp_path / "run") as rt:
        assert rt.submit(nap, 0.0).result(timeout=60) == 0.0  # a 1-core worker is warm; a 2-core one is not
        started = time.monotonic()
        # a 2-core function needs a worker started for 2 threads: its start (> 1 s here) is not the task's
        future = rt.submit(sf.Function(nap, (0.005,), cores=2, timeout=0.5))
        assert future.result(timeout=60) == 0.005
        assert time.monotonic() - started > 0.5  # (the worker's start did take longer than the timeout)
        # and a timeout still holds once the task has begun
        late = rt.submit(sf.Function(nap, (30,), cores=2, timeout=0.3))
        t0 = time.monotonic()
        try:
            late.result(timeout=60)
        except sf.TaskFailed as exc:
            assert "timeout" in str(exc)
        else:
            raise AssertionError("a task past its timeout was not killed")
        assert time.monotonic() - t0 < 20
