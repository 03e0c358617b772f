"""The Dask engine with a node that freezes (SIGSTOP: a worker swapping to death, an NFS hang, a node cut off
whose TCP connections stay open): a task there with a timeout must still end at its timeout (plus a bounded
answer time), not when Dask's worker-ttl drops the worker 5-10 minutes later; the node is taken as gone, its
tasks run elsewhere, and it joins again once it thaws."""

from __future__ import annotations

import os
import signal
import time

import pytest

pytest.importorskip("distributed")

from steerflow import Function, Runtime, TaskTimeout  # noqa: E402
from steerflow.engines.dask import DaskEngine  # noqa: E402

from .conftest import wait_until  # noqa: E402
from .dask_cluster import DaskCluster  # noqa: E402


def mark_and_sleep(folder: str, seconds: float) -> str:
    import os
    import socket
    import time

    open(os.path.join(folder, f"{os.getpid()}"), "w").close()
    time.sleep(seconds)
    return os.environ.get("STEERFLOW_NODE_NAME", socket.gethostname())


def where() -> str:
    import os

    return os.environ.get("STEERFLOW_NODE_NAME", "?")


def test_a_timeout_holds_on_a_frozen_node_and_the_node_comes_back(tmp_path):
    cluster = DaskCluster(tmp_path / "cluster")
    stopped = None
    try:
        cluster.start_scheduler()
        cluster.start_worker("node0", cores=1)
        cluster.start_worker("node1", cores=1)
        cluster.wait_workers(2)
        marks = tmp_path / "marks"
        marks.mkdir()
        rt = Runtime(engine=DaskEngine(cluster.address, min_nodes=2), run_dir=tmp_path / "run")
        rt.engine.kill_answer_s = 3.0  # (30 s by default)
        try:
            # this module imported in each node's warm worker first, with no timeout: under load (~8) that import
            # (pytest, distributed) took more than the tasks' timeout, which counts it, and they timed out before
            # they wrote their marks ("both tasks should start", once in a full suite)
            warm = tmp_path / "warm"
            warm.mkdir()
            assert {f.result(timeout=120) for f in [rt.submit(Function(mark_and_sleep, args=(str(warm), 1.0)))
                                                    for _ in range(2)]} == {"node0", "node1"}
            futures = [rt.submit(Function(mark_and_sleep, args=(str(marks), 120), timeout=5, retries=0))
                       for _ in range(2)]
            assert wait_until(lambda: len(os.listdir(marks)) == 2, timeout=60), "both tasks should start"
            stopped = cluster.workers["node1"]
            os.killpg(stopped.pid, signal.SIGSTOP)
            started = time.monotonic()
            for future in futures:  # before: node1's task waited for Dask's worker-ttl (~10 min here)
                with pytest.raises(TaskTimeout):
                    future.result(timeout=60)
            assert time.monotonic() - started < 40
            assert rt.submit(where).result(timeout=60) == "node0"  # the frozen node gets no new work
            os.killpg(stopped.pid, signal.SIGCONT)
            stopped = None
            assert wait_until(lambda: all(link.online for link in rt.engine._links.values()),  # noqa: SLF001
                              timeout=60), "node1 should join again once it thaws"
            names = {f.result(timeout=60) for f in [rt.submit(Function(mark_and_sleep, args=(str(marks), 0.5)))
                                                    for _ in range(4)]}
            assert names == {"node0", "node1"}
        finally:
            rt.shutdown(wait=False, cancel_futures=True)
    finally:
        if stopped is not None:
            os.killpg(stopped.pid, signal.SIGCONT)
        cluster.stop()


def test_a_killed_scheduler_fails_the_waiting_tasks_once_the_client_gives_up(tmp_path):
    # before: the workers went with it, and the waiting tasks failed only after no_nodes_timeout (300 s), saying
    # "every Dask worker has been gone" and to start workers again, while the scheduler was what was missing
    cluster = DaskCluster(tmp_path / "cluster")
    try:
        cluster.start_scheduler()
        cluster.start_worker("node0", cores=1)
        cluster.wait_workers(1)
        marks = tmp_path / "marks"
        marks.mkdir()
        # (connect_timeout bounds the start too: 3 s, as before, was tight for a start at load ~8)
        rt = Runtime(engine=DaskEngine(cluster.address, min_nodes=1, connect_timeout=10), run_dir=tmp_path / "run")
        try:
            futures = [rt.submit(Function(mark_and_sleep, args=(str(marks), 30))) for _ in range(3)]
            assert wait_until(lambda: len(os.listdir(marks)) == 1, timeout=60)
            os.killpg(cluster.scheduler.pid, signal.SIGKILL)
            started = time.monotonic()
            with pytest.raises(Exception, match="The Dask scheduler .* is gone"):
                futures[-1].result(timeout=90)
            assert time.monotonic() - started < 60
        finally:
            rt.shutdown(wait=False, cancel_futures=True)
    finally:
        cluster.stop()
