"""A Dask node lost with the large results it kept (by reference): never a hang.

A real `dask scheduler` and 2 `dask worker` processes on 127.0.0.1 (declaring different hosts, so
that results travel node to node rather than through this machine's shared memory). A task's 8 MB
result stays on its node; that worker is SIGKILLed; a task that reads the result starts afterwards
on the other node: the result is recomputed there (its task's function run again, on the reader's
node, unseen by the driver), and the reader gets the right value. The driver's own
`future.result()` of the lost result fails at once with an error that says it was lost. Recomputation
nests: a lost result whose maker read a lost result too has that one made again first.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")
pytest.importorskip("numpy")

from steerflow import Runtime  # noqa: E402
from steerflow.engines.dask import DaskEngine  # noqa: E402
from steerflow.proctree import descendants  # noqa: E402

from .conftest import wait_until  # noqa: E402
from .dask_cluster import DaskCluster  # noqa: E402
from .test_pipelining import BOUND, block_until, wait_for  # noqa: E402


def make_big(n_mb: int, log: str):
    import numpy as np

    with open(log, "a") as f:
        f.write(f"{os.environ['STEERFLOW_NODE']}\n")
    return np.full(n_mb * 131072, 7.0)


def total(array, other) -> tuple[float, str]:
    return float(array.sum()), os.environ["STEERFLOW_NODE"]


def test_a_lost_nodes_kept_result_is_recomputed_for_its_readers(tmp_path):
    cluster = DaskCluster(tmp_path / "cluster")
    cluster.start_scheduler()
    cluster.start_worker("node0", cores=1, host="localhost")
    cluster.start_worker("node1", cores=1, host="127.0.0.1")
    cluster.wait_workers(2)
    try:
        rt = Runtime(engine=DaskEngine(cluster.address, min_nodes=2), run_dir=tmp_path / "run")
        try:
            gate, mark, log = str(tmp_path / "gate"), str(tmp_path / "q-runs"), str(tmp_path / "made")
            q = rt.submit(block_until, gate, mark)  # holds one node until the test says
            wait_for(mark)
            big = rt.submit(make_big, 8, log)  # on the other node; its 8 MB result stays there
            reader = rt.submit(total, big, q)  # starts once both ended: after big's node is gone
            assert wait_until(lambda: big.done(), timeout=BOUND)
            owner = rt.task(big.task_id).attempts[-1].nodes[0]
            assert owner != rt.task(q.task_id).attempts[-1].nodes[0]
            assert rt.engine._refs, "the result did not stay on its node: the test proves nothing"
            cluster.kill_worker(owner)  # SIGKILL: its agent and the result it kept are gone
            assert wait_until(lambda: rt.engine._lost, timeout=BOUND), "the driver never noticed the lost node"
            Path(gate).touch()
            value, where = reader.result(timeout=BOUND)
            assert value == 8 * 131072 * 7.0 and where != owner
            assert Path(log).read_text().split() == [owner, where]  # made twice: the second time on the reader's node
            assert [a.outcome for a in rt.task(reader.task_id).attempts] == ["done"]
            t0 = time.monotonic()
            with pytest.raises(Exception, match="lost with that node"):  # the driver's own copy: lost, said so
                big.result(timeout=BOUND)
            assert time.monotonic() - t0 < 25, "no connect timeout to wait out: the driver knows the node left"
        finally:
            rt.shutdown(kill=True)
        survivors = [p.pid for p in cluster.workers.values()]
        assert wait_until(lambda: not any(descendants(p) for p in survivors), timeout=15)
    finally:
        cluster.stop()


def twice(array, log: str):
    with open(log, "a") as f:
        f.write(f"{os.environ['STEERFLOW_NODE']}\n")
    return array * 2


def test_recomputation_nests_when_the_maker_read_a_lost_result_too(tmp_path):
    """``b = twice(a)``, both kept on the node that is lost: a reader of ``b`` on the other node has ``a``
    made again there first, then ``b`` from it (recomputation nests)."""
    cluster = DaskCluster(tmp_path / "cluster")
    cluster.start_scheduler()
    cluster.start_worker("node0", cores=1, host="localhost")
    cluster.start_worker("node1", cores=1, host="127.0.0.1")
    cluster.wait_workers(2)
    try:
        rt = Runtime(engine=DaskEngine(cluster.address, min_nodes=2), run_dir=tmp_path / "run")
        try:
            gate, mark = str(tmp_path / "gate"), str(tmp_path / "q-runs")
            log_a, log_b = str(tmp_path / "made-a"), str(tmp_path / "made-b")
            q = rt.submit(block_until, gate, mark)  # holds one node until the test says
            wait_for(mark)
            a = rt.submit(make_big, 8, log_a)  # both on the other node, both kept there
            b = rt.submit(twice, a, log_b)
            reader = rt.submit(total, b, q)
            assert wait_until(lambda: b.done(), timeout=BOUND)
            owner = rt.task(b.task_id).attempts[-1].nodes[0]
            assert rt.task(a.task_id).attempts[-1].nodes[0] == owner != rt.task(q.task_id).attempts[-1].nodes[0]
            assert len(rt.engine._refs) == 2, "the results did not stay on their node: the test proves nothing"
            cluster.kill_worker(owner)
            assert wait_until(lambda: len(rt.engine._lost) == 2, timeout=BOUND), "the driver never noticed"
            Path(gate).touch()
            value, where = reader.result(timeout=BOUND)
            assert value == 2 * 8 * 131072 * 7.0 and where != owner
            assert Path(log_a).read_text().split() == [owner, where]  # each made twice: again on the reader's node
            assert Path(log_b).read_text().split() == [owner, where]
            assert [x.outcome for x in rt.task(reader.task_id).attempts] == ["done"]
            del a  # (the driver's copy of `a` held it; b's maker read it)
        finally:
            rt.shutdown(kill=True)
        survivors = [p.pid for p in cluster.workers.values()]
        assert wait_until(lambda: not any(descendants(p) for p in survivors), timeout=15)
    finally:
        cluster.stop()

