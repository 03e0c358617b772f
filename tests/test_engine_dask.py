"""The Dask engine on a real cluster: a `dask scheduler` and 3 `dask worker` processes on 127.0.0.1.

Each worker declares a node (``--resources cores=2,gpus=2``, its name, host and GPU ids).
Checks: tasks land on the node and GPUs our scheduler chose; a 2-rank MPI task spanning two
workers gets the right host list; campaign tests of the local engine pass here; a worker
killed mid-campaign (its tasks run again elsewhere, the allocation shrinks, and grows back
when a worker joins); a driver killed mid-campaign resumes; cancel reaches the remote
process; TLS refuses a client without the campaign's certificates; nothing is left behind.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from steerflow import Allocation, Campaign, Executable, Function, Runtime, TaskState  # noqa: E402
from steerflow.engines.dask import DaskEngine  # noqa: E402
from steerflow.proctree import descendants, process_alive  # noqa: E402

from .conftest import needs_mpirun, wait_until  # noqa: E402
from .dask_cluster import DaskCluster  # noqa: E402

# three names mpirun treats as this machine (no ssh), distinct so that host lists show their nodes
HOSTS = {"node0": "localhost", "node1": "127.0.0.1", "node2": socket.gethostname()}
GPU_IDS = {"node0": "0,1", "node1": "2,3", "node2": "4,5"}  # distinct, so a report names its node too


def start_cluster(directory: Path, names=("node0", "node1", "node2")) -> DaskCluster:
    cluster = DaskCluster(directory)
    # a decoy `tests` package ahead on the workers' path, as some libraries install one into
    # site-packages: the campaign's own `tests` must still resolve on the nodes
    decoy = directory / "decoy"
    (decoy / "tests").mkdir(parents=True)
    (decoy / "tests" / "__init__.py").write_text("")
    cluster.extra_env["PYTHONPATH"] = str(decoy)
    cluster.start_scheduler()
    for name in names:
        cluster.start_worker(name, cores=2, gpus=2, host=HOSTS[name], gpu_ids=GPU_IDS[name])
    cluster.wait_workers(len(names))
    return cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = start_cluster(tmp_path_factory.mktemp("dask"))
    yield c
    c.stop()


@pytest.fixture
def engine_runtime(cluster, tmp_path):
    made: list[Runtime] = []

    def make(**kwargs) -> Runtime:
        rt = Runtime(engine=DaskEngine(cluster.address, min_nodes=3), run_dir=tmp_path / f"run{len(made)}", **kwargs)
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.shutdown(wait=False)
    # shutdown leaves no process behind: no task or warm worker under any Dask worker
    assert wait_until(lambda: not any(descendants(p.pid) for p in cluster.workers.values()), timeout=15), \
        {name: descendants(p.pid) for name, p in cluster.workers.items()}


def where(barrier: str | None = None, n: int = 0) -> tuple[str, str, str, int]:
    """Report where this task runs; with a barrier, wait (bounded) until n tasks are running at once."""
    if barrier:
        Path(barrier, str(os.getpid())).touch()
        deadline = time.monotonic() + 30
        while len(os.listdir(barrier)) < n and time.monotonic() < deadline:
            time.sleep(0.01)
    return (os.environ["STEERFLOW_NODE"], os.environ["CUDA_VISIBLE_DEVICES"], os.environ["STEERFLOW_CPUS"],
            os.getpid())


def test_allocation_is_what_the_workers_declare(engine_runtime):
    rt = engine_runtime()
    nodes = {n.name: n for n in rt.allocation.nodes}
    assert sorted(nodes) == ["node0", "node1", "node2"]
    assert all(n.cores == 2 and n.gpus == 2 for n in nodes.values())
    assert nodes["node1"].gpu_ids == ("2", "3") and nodes["node1"].host == "127.0.0.1"
    assert rt.allocation.source == "dask"
    assert all(link.stream is not None for link in rt.engine._links.values())  # each session has its stream


def test_tasks_land_on_the_node_and_gpus_the_scheduler_chose(engine_runtime, tmp_path):
    rt = engine_runtime()
    chosen: dict[int, tuple[str, str]] = {}

    def listen(record, state):
        if state is TaskState.RUNNING:
            slot = record.placement.slots[0]
            node = rt.allocation.nodes[slot.node]
            chosen[record.id] = (node.name, ",".join(node.gpu_ids[g] for g in slot.gpus))

    rt.add_listener(listen)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    futures = [rt.submit(Function(where, args=(str(barrier), 6), gpus=1)) for _ in range(6)]
    reports = [f.result(timeout=120) for f in futures]
    assert len({r[3] for r in reports}) == 6  # six processes at once: every GPU of the cluster in use
    for future, (node, gpus, _, _) in zip(futures, reports):
        assert (node, gpus) == chosen[future.task_id]
    assert sorted(r[1] for r in reports) == ["0", "1", "2", "3", "4", "5"]


@needs_mpirun
def test_two_rank_mpi_task_spanning_two_workers_gets_their_host_list(engine_runtime):
    rt = engine_runtime()
    script = 'echo "$STEERFLOW_RANK $STEERFLOW_HOSTS $CUDA_VISIBLE_DEVICES $(hostname)"'
    task = Executable(["sh", "-c", script], ranks=2, nodes=2, gpus_per_rank=1, launcher="mpirun")
    placed: list = []
    rt.add_listener(lambda r, s: placed.append(r.placement) if s is TaskState.RUNNING else None)
    result = rt.submit(task).result(timeout=120)
    slots = placed[0].slots
    hosts = [rt.allocation.nodes[s.node].host for s in sorted(slots, key=lambda s: s.node)]
    expected = ",".join(f"{h}:1" for h in hosts)
    lines = sorted(result.stdout_path.read_text().split("\n")[:-1])
    assert len(lines) == 2
    gpus = [rt.allocation.nodes[s.node].gpu_ids[s.gpus[0]] for s in sorted(slots, key=lambda s: s.node)]
    for rank, line in enumerate(lines):
        r, host_list, gpu, _ = line.split()
        assert (int(r), host_list, gpu) == (rank, expected, gpus[rank])
    assert expected == "localhost:1,127.0.0.1:1"  # nodes are numbered by name when the campaign starts


def sleeper(seconds: float, pidfile: str) -> None:
    Path(pidfile).write_text(str(os.getpid()))
    time.sleep(seconds)


def test_cancel_kills_the_remote_process_tree(engine_runtime, tmp_path):
    rt = engine_runtime()
    pidfile = tmp_path / "pid"
    future = rt.submit(Function(sleeper, args=(60, str(pidfile))))
    pid = _pid_of_running(future, pidfile)
    child = rt.submit(Executable(["sleep", "60"]))
    assert wait_until(lambda: child.state is TaskState.RUNNING, timeout=60), _why(child, "the program to run")
    t0 = time.monotonic()
    future.cancel()
    child.cancel()
    assert wait_until(lambda: not process_alive(pid), timeout=10), f"process {pid} still alive 10 s after cancel"
    assert time.monotonic() - t0 < 10
    assert future.cancelled() and child.cancelled()


def test_suspend_resume_and_preempt_reach_the_remote_process(engine_runtime, tmp_path):
    rt = engine_runtime()
    pidfile = tmp_path / "pid"
    future = rt.submit(Function(sleeper, args=(60, str(pidfile))))
    pid = _pid_of_running(future, pidfile)
    rt.suspend(future)
    assert wait_until(lambda: _state(pid) == "T", timeout=10), f"not stopped: state {_state(pid)!r}"
    rt.resume(future)
    assert wait_until(lambda: _state(pid) in ("S", "R"), timeout=10), f"not resumed: state {_state(pid)!r}"
    rt.preempt(future, grace=5)  # Preempted is raised in the function: it runs again later
    assert wait_until(lambda: len(rt.task(future.task_id).attempts) >= 2, timeout=30), _why(future, "a second attempt")
    assert rt.task(future.task_id).attempts[0].outcome == "preempted"
    future.cancel()


def square(x):
    return x * x


def fails_once(marker: str) -> str:
    if not os.path.exists(marker):
        Path(marker).touch()
        raise RuntimeError("first try fails")
    return "ok"


def test_a_campaign_with_dependencies_retries_and_an_executable(cluster, tmp_path):
    camp = Campaign(tmp_path / "c", engine=DaskEngine(cluster.address, min_nodes=3), progress=False)
    results = []

    @camp.on_result()
    def collect(result, ctx):
        results.append(result.value)

    a = camp.submit(square, 3)
    b = camp.submit(square, a)  # a future as an argument: runs after a, with its value
    c = camp.submit(Function(fails_once, args=(str(tmp_path / "m"),), retries=1))
    d = camp.submit(Executable(["sh", "-c", "echo hello from $STEERFLOW_NODE"]))
    camp.run()
    assert b.result() == 81 and c.result() == "ok"
    assert d.result().stdout_path.read_text().startswith("hello from node")
    assert 81 in results


def test_worker_timestamps_of_dask_tasks_are_journaled_on_the_drivers_clock(cluster, tmp_path):
    """Each result's packed timing (ready, w_recv, w_start, w_end, w_sent) comes from the node, as locally,
    so observe can split a Dask task's overheads (launch, data in/out, result return)."""
    import math
    import sqlite3

    from steerflow.journal import TIMING
    from steerflow.observe import metrics, timeline

    camp = Campaign(tmp_path / "c", engine=DaskEngine(cluster.address, min_nodes=3), progress=False)
    for i in range(9):
        camp.submit(square, i)
    camp.submit(Executable(["sh", "-c", "echo $STEERFLOW_NODE"]))
    camp.run()
    conn = sqlite3.connect(f"file:{tmp_path / 'c' / 'journal.db'}?mode=ro", uri=True)
    rows = conn.execute("SELECT key, started, ended, timing FROM results WHERE ok = 1").fetchall()
    conn.close()
    assert len(rows) == 10
    for key, started, ended, blob in rows:
        ready, w_recv, w_start, w_end, w_sent = TIMING.unpack(blob)
        assert all(math.isfinite(t) for t in (ready, w_recv, w_start, w_end, w_sent)), (key, TIMING.unpack(blob))
        # one clock: the driver placed it, then the node received, ran and sent it, then the driver saw it end
        assert ready <= started <= w_recv <= w_start <= w_end <= w_sent <= ended, (key, started, ended,
                                                                                   TIMING.unpack(blob))
    split = metrics.overheads(timeline.read(tmp_path / "c"))
    assert split["parts"]["launch"]["tasks"] == 10 and split["parts"]["result_return"]["tasks"] == 10, split


