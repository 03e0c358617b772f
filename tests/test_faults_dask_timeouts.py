"""Function timeouts on the Dask engine behave as on the local engine (`steerflow.interrupts`): at the deadline
`TimedOut` is raised in the task inside its node's warm worker, which stays warm; a task that does not yield is
killed a grace later; and the clock starts when the task really starts, not while it waits for its node's warm
worker to start. A real `dask scheduler` and `dask worker` on 127.0.0.1 (tests/dask_cluster.py)."""

from __future__ import annotations

import os
import sys
import time

import pytest

pytest.importorskip("distributed")

from steerflow import Function, Runtime, TaskTimeout  # noqa: E402
from steerflow.engines.dask import DaskEngine  # noqa: E402

from .conftest import wait_until  # noqa: E402
from .dask_cluster import DaskCluster  # noqa: E402

# Python's start-up runs this in every process of the node's worker started after the marker file appears
# (its warm workers: ``python -m steerflow.engines.worker`` with four descriptor numbers): a slow worker start
SLOW_START = r'''
import os, sys, time
marker = os.environ.get("STEERFLOW_TEST_SLOW_START", "")
if marker and os.path.exists(marker) and len(sys.argv) == 5 and all(a.isdigit() for a in sys.argv[1:]):
    time.sleep(float(open(marker).read() or 0))
'''


def sleep_with_finally(folder: str, seconds: float) -> None:
    import os
    import time

    try:
        time.sleep(seconds)
    finally:
        open(os.path.join(folder, f"finally-{os.getpid()}"), "w").close()


def swallow_interrupts(folder: str, seconds: float) -> None:
    import os
    import time

    from steerflow import TimedOut

    open(os.path.join(folder, f"swallowing-{os.getpid()}"), "w").close()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            time.sleep(max(0.0, end - time.monotonic()))
        except TimedOut:
            pass


@pytest.fixture
def one_node(tmp_path):
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(SLOW_START)
    slow = tmp_path / "slow-start"
    cluster = DaskCluster(tmp_path / "cluster", extra_env={
        "PYTHONPATH": os.pathsep.join([str(folder), *[p for p in sys.path if p]]),
        "STEERFLOW_TEST_SLOW_START": str(slow)})
    try:
        cluster.start_scheduler()
        cluster.start_worker("node0", cores=1)
        cluster.wait_workers(1)
        rt = Runtime(engine=DaskEngine(cluster.address, min_nodes=1, connect_timeout=60), run_dir=tmp_path / "run")
        try:
            yield rt, slow
        finally:
            rt.shutdown(wait=False, cancel_futures=True)
    finally:
        cluster.stop()


def test_a_function_past_its_timeout_is_interrupted_and_its_warm_worker_stays(one_node, tmp_path):
    rt, _ = one_node
    marks = tmp_path / "marks"
    marks.mkdir()
    warm = tmp_path / "warm"
    warm.mkdir()
    # (its module imported in the warm worker first, without a timeout: under load that import takes seconds, and a
    # timeout counts it, on the local engine too)
    rt.submit(Function(sleep_with_finally, args=(str(warm), 0))).result(timeout=60)
    pid = rt.submit(os.getpid).result(timeout=60)
    future = rt.submit(Function(sleep_with_finally, args=(str(marks), 60), timeout=1, retries=0))
    with pytest.raises(TaskTimeout) as info:
        future.result(timeout=60)
    assert str(info.value) == f"Task {future.task_id} ran past its timeout of 1 s and was killed."  # (as locally)
    # as on the local engine: where the task was when interrupted (before: killed, no note)
    assert any("where its timeout interrupted it" in note and "sleep_with_finally" in note
               for note in getattr(info.value, "__notes__", [])), getattr(info.value, "__notes__", None)
    assert (marks / f"finally-{pid}").exists(), "the task's finally block should have run in its worker"
    # the same warm worker runs the next task (before: killed at the timeout, a new worker started)
    assert rt.submit(os.getpid).result(timeout=60) == pid
    # a retry of a timed-out function runs there too
    retried = rt.submit(Function(sleep_with_finally, args=(str(marks), 60), timeout=0.5, retries=1))
    with pytest.raises(TaskTimeout):
        retried.result(timeout=60)
    assert len(rt.task(retried.task_id).attempts) == 2
    assert rt.submit(os.getpid).result(timeout=60) == pid


def test_a_function_that_swallows_the_interrupt_is_killed_after_the_grace_and_the_next_clock_starts_late(
        one_node, tmp_path):
    rt, slow = one_node
    marks = tmp_path / "marks"
    marks.mkdir()
    rt.submit(Function(swallow_interrupts, args=(str(tmp_path), 0))).result(timeout=60)  # (imported: see above)
    pid = rt.submit(os.getpid).result(timeout=60)
    sent = time.monotonic()
    future = rt.submit(Function(swallow_interrupts, args=(str(marks), 60), timeout=1, retries=0))
    assert wait_until(lambda: (marks / f"swallowing-{pid}").exists(), timeout=60), "the task should start"
    slow.write_text("4")  # the worker that replaces the one killed takes 4 s more to start
    with pytest.raises(TaskTimeout, match=r"ran past its timeout of 1 s and was killed"):
        future.result(timeout=60)
    # killed only after the interrupt's grace (1 s), not at the deadline (before: at the deadline)
    assert time.monotonic() - sent >= 1.95
    # the next task waits for the new worker's start: its 2 s count from its start (before: from the send, and it
    # was killed while the worker started)
    assert rt.submit(Function(os.getpid, timeout=2, retries=0)).result(timeout=90) != pid
