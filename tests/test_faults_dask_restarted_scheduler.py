"""The Dask engine when its scheduler is restarted at the same address (by an admin, systemd, a batch script).

Dask's client reconnects to the new scheduler by itself, and workers started again join it. Found by killing the
scheduler mid-campaign, starting it again on its port and starting a worker: before, the new worker never became
a node (the new scheduler did not know steerflow's worker plugin, so the worker had no agent: "KeyError:
'steerflow_session'" in its log only), and the task waited, silently, until `no_nodes_timeout` (300 s) said every
worker was gone, while one was there. Now the engine registers its plugin again when the scheduler it talks to
changes, and the worker joins as the node it was.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

pytest.importorskip("distributed")

from steerflow import Runtime  # noqa: E402
from steerflow.engines.dask import DaskEngine  # noqa: E402

from .conftest import wait_until  # noqa: E402
from .dask_cluster import BIN, DaskCluster  # noqa: E402


def where() -> str:
    import os

    return os.environ.get("STEERFLOW_NODE_NAME", "?")


@pytest.mark.slow
def test_a_scheduler_restarted_at_its_address_gets_its_workers_back_as_nodes(tmp_path):
    cluster = DaskCluster(tmp_path / "cluster")
    try:
        cluster.start_scheduler()
        cluster.start_worker("node0", cores=1)
        cluster.wait_workers(1)
        port = cluster.address.rsplit(":", 1)[1]
        rt = Runtime(engine=DaskEngine(cluster.address, min_nodes=1, connect_timeout=60), run_dir=tmp_path / "run")
        try:
            assert rt.submit(where).result(timeout=60) == "node0"
            os.killpg(cluster.scheduler.pid, signal.SIGKILL)  # (its workers stop with it: Dask's way)
            cluster.scheduler.wait(timeout=10)
            assert wait_until(lambda: not any(link.online for link in rt.engine._links.values()),  # noqa: SLF001
                              timeout=30), "the node should go with its worker"
            for proc in cluster.workers.values():
                proc.wait(timeout=30)
            cluster.workers.clear()
            cluster.scheduler = cluster._spawn([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1",  # noqa: SLF001
                                                "--port", port, "--no-dashboard"], "scheduler-again", {})
            cluster.start_worker("node0", cores=1)
            started = time.monotonic()
            assert rt.submit(where).result(timeout=90) == "node0"  # before: never (waited for no_nodes_timeout)
            assert time.monotonic() - started < 80
            assert len(rt.engine._nodes) == 1  # noqa: SLF001 - the node it was, not a new one
        finally:
            rt.shutdown(wait=False, cancel_futures=True)
    finally:
        cluster.stop()