def test_clock_offset_is_measured_only_beyond_its_error():
    from steerflow.engines.dask_comms import clock_offset

    assert clock_offset(None, 10.0, 10.002) == 0.0
    assert clock_offset(10.0015, 10.0, 10.002) == 0.0  # within the exchange's half round trip: same clock
    assert clock_offset(110.001, 10.0, 10.002) == pytest.approx(100.0)  # a node 100 s ahead
    assert clock_offset(9.9, 10.0, 10.002) == pytest.approx(-0.101)


CAMPAIGN_TESTS = ["test_adaptive_campaign_adds_kills_and_moves_pools", "test_every_n_results_timer_and_start_end",
                  "test_resume_replays_results_and_does_not_rerun", "test_failing_task_does_not_take_the_campaign_down",
                  "test_suspend_and_resume_from_an_agent", "test_resume_with_dependencies_on_replayed_results",
                  "test_large_results_are_stored_once_in_files_and_replayed"]


@pytest.mark.parametrize("name", CAMPAIGN_TESTS)
def test_campaign_tests_of_the_local_engine_pass_on_dask(name, cluster, tmp_path, monkeypatch):
    """The same test functions, unchanged: only the engine differs (their declared nodes map onto workers)."""
    from . import test_campaign

    monkeypatch.setenv("STEERFLOW_ENGINE", "dask")
    monkeypatch.setenv("STEERFLOW_DASK_SCHEDULER", cluster.address)
    getattr(test_campaign, name)(tmp_path)


