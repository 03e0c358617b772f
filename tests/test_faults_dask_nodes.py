"""Dask workers declared wrong: 0 cores, or STEERFLOW_NODE_CPUS naming CPUs the worker may not run on. Before,
the first was left out silently (the driver said only "check their logs", which said nothing) and the second
took the node and failed each of its tasks with a bare 'OSError: [Errno 22] Invalid argument' from
sched_setaffinity. Now the worker refuses to be a node and the driver's error says which worker and why."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("distributed")

from steerflow import Runtime  # noqa: E402
from steerflow.engines.dask import DaskEngine  # noqa: E402
from steerflow.errors import AllocationError  # noqa: E402

from .dask_cluster import DaskCluster  # noqa: E402

NOT_MINE = str(max(os.sched_getaffinity(0)) + 1000)


@pytest.mark.parametrize("cores, env, says", [
    (0, {}, r"This Dask worker declares 0 core\(s\) .*needs at least 1"),
    (1, {"STEERFLOW_NODE_CPUS": NOT_MINE}, rf"STEERFLOW_NODE_CPUS={NOT_MINE} names CPU\(s\) \[{NOT_MINE}\] this "
                                           "Dask worker may not run on"),
])
def test_a_worker_declared_wrong_is_named_with_its_reason(tmp_path, cores, env, says):
    cluster = DaskCluster(tmp_path / "cluster")
    try:
        cluster.start_scheduler()
        cluster.extra_env.update(env)
        cluster.start_worker("node0", cores=cores)
        cluster.wait_workers(1)
        with pytest.raises(AllocationError, match=rf"Only 0 of 1 .* The worker at tcp://127.0.0.1:\d+ is no node: "
                                                  rf"{says}"):
            Runtime(engine=DaskEngine(cluster.address, min_nodes=1, connect_timeout=5), run_dir=tmp_path / "run")
    finally:
        cluster.stop()
