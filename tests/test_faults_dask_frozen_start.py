"""The Dask engine starting while one worker is frozen (SIGSTOP: swapping, a hung file system, a node cut off).

Found by freezing one of two workers before the campaign started, with `min_nodes=1`. Before: the campaign did
not start at all, "Only 0 of 1 Dask worker(s) ... connected", after twice the connect timeout, with a healthy
worker there: the engine awaited the registration of its worker plugin, which the scheduler answers only once
every worker present has answered, and a frozen one never does. And once the frozen worker thawed it never became
a node: the session opened while it had no agent yet ("No handler steerflow_session" in its log) was never
answered, and never asked again. Now the start waits for the registration only a while, and a session's opening
that is not answered in `hello_s` is asked again.
"""

from __future__ import annotations

import os
import signal

import pytest

pytest.importorskip("distributed")

from steerflow import Runtime  # noqa: E402
from steerflow.engines.dask import DaskEngine  # noqa: E402

from .conftest import wait_until  # noqa: E402
from .dask_cluster import DaskCluster  # noqa: E402


def where() -> str:
    import os

    return os.environ.get("STEERFLOW_NODE_NAME", "?")


def napping_where(seconds: float) -> str:
    import os
    import time

    time.sleep(seconds)
    return os.environ.get("STEERFLOW_NODE_NAME", "?")


def test_a_frozen_worker_holds_up_neither_the_start_nor_its_own_join_once_thawed(tmp_path):
    cluster = DaskCluster(tmp_path / "cluster")
    frozen = None
    try:
        cluster.start_scheduler()
        cluster.start_worker("node0", cores=1)
        cluster.start_worker("node1", cores=1)
        cluster.wait_workers(2)
        frozen = cluster.workers["node1"]
        os.killpg(frozen.pid, signal.SIGSTOP)
        engine = DaskEngine(cluster.address, min_nodes=1, connect_timeout=30)
        engine.hello_s = 5.0  # (20 s by default)
        rt = Runtime(engine=engine, run_dir=tmp_path / "run")  # before: AllocationError "Only 0 of 1 ..."
        try:
            assert rt.submit(where).result(timeout=60) == "node0"
            os.killpg(frozen.pid, signal.SIGCONT)
            frozen = None
            assert wait_until(lambda: sum(link.online for link in engine._links.values()) == 2,  # noqa: SLF001
                              timeout=60), "node1 should join once it thaws"  # before: never
            names = {f.result(timeout=60) for f in [rt.submit(napping_where, 1.0) for _ in range(2)]}
            assert names == {"node0", "node1"}  # (one core each: the two run at once, one on each)
        finally:
            rt.shutdown(wait=False, cancel_futures=True)
    finally:
        if frozen is not None:
            os.killpg(frozen.pid, signal.SIGCONT)
        cluster.stop()