def test_large_arguments_and_results_travel_by_value_between_nodes(engine_runtime):
    np = pytest.importorskip("numpy")
    rt = engine_runtime()
    data = np.arange(2_000_000, dtype=np.float64)  # 16 MB: shared memory on the driver, bytes on the wire
    total = rt.submit(np.sum, data).result(timeout=120)
    assert total == data.sum()
    doubled = rt.submit(np.multiply, data, 2.0).result(timeout=120)
    assert doubled[-1] == 2 * data[-1]


def arg_file(arr, barrier: str, n: int) -> tuple[str, str]:
    node = where(barrier, n)[0]
    return node, _mapped_from(arr.ctypes.data).split(" (deleted)")[0]


def test_large_arguments_map_the_drivers_shared_memory_on_its_machine_and_travel_to_others(engine_runtime,
                                                                                        tmp_path):
    np = pytest.importorskip("numpy")
    rt = engine_runtime()
    data = np.arange(1_000_000, dtype=np.float64)  # 8 MB: in the driver's shared memory
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    got = [f.result(timeout=120) for f in [rt.submit(arg_file, data, str(barrier), 6) for _ in range(6)]]
    by_node: dict[str, set[str]] = {}
    for node, path in got:
        by_node.setdefault(node, set()).add(Path(path).name.split("-")[1])  # the pid the file is named after
    assert set(by_node) == {"node0", "node1", "node2"}, got
    # node2 declares this machine's host name: it maps the driver's files; node0/node1 declare other hosts
    # (localhost, 127.0.0.1): their arguments came over the wire into their own agent's shared memory
    assert by_node["node2"] == {str(os.getpid())}, got
    assert str(os.getpid()) not in by_node["node0"] | by_node["node1"], got


