"""The Dask engine's servers listen only where they must, and a killed test run leaves no Dask process.

- the scheduler of a jobqueue (or LocalCluster) the engine starts opens no HTTP/dashboard port
  unless asked: its process listens on the scheduler's comm port only;
- the test fixture's `dask scheduler` / `dask worker` processes die with the test process, even
  when it is SIGKILLed (no tear-down runs then).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

from steerflow.proctree import process_alive  # noqa: E402

from .conftest import wait_until  # noqa: E402
from .dask_cluster import SETPRIV  # noqa: E402


def _listening() -> set[int]:
    return {c.laddr.port for c in psutil.Process().net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}


def _new_ports_of_a_jobqueue_scheduler(**scheduler_options) -> tuple[set[int], int]:
    pytest.importorskip("dask_jobqueue")
    from steerflow.engines.dask_batch import start_jobqueue

    async def main() -> tuple[set[int], int]:
        before = _listening()
        # no pilot job is submitted (nodes=0): only the scheduler starts, in this process
        cluster, _ = await start_jobqueue({"system": "slurm", "nodes": 0, "cores": 1,
                                           "scheduler_options": {"host": "127.0.0.1", **scheduler_options}})
        try:
            port = int(cluster.scheduler_address.rsplit(":", 1)[1])
            return _listening() - before, port
        finally:
            await cluster.close()

    return asyncio.run(main())


def test_jobqueue_scheduler_listens_only_on_its_comm_port():
    new, port = _new_ports_of_a_jobqueue_scheduler()
    assert new == {port}, f"the scheduler opened ports {sorted(new)}; only its comm port {port} was expected"


def test_jobqueue_scheduler_serves_a_dashboard_when_asked():
    new, port = _new_ports_of_a_jobqueue_scheduler(dashboard_address="127.0.0.1:0")
    assert port in new and len(new) == 2, new


def test_local_cluster_scheduler_has_no_http_server():
    from steerflow.engines.dask import DaskEngine

    engine = DaskEngine(cluster={"n_workers": 1, "resources": {"cores": 1}})
    try:
        engine.discover()
        scheduler = engine.cluster.scheduler
        assert scheduler.services == {}, scheduler.services  # Dask's own would list "dashboard"
        assert [listener.listen_address.startswith("tcp://127.0.0.1:") for listener in scheduler.listeners] == [True]
    finally:
        engine.shutdown()


_HOLDER = r'''
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from tests.dask_cluster import DaskCluster
cluster = DaskCluster(Path(sys.argv[1]))
cluster.start_scheduler()
cluster.start_worker("n0", cores=1)
cluster.wait_workers(1)
print(json.dumps(cluster.pids()), flush=True)
time.sleep(600)
'''


@pytest.mark.skipif(SETPRIV is None, reason="setpriv (util-linux) is not installed: the fixture cannot set PDEATHSIG")
def test_fixture_cluster_dies_with_a_killed_test_process(tmp_path):
    root = Path(__file__).resolve().parents[1]
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path / "c"), str(root)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    pids: list[int] = []
    try:
        line = holder.stdout.readline()  # bounded: the holder's own waits are bounded (60 s, 90 s)
        assert line, "the holder process did not start its Dask cluster"
        pids = json.loads(line)
        assert len(pids) == 2 and all(process_alive(p) for p in pids)
        os.kill(holder.pid, signal.SIGKILL)  # as when pytest is killed: no fixture tear-down runs
        holder.wait(timeout=10)
        assert wait_until(lambda: not any(process_alive(p) for p in pids), timeout=20), \
            [p for p in pids if process_alive(p)]
    finally:
        if holder.poll() is None:
            os.killpg(holder.pid, signal.SIGKILL)
            holder.wait(timeout=10)
        for pid in pids:  # (only if the test failed: they are gone otherwise)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def listening_ports(pid: int) -> set[int]:
    """TCP ports the process listens on (psutil reads /proc/PID/net/tcp* and the process's sockets)."""
    try:
        return {c.laddr.port for c in psutil.Process(pid).net_connections(kind="inet")
                if c.status == psutil.CONN_LISTEN}
    except psutil.Error:  # gone, or not ours to read
        return set()


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def test_local_cluster_processes_listen_only_on_their_comm_ports(tmp_path):
    """Scheduler, nannies and workers of the engine's LocalCluster: no HTTP (dashboard, /metrics) port,
    and no session-stream port left open once the driver is connected."""
    from steerflow import Runtime
    from steerflow.engines.dask import DaskEngine
    from steerflow.proctree import descendants

    before = listening_ports(os.getpid())
    rt = Runtime(engine=DaskEngine(cluster={"n_workers": 2, "resources": {"cores": 1}}), run_dir=tmp_path / "run")
    try:
        assert [rt.submit(abs, -i).result(timeout=60) for i in range(4)] == [0, 1, 2, 3]
        scheduler = rt.engine.cluster.scheduler  # (a LocalCluster's scheduler runs in this process)
        expected = {_port(listener.listen_address) for listener in scheduler.listeners}
        for ws in list(scheduler.workers.values()):
            expected |= {_port(ws.address), _port(ws.nanny)}
        assert len(expected) == 5, expected  # scheduler + 2 workers + 2 nannies
        found = {pid: listening_ports(pid) for pid in descendants(os.getpid())}
        found[os.getpid()] = listening_ports(os.getpid()) - before
        unexpected = {pid: ports - expected for pid, ports in found.items() if ports - expected}
        assert not unexpected, f"listening beyond the Dask comm ports {sorted(expected)}: {unexpected}"
        assert set().union(*found.values()) == expected
        # and Dask's own periodic work, which steerflow's tasks do not need, is quiet (dask_quiet.QUIET_CONFIG)
        ticks = rt.engine.client.run(lambda dask_worker: (type(dask_worker).__name__, "profile" in
                                     dask_worker.periodic_callbacks, dask_worker.periodic_callbacks["tick"].callback_time))
        assert set(ticks.values()) == {("QuietWorker", False, 500.0)}, ticks
        nannies = list(rt.engine.cluster.workers.values())
        assert {(type(n).__name__, n.periodic_callbacks["tick"].callback_time) for n in nannies} == {("QuietNanny", 500.0)}
        assert scheduler.periodic_callbacks["tick"].callback_time == 500.0
    finally:
        rt.shutdown()


def test_a_dashboard_asked_for_brings_the_workers_http_port_back(tmp_path):
    from steerflow.engines.dask import DaskEngine

    engine = DaskEngine(cluster={"n_workers": 1, "resources": {"cores": 1}, "worker_dashboard_address": "127.0.0.1:0"})
    try:
        engine.discover()
        ws = next(iter(engine.cluster.scheduler.workers.values()))
        assert ws.services.get("dashboard"), ws.services  # Dask's own worker, listening on HTTP
    finally:
        engine.shutdown()


def test_the_job_scripts_name_the_quiet_worker_class():
    from steerflow.engines import dask_batch, dask_quiet

    assert dask_batch.QUIET_WORKER == dask_quiet.QUIET_WORKER  # (the job script is built without importing Dask)
