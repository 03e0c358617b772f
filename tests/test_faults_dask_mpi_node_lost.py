"""The Dask engine when one node of a running two-node MPI task is lost (its Dask worker SIGKILLed).

Found by killing the second node's worker under `Executable([...], ranks=2, nodes=2, launcher="mpirun")`. The
task was reported lost (and retried) as the node left, and then the first node, told to kill its ranks, reported
the same attempt's end again: the runtime submitted the task to the scheduler a second time and it failed with
"TaskFailed: ... ValueError: Request id 1 is already waiting". Now an attempt reported lost is not ended twice:
the task waits for two nodes, and runs once the worker is back.
"""

from __future__ import annotations

import os
import shutil
import signal

import pytest

pytest.importorskip("distributed")

from steerflow import Executable, Runtime  # noqa: E402
from steerflow.engines.dask import DaskEngine  # noqa: E402

from .conftest import wait_until  # noqa: E402
from .dask_cluster import DaskCluster  # noqa: E402


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="needs mpirun")
def test_a_lost_node_of_an_mpi_task_ends_its_attempt_once_and_the_task_runs_again(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    again = tmp_path / "again"
    script = (f'if [ -e {again} ]; then echo "rank $STEERFLOW_RANK ran"; '
              f'else echo $$ > {marks}/$STEERFLOW_RANK; exec sleep 120; fi')
    cluster = DaskCluster(tmp_path / "cluster")
    try:
        cluster.start_scheduler()
        cluster.start_worker("node0", cores=1, host="localhost")
        cluster.start_worker("node1", cores=1, host="127.0.0.1")
        cluster.wait_workers(2)
        rt = Runtime(engine=DaskEngine(cluster.address, min_nodes=2, connect_timeout=60), run_dir=tmp_path / "run")
        try:
            task = rt.submit(Executable(["sh", "-c", script], ranks=2, nodes=2, launcher="mpirun"))
            assert wait_until(lambda: len(os.listdir(marks)) == 2, timeout=90), "both ranks should start"
            os.kill(cluster.workers.pop("node1").pid, signal.SIGKILL)  # the worker process alone, as the OOM killer
            assert wait_until(lambda: sum(link.online for link in rt.engine._links.values()) == 1,  # noqa: SLF001
                              timeout=30)
            again.touch()
            assert not wait_until(task.done, timeout=3)  # before: failed here ("Request id 1 is already waiting")
            cluster.start_worker("node1", cores=1, host="127.0.0.1")
            result = task.result(timeout=120)
            assert result.returncode == 0
            assert sorted(result.stdout_path.read_text().split("\n")[:-1]) == ["rank 0 ran", "rank 1 ran"]
        finally:
            rt.shutdown(wait=False, cancel_futures=True)
    finally:
        cluster.stop()