def shared_sum(arr, barrier: str, n: int) -> tuple[float, str, str]:
    where(barrier, n)
    return float(arr.sum()), os.environ["STEERFLOW_NODE"], _mapped_from(arr.ctypes.data)


def _mapped_from(address: int) -> str:
    """The file whose mapping holds this address ('' for anonymous memory)."""
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(maxsplit=5)
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            if lo <= address < hi:
                return parts[5].strip() if len(parts) > 5 else ""
    return ""


def test_a_shared_object_goes_to_each_node_once_and_tasks_map_it(engine_runtime, tmp_path):
    np = pytest.importorskip("numpy")
    from steerflow.engines.shared import share

    data = np.arange(2_000_000, dtype=np.float64)  # 16 MB
    handle = share(data)
    try:
        rt = engine_runtime()
        barrier = tmp_path / "barrier"
        barrier.mkdir()
        futures = [rt.submit(shared_sum, handle, str(barrier), 6) for _ in range(6)]
        results = [f.result(timeout=120) for f in futures]
        assert {r[0] for r in results} == {float(data.sum())}
        assert {r[1] for r in results} == {"node0", "node1", "node2"}
        from steerflow.serialize import SHM_DIR

        assert all(r[2].startswith(f"{SHM_DIR}/steerflow-") for r in results)  # mapped from shared memory, no copy
        assert rt.engine.shared_sent == 3  # six tasks, three nodes: sent once per node
        with Runtime(Allocation.declare(nodes=1, cores=1), run_dir=tmp_path / "local") as local:  # locally too
            assert local.submit(shared_sum, handle, None, 0).result(timeout=60)[0] == float(data.sum())
    finally:
        handle.release()


def big_array(megabytes: int):
    import numpy as np

    return np.full(megabytes * 131072, 7.0)  # float64: in the node's shared memory, kept there


def _agent() -> int:
    """The node agent this task's worker serves: its nearest ancestor that is not the worker (or the worker's guard,
    a fork of it)."""
    pid = os.getppid()
    while True:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"steerflow.engines.worker" not in f.read():
                return pid
        with open(f"/proc/{pid}/stat") as f:
            pid = int(f.read().rsplit(")", 1)[1].split()[1])


def read_big(arr, barrier: str, n: int) -> tuple[str, float, str, int]:
    node = where(barrier, n)[0]
    return node, float(arr.sum()), _mapped_from(arr.ctypes.data).split(" (deleted)")[0], _agent()


