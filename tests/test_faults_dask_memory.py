"""The Dask engine when a task's result would not fit its Dask worker's memory limit.

A result that is no buffer (a list, a dict: pickled in-band) is held by the node's agent, inside the Dask worker
process, while it is sent. Found with `DaskEngine(cluster={"memory_limit": "300MB"})` and a task returning
`list(range(20_000_000))` (100 MB pickled): the nanny restarted the worker ("exceeded 95% memory budget"), ending
every task on the node; the task was lost, retried, restarted the worker again, three times, and failed as
"WorkerLost: its node left the Dask cluster", with nothing about memory. The same on the way in: a task given
`list(range(30_000_000))` (150 MB) restarted the worker three times as it unpacked them. Now such a task fails
with a MemoryError that says why and what to change, and the node (and what else runs there) carries on. NumPy
results stay in the node's shared memory and are not held by the worker at all.
"""

from __future__ import annotations

import os

import pytest

pytest.importorskip("distributed")

from steerflow import Runtime  # noqa: E402
from steerflow.engines.dask import DaskEngine  # noqa: E402

LIMIT = "500MB"


def numbers(n: int) -> list[int]:
    return list(range(n))


def ones(n: int):
    import numpy as np

    return np.ones(n, dtype=np.uint8)


def napping(seconds: float) -> str:
    import time

    time.sleep(seconds)
    return "slept"


def count(items: list) -> int:
    return len(items)


def worker_pid() -> int:
    import os

    return os.getppid()  # (warm workers are children of the Dask worker process, where the agent runs)


@pytest.mark.slow
def test_a_result_past_the_workers_memory_limit_fails_its_task_not_the_node(tmp_path):
    rt = Runtime(engine=DaskEngine(cluster={"n_workers": 1, "memory_limit": LIMIT}, connect_timeout=120),
                 run_dir=tmp_path / "run")
    try:
        pid = rt.submit(worker_pid).result(timeout=120)
        assert pid != os.getpid()
        beside = rt.submit(napping, 3.0)  # another task on the same node, running meanwhile
        big = rt.submit(numbers, 32_000_000)  # ~160 MB pickled, in-band (receiving it takes ~2x, sending ~3x)
        with pytest.raises(MemoryError, match="memory limit") as info:  # before: WorkerLost after 3 restarts
            big.result(timeout=120)
        assert "return large data as NumPy arrays" in str(info.value)
        assert beside.result(timeout=60) == "slept"
        with pytest.raises(MemoryError, match=r"cannot start on node .* its arguments are 1\d\d MB"):
            rt.submit(count, list(range(34_000_000))).result(timeout=120)  # before: WorkerLost after 3 restarts
        assert rt.submit(worker_pid).result(timeout=60) == pid  # never restarted
        assert len(rt.submit(numbers, 1_000_000).result(timeout=60)) == 1_000_000  # small ones still go
        assert rt.submit(count, list(range(1_000_000))).result(timeout=60) == 1_000_000
        assert len(rt.submit(ones, 300_000_000).result(timeout=120)) == 300_000_000  # kept in shared memory
        assert rt.submit(worker_pid).result(timeout=60) == pid
    finally:
        rt.shutdown()


@pytest.mark.slow
def test_a_kept_result_too_large_to_send_stays_on_its_node_and_says_why(tmp_path):
    # Found with a 150 MB NumPy result (180 MB here) kept on a node whose host is not the driver's (so `result()` fetches it over
    # the comm) and whose worker has a 400 MB limit: the agent copied it into the worker's memory to send it, the
    # nanny restarted the worker, every task on the node ended, and the result was lost ("cannot be reached").
    from .dask_cluster import BIN, DaskCluster
    from steerflow.engines.dask_batch import QUIET_WORKER

    cluster = DaskCluster(tmp_path / "cluster")
    try:
        cluster.start_scheduler()
        cmd = [str(BIN / "dask"), "worker", cluster.address, "--nthreads", "1", "--no-dashboard", "--worker-class",
               QUIET_WORKER, "--host", "127.0.0.1", "--name", "node0", "--resources", "cores=1,gpus=0",
               "--memory-limit", LIMIT, "--death-timeout", "60"]  # (with its nanny, which enforces the limit)
        cluster.workers["node0"] = cluster._spawn(  # noqa: SLF001
            cmd, "worker-node0", {"STEERFLOW_NODE_NAME": "node0", "STEERFLOW_NODE_HOST": "another-machine"})
        cluster.wait_workers(1)
        rt = Runtime(engine=DaskEngine(cluster.address, min_nodes=1, connect_timeout=60), run_dir=tmp_path / "run")
        try:
            pid = rt.submit(worker_pid).result(timeout=60)
            big = rt.submit(ones, 180_000_000)
            assert rt.submit(len, big).result(timeout=60) == 180_000_000  # read on its node: mapped, not copied
            with pytest.raises(Exception, match="memory limit") as info:  # before: lost ("cannot be reached")
                big.result(timeout=120)
            assert "left on that node for the tasks that read it there" in str(info.value)
            assert rt.submit(worker_pid).result(timeout=60) == pid  # never restarted
        finally:
            rt.shutdown()
    finally:
        cluster.stop()
