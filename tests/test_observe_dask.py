"""observe on the Dask engine: a Dask task's overheads split like a local one's, in the metrics and the report.

The Dask node agents send the worker's timestamps with each result (journal.pack_timing's format,
on the driver's clock); here a campaign on a real 2-worker cluster on 127.0.0.1 must give every
part of the overhead split for every task, in order, in `metrics.compute`, `steerflow report` and
the dashboard's data.
"""

from __future__ import annotations

import time

import pytest

pytest.importorskip("distributed")

from steerflow import Campaign, Function  # noqa: E402
from steerflow.engines.dask import DaskEngine  # noqa: E402
from steerflow.observe import dashboard, metrics, report, timeline  # noqa: E402

from .dask_cluster import DaskCluster  # noqa: E402

N = 6
SLEEP = 0.1


@pytest.mark.slow
def test_dask_tasks_show_the_whole_overhead_split(tmp_path):
    cluster = DaskCluster(tmp_path / "dask")
    try:
        cluster.start_scheduler()
        for name in ("node0", "node1"):
            cluster.start_worker(name, cores=2, gpus=0, host="127.0.0.1")
        cluster.wait_workers(2)
        camp = Campaign(tmp_path / "c", engine=DaskEngine(cluster.address, min_nodes=2), progress=False)
        for _ in range(N):
            camp.submit(Function(time.sleep, args=(SLEEP,), pool="sim"))
        camp.run()
    finally:
        cluster.stop()
    tl = timeline.read(tmp_path / "c")
    result = metrics.compute(tl)
    assert result["tasks"] == {"done": N}
    for part in ("scheduling", "launch", "data_in", "data_out", "result_return"):
        assert result["overheads"][part]["tasks"] == N, (part, result["overheads"])
    assert result["framework_overhead_share_pct"] > 0
    nodes = set()
    for row in metrics.task_table(tl):
        # one clock: ready, placed, started on the node, ended back on the driver; the sleep is in between
        assert row["submitted"] <= row["ready"] <= row["placed"] <= row["started"] <= row["ended"], row
        assert row["ended"] - row["started"] >= SLEEP * 0.9, row
        nodes.add(row["where"].split("[")[0])
    assert nodes <= {"node0", "node1"} and nodes
    report.build(tmp_path / "c", tmp_path / "r")
    page = (tmp_path / "r" / "report.html").read_text()
    assert "result_return" in page and 'id="fig-overheads"' in page
    data = dashboard.view(tl)
    assert data["metrics"]["overheads"]["launch"]["tasks"] == N and "data_in" in data["html"]["tables"]