def test_a_large_result_stays_on_its_node_and_dependents_read_it_by_reference(engine_runtime, cluster, tmp_path):
    pytest.importorskip("numpy")
    import gc

    from steerflow.serialize import Encoded

    rt = engine_runtime()
    produced = rt.submit(big_array, 8)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    readers = [rt.submit(read_big, produced, str(barrier), 6) for _ in range(6)]  # 6 at once: every node
    results = [f.result(timeout=120) for f in readers]
    owner = produced._record.attempts[-1].nodes[0]
    agents = {name: proc.pid for name, proc in cluster.workers.items()}
    assert all(total == 8 * 131072 * 7.0 for _, total, _, _ in results)
    for node, _, path, agent in results:  # each read a file of its own node: the result, or that node's copy
        assert agent == agents[node] and Path(path).name.startswith(f"steerflow-{agent}-"), (node, path, agents)
    on_owner = {path for node, _, path, _ in results if node == owner}
    elsewhere = {node for node, _, _, _ in results if node != owner}
    assert len(on_owner) == 1 and len(elsewhere) == 2, results  # no copy on its own node; one per other node
    paths = {path for _, _, path, _ in results}
    # the driver holds a reference only: never the data, until it asks for the value
    assert type(produced._result) is Encoded and len(produced._result.blob) < 4096
    with open("/proc/self/maps") as f:
        assert not any(p in f.read() for p in paths)
    assert all(os.path.exists(p) for p in paths)  # kept while the driver's future may still ask
    value = produced.result(timeout=60)  # fetched from its node now
    assert value.shape == (8 * 131072,) and value[-1] == 7.0
    # freed after the last consumer: the readers ended and the driver let go of its future
    del produced, readers, value
    gc.collect()
    assert wait_until(lambda: not any(os.path.exists(p) for p in paths), timeout=30), \
        [p for p in paths if os.path.exists(p)]


def slow_square(x: int, log: str) -> int:
    with open(log, "a") as f:
        f.write(f"{x} {os.environ['STEERFLOW_NODE']}\n")
    time.sleep(0.5)
    return x * x


def test_worker_loss_retries_elsewhere_nodes_join_and_no_workers_fails_cleanly(tmp_path):
    cluster = start_cluster(tmp_path / "cluster")
    try:
        rt = Runtime(engine=DaskEngine(cluster.address, min_nodes=3), run_dir=tmp_path / "run")
        try:
            log = tmp_path / "log"
            futures = [rt.submit(slow_square, i, str(log)) for i in range(18)]
            assert wait_until(lambda: log.exists() and "node2" in log.read_text(), timeout=60), \
                _why(futures[0], "a task on node2")
            cluster.kill_worker("node2")
            assert [f.result(timeout=120) for f in futures] == [i * i for i in range(18)]
            lost = [t for t in rt.tasks() if any(a.outcome == "lost" for a in t.attempts)]
            assert lost and all(t.attempts[-1].nodes != ("node2",) for t in lost)
            offline = _on_loop(rt, lambda: rt.scheduler.offline_nodes)
            assert [rt.allocation.nodes[i].name for i in offline] == ["node2"]
            # the allocation grows without a restart: a new node, and node2 coming back
            cluster.start_worker("node3", cores=2, gpus=2, host="localhost", gpu_ids="6,7")
            cluster.start_worker("node2", cores=2, gpus=2, host=HOSTS["node2"], gpu_ids=GPU_IDS["node2"])
            assert wait_until(lambda: {n.name for n in rt.allocation.nodes} >= {"node3"}
                              and not _on_loop(rt, lambda: rt.scheduler.offline_nodes), timeout=60), \
                f"nodes {[n.name for n in rt.allocation.nodes]}, offline {_on_loop(rt, lambda: rt.scheduler.offline_nodes)}"
            assert rt.allocation.total_cores == 8
            reports = [f.result(timeout=120) for f in [rt.submit(Function(where, gpus=2)) for _ in range(8)]]
            assert {"node2", "node3"} <= {r[0] for r in reports}
            # every worker gone: what still waits fails with that cause instead of hanging
            rt.engine.no_nodes_timeout = 1.0
            first = rt.submit(sleeper, 60, str(tmp_path / "pid"))
            _pid_of_running(first, tmp_path / "pid")
            for name in list(cluster.workers):
                cluster.kill_worker(name)
            later = rt.submit(square, 2)
            with pytest.raises(Exception, match="gone for more than"):
                later.result(timeout=60)
            with pytest.raises(Exception):
                first.result(timeout=10)
        finally:
            rt.shutdown(wait=False)
    finally:
        cluster.stop()


DRIVER = """
import os, sys, time
from steerflow import Campaign, Function

def work(i, marks):
    open(os.path.join(marks, f"{i}.{os.getpid()}"), "w").close()
    time.sleep(0.3)
    return i * 10

if __name__ == "__main__":
    directory, marks = sys.argv[1], sys.argv[2]
    camp = Campaign(directory, progress=False)  # the engine comes from STEERFLOW_ENGINE / STEERFLOW_DASK_SCHEDULER
    futures = [camp.submit(Function(work, args=(i, marks))) for i in range(12)]
    camp.run()
    print("total", sum(f.result() for f in futures))
"""


def test_driver_killed_mid_campaign_resumes(cluster, tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    marks = tmp_path / "marks"
    marks.mkdir()
    env = dict(os.environ, STEERFLOW_ENGINE="dask", STEERFLOW_DASK_SCHEDULER=cluster.address,
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    directory = tmp_path / "camp"
    first = subprocess.Popen([sys.executable, str(script), str(directory), str(marks)], env=env,
                             start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_until(lambda: len(os.listdir(marks)) >= 7, timeout=120), \
            f"only {len(os.listdir(marks))} of 7 tasks started; driver stderr: {first.stderr.read1().decode()}"
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    # the killed driver's tasks die with its comm
    assert wait_until(lambda: not any(descendants(p.pid) for p in cluster.workers.values()), timeout=15), \
        {name: descendants(p.pid) for name, p in cluster.workers.items()}
    done_before = _journaled_keys(directory)
    second = subprocess.run([sys.executable, str(script), str(directory), str(marks)],
                            env=dict(env, STEERFLOW_RESUME="1"), capture_output=True, text=True, timeout=180)
    assert second.returncode == 0, second.stderr
    assert "total 660" in second.stdout
    runs = {}
    for name in os.listdir(marks):
        key = int(name.split(".")[0])
        runs[key] = runs.get(key, 0) + 1
    assert sorted(runs) == list(range(12))
    assert all(runs[i] == 1 for i in range(12) if i + 1 in done_before)  # a finished task never ran again


CLI_SCRIPT = """
import os
from steerflow import Campaign

def node():
    return os.environ["STEERFLOW_NODE"]

if __name__ == "__main__":
    import sys
    camp = Campaign(sys.argv[1], progress=False)  # no engine here: `steerflow run --engine dask` chooses
    futures = [camp.submit(node) for _ in range(6)]
    camp.run()
    print("nodes", sorted({f.result() for f in futures}))
"""


def test_cli_and_yaml_choose_the_dask_engine(cluster, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    env.pop("STEERFLOW_ENGINE", None)
    script = tmp_path / "camp.py"
    script.write_text(CLI_SCRIPT)
    steerflow = str(Path(sys.executable).parent / "steerflow")
    out = subprocess.run([steerflow, "run", "--engine", "dask", "--scheduler", cluster.address, str(script),
                          str(tmp_path / "c1")], env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    assert "nodes ['node" in out.stdout
    (tmp_path / "steps.py").write_text("import os\n\ndef node(x):\n    return os.environ['STEERFLOW_NODE']\n")
    spec = tmp_path / "pipe.yaml"
    spec.write_text(f"engine: {{dask: {{scheduler: '{cluster.address}', min_nodes: 3}}}}\n"
                    "stages:\n  - name: where\n    function: 'steps:node'\n    args: ['{x}']\n"
                    "    foreach: {x: [1, 2, 3, 4]}\n")
    out = subprocess.run([steerflow, "run", str(spec), "--dir", str(tmp_path / "c2")], env=env,
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    import sqlite3

    conn = sqlite3.connect(f"file:{tmp_path / 'c2' / 'journal.db'}?mode=ro", uri=True)
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta"))
    finally:
        conn.close()
    assert "(dask)" in meta["allocation"] and "3 node(s)" in meta["allocation"]


def test_declared_allocation_runs_on_the_first_workers(cluster, tmp_path):
    with Runtime(Allocation.declare(nodes=2, cores=1, gpus=1), engine=DaskEngine(cluster.address, min_nodes=3),
                 run_dir=tmp_path / "run") as rt:
        reports = [rt.submit(Function(where, gpus=1)).result(timeout=120) for _ in range(2)]
        assert all(r[0] in ("node0", "node1") for r in reports)
    from steerflow.errors import AllocationError

    with pytest.raises(AllocationError, match="declares 4 nodes but the Dask cluster has 3"):
        Runtime(Allocation.declare(nodes=4, cores=1), engine=DaskEngine(cluster.address, min_nodes=3),
                run_dir=tmp_path / "run2")


def test_tls_cluster_refuses_a_client_without_the_campaign_certificates(tmp_path):
    from distributed import Client

    from steerflow.engines.dask_tls import security_for, write_certificates

    cluster = DaskCluster(tmp_path / "cluster")
    cluster.tls = write_certificates(tmp_path / "certs")
    try:
        address = cluster.start_scheduler()
        assert address.startswith("tls://")
        cluster.start_worker("node0", cores=1)
        cluster.wait_workers(1)
        with Runtime(engine=DaskEngine(address, security=security_for(tmp_path / "certs")),
                     run_dir=tmp_path / "run") as rt:
            assert rt.submit(square, 7).result(timeout=120) == 49
            streams = [link.stream for link in rt.engine._links.values()]  # the session streams use TLS too
            assert streams and all(s is not None and s.get_extra_info("ssl_object") is not None for s in streams)
        with pytest.raises(Exception):  # no certificates: the TLS handshake fails
            Client(address, timeout=5)
        with pytest.raises(Exception):  # plain TCP to the TLS port is refused too
            Client(address.replace("tls://", "tcp://"), timeout=5)
    finally:
        cluster.stop()


# ---- helpers ------------------------------------------------------------------------------------

def _why(future, what: str) -> str:
    """What a failed wait says: the task's state, and its error if it ended."""
    error = future.exception(timeout=0) if future.done() and not future.cancelled() else None
    return f"waited for {what}; task {future.task_id} is {future.state.value}" + (f": {error!r}" if error else "")


def _pid_of_running(future, pidfile: Path) -> int:
    assert wait_until(lambda: pidfile.exists() and pidfile.read_text(), timeout=60), _why(future, "it to start")
    return int(pidfile.read_text())



def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def _on_loop(rt: Runtime, fn):
    box: list = []
    rt.call_soon(lambda: box.append(fn()))
    assert wait_until(lambda: bool(box), timeout=10), "the runtime's loop did not run a call within 10 s"
    return box[0]


def _journaled_keys(directory: Path) -> set[int]:
    import sqlite3

    conn = sqlite3.connect(f"file:{directory / 'journal.db'}?mode=ro", uri=True)
    try:
        return {row[0] for row in conn.execute("SELECT key FROM tasks WHERE state = 'done'")}
    finally:
        conn.close()


def test_workers_listen_only_on_their_comm_ports(engine_runtime, cluster):
    """`dask worker --worker-class steerflow.engines.dask_quiet.QuietWorker`: no HTTP port on the workers,
    and the session streams' ports closed once the driver connected."""
    from .test_engine_dask_hygiene import listening_ports

    rt = engine_runtime()
    assert rt.submit(abs, -3).result(timeout=60) == 3
    for name, proc in cluster.workers.items():
        address = next(link.address for link in rt.engine._links.values() if link.online
                       and rt.engine._nodes[link.index].name == name)
        assert listening_ports(proc.pid) == {int(address.rsplit(":", 1)[1])}, (name, address)
