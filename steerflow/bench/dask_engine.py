"""`steerflow bench runtime --engine dask`: the Dask engine against plain Dask and the local engine.

Same metrics as `steerflow bench runtime` (throughput of 2,000 no-op tasks, sequential round trip,
200 lognormal sleeps' efficiency against the ideal list schedule, first result, peak memory,
cancel), measured in one run for three systems on the same number of worker processes:
- ours: a `DaskEngine` on a LocalCluster of ``workers`` worker processes, one node of one core each;
- ``peer_dask_*``: plain Dask futures (``client.submit``) on a LocalCluster of the same shape;
- ``floor_*``: the local engine with ``workers`` cores (what the Dask engine adds is the network hop).
"""

from __future__ import annotations

import logging
import os
import statistics
import tempfile
import time
from typing import Any

from ..proctree import process_alive
from .runtime import measure_executor, lognormal_durations, measure_steerflow, sleep_for
from .scheduler import DECISIONS

KEYS = ("throughput_tasks_per_s", "rtt_p50_ms", "rtt_p99_ms", "hetero_efficiency_pct",
        "hetero_efficiency_vs_lower_bound_pct", "first_result_s", "peak_rss_mb")


def measure_engine(workers: int = 3, n_tasks: int = 5000, n_rtt: int = 200, durations: list[float] | None = None,
                   keep: list | None = None) -> dict[str, float]:
    """The core metrics of the Dask engine on a `dask_rows.BenchCluster` it starts (first result includes
    that), viewed as ``workers`` nodes of one core. ``keep``: a list the cluster is appended to, still
    running, for the benchmark's other parts (else it is closed)."""
    from .dask_rows import BenchCluster

    logging.getLogger("distributed").setLevel(logging.CRITICAL)
    durations = durations or lognormal_durations()
    tmp = tempfile.mkdtemp(prefix="steerflow-bench-dask-")
    clusters: list[BenchCluster] = []

    def make() -> Any:
        clusters.append(BenchCluster(workers))
        return clusters[-1].runtime(tmp)

    try:
        return measure_executor(make, lambda rt, fn, args: rt.submit(fn, *args), lambda rt: rt.shutdown(),
                                workers, n_tasks, n_rtt, durations)
    finally:
        for cluster in clusters:
            if keep is None:
                cluster.close()
            else:
                keep.append(cluster)


def measure_peer(workers: int = 3, n_tasks: int = 5000, n_rtt: int = 200, durations: list[float] | None = None,
                 keep: list | None = None) -> dict[str, float]:
    """The core metrics of plain Dask futures on a LocalCluster of ``workers`` single-threaded worker
    processes (as `runtime.measure_dask`); ``keep``: a list its (client, cluster) is appended to, still running."""
    from distributed import Client, LocalCluster
    from distributed import wait as dask_wait

    logging.getLogger("distributed").setLevel(logging.CRITICAL)  # its shutdown chatter is not a result
    durations = durations or lognormal_durations()
    made: list[tuple[Any, Any]] = []

    def start() -> Any:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address="127.0.0.1:0")
        made.append((Client(cluster), cluster))
        return made[-1]

    try:
        return measure_executor(start, lambda pair, fn, args: pair[0].submit(fn, *args, pure=False), lambda pair: None,
                                workers, n_tasks, n_rtt, durations, wait_all=dask_wait)
    finally:
        for pair in made:
            if keep is None:
                close_plain(pair)
            else:
                keep.append(pair)


def close_plain(pair: tuple[Any, Any]) -> None:
    """Close a plain Dask client and its LocalCluster, the workers' heartbeats stopped first (without that,
    workers printed heartbeat tracebacks at teardown when the machine was loaded)."""
    from ..engines.dask_quiet import close_quietly

    close_quietly(*pair)


def measure_cancel_ms(cluster: Any, repeats: int = 5) -> float:
    """From `cancel()` of a running function on a Dask node to its process being gone (median).

    ``cluster``: a `dask_rows.BenchCluster`.
    """
    from ..task import Function, TaskState

    times = []
    with cluster.runtime(tempfile.mkdtemp(prefix="steerflow-bench-dask-")) as rt:
        for _ in range(repeats):
            future = rt.submit(Function(_report_pid_then_sleep, args=(60.0,)))
            while future.state is not TaskState.RUNNING:
                time.sleep(0.001)
            pid = None
            deadline = time.monotonic() + 30
            while pid is None and time.monotonic() < deadline:
                pid = _read_pid(rt, future.task_id)
                time.sleep(0.002)
            t0 = time.perf_counter()
            future.cancel()
            while pid is not None and process_alive(pid):
                time.sleep(0.0005)
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _report_pid_then_sleep(seconds: float) -> None:
    import os

    path = os.environ["STEERFLOW_CHECKPOINT"] + ".pid"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(str(os.getpid()))
    sleep_for(seconds)


def _read_pid(rt: Any, task_id: int) -> int | None:
    try:
        with open(rt.run_dir / "checkpoints" / f"{task_id}.ckpt.pid") as f:
            return int(f.read() or 0) or None
    except (OSError, ValueError):
        return None


def _peer(workers: int, n_tasks: int, n_rtt: int, durations: list[float], keep: list) -> dict[str, float] | None:
    try:
        return measure_peer(workers, n_tasks=n_tasks, n_rtt=n_rtt, durations=durations, keep=keep)
    except Exception as exc:  # noqa: BLE001 - a peer that fails (e.g. timeouts on a starved machine) is reported
        print(f"plain Dask failed in this run: {type(exc).__name__}: {exc}"[:500])
        return None


def run(repeat: int = 3, workers: int = 3, n_tasks: int = 2000, n_shapes: int = 300,
        n_campaign: int = 3000, n_sleeps: int = 200, n_mixed: int = 120, n_rtt: int = 200,
        n_placements: int = DECISIONS) -> dict[str, float | None]:
    """Every key of `steerflow bench runtime` (local), for the Dask engine; peers and floor in the same run.

    ``floor_*``: the local engine (what the Dask engine adds is the hop to the nodes); ``peer_dask_*``
    and ``dask_*``: plain Dask futures on a LocalCluster of the same shape (the same numbers under
    the issue's names and the local benchmark's names). The core metrics start a cluster each (first
    result includes it); the other parts share one (`dask_rows.BenchCluster`).
    """
    from . import dask_rows
    from .scheduler import REPEAT, in_new_interpreter, median_row

    durations = lognormal_durations(n_sleeps)
    result: dict[str, float | None] = {}
    measured: dict[str, float] = {}
    kept: list = []  # ours first, every part on one cluster; then plain Dask; then the local engine
    try:
        ours = []
        for _ in range(repeat):
            for cluster in kept:
                cluster.close()
            kept.clear()
            ours.append(measure_engine(workers, n_tasks=n_tasks, n_rtt=n_rtt, durations=durations, keep=kept))
        result.update({key: statistics.median(r[key] for r in ours) for key in ours[0]})
        cluster = kept[-1]
        result["cancel_ms"] = statistics.median(measure_cancel_ms(cluster) for _ in range(repeat))
        for part in (lambda k: dask_rows.main_rtt_p50_ms(n_rtt, cluster),
                     lambda k: dask_rows.campaign_throughput(n_campaign, cluster),
                     lambda k: dask_rows.mixed_efficiency(n_mixed, cluster, greedy_first=k % 2 == 1)):
            runs = [part(k) for k in range(repeat)]
            for key in runs[0]:
                result[key] = statistics.median(r[key] for r in runs)
        measured.update(dask_rows.shape_times(cluster, ("sfdask",), n_shapes, workers, repeat))
    finally:
        for cluster in kept:
            cluster.close()
        kept.clear()
    try:
        peers = [r for r in (_peer(workers, n_tasks, n_rtt, durations, kept) for _ in range(repeat)) if r is not None]
        for key in KEYS:
            value = statistics.median(r[key] for r in peers) if peers else None
            result[f"peer_dask_{key}"] = value
            result[f"dask_{key}"] = value
        result["peer_dask_runs_ok"] = len(peers)
        if kept:
            measured.update(dask_rows.shape_times(kept[-1][0], ("pdask",), n_shapes, workers, repeat))
    finally:
        for pair in kept:
            close_plain(pair)
    floor = [measure_steerflow(workers, n_tasks=n_tasks, n_rtt=n_rtt, durations=durations) for _ in range(repeat)]
    for key in (*KEYS, "cancel_ms"):
        result[f"floor_{key}"] = statistics.median(r[key] for r in floor)
    for part in (lambda k: dask_rows.main_rtt_p50_ms(n_rtt, None, workers),
                 lambda k: dask_rows.campaign_throughput(n_campaign, None, workers),
                 lambda k: dask_rows.mixed_efficiency(n_mixed, None, workers, greedy_first=k % 2 == 1)):
        runs = [part(k) for k in range(repeat)]
        for key in runs[0]:
            result[key] = statistics.median(r[key] for r in runs)
    measured.update(dask_rows.shape_times(None, ("steerflow",), n_shapes, workers, repeat))
    result.update(dask_rows.shape_rows(measured))
    result["rtt_p50_vs_floor"] = result["rtt_p50_ms"] / result["floor_rtt_p50_ms"]  # type: ignore[operator]
    result["rtt_main_p50_vs_floor"] = result["rtt_main_p50_ms"] / result["floor_rtt_main_p50_ms"]  # type: ignore[operator]
    result["campaign_throughput_vs_floor"] = (result["campaign_throughput_tasks_per_s"]  # type: ignore[operator]
                                              / result["floor_campaign_throughput_tasks_per_s"])
    result.update(dask_rows.mixed_gaps(result))  # (gaps of the medians: each side's runs are minutes apart)
    # our scheduler places for the Dask engine exactly as for the local one: the same measurement
    # (in a new interpreter, as `steerflow bench runtime` does: the scheduler alone, not beside this run's heap)
    # (the median of short runs, as there: a run slowed by a burst of load elsewhere does not decide the row)
    placements = median_row([in_new_interpreter(nodes=10_000, decisions=n_placements) for _ in range(REPEAT)])
    result["placements_per_s_10k_nodes"] = placements["placements_per_s"]
    result["repeat"] = repeat
    result["workers"] = workers
    result["n_tasks"] = n_tasks
    result["load_avg_1min"] = os.getloadavg()[0]
    result["engine"] = "dask"  # type: ignore[assignment]
    return result


TARGETS = {"throughput_tasks_per_s": (">=", 1500), "rtt_p50_ms": ("<=", 3.0),
           "hetero_efficiency_pct": (">=", 98.0), "cancel_ms": ("<=", 100)}
"""The issue's targets for the Dask engine (3 worker processes on one machine)."""

#: what a row is, printed under its name and written to the JSON's "about" (the mixed rows as `runtime.LABELS`)
LABELS = {
    "mixed_greedy_efficiency_pct": "Runtime(max_bypass=None), greedy, vs the greedy ideal",
    "mixed_greedy_gap_pts": "local engine - that: the hop to the node, the same policy on both sides",
    "mixed_efficiency_same_policy_pct": "the default policy vs itself at zero overhead",
    "mixed_efficiency_same_policy_gap_pts": "local engine - that: the hop under the default policy",
    "mixed_efficiency_pct": "the default policy vs the greedy ideal",
    "mixed_efficiency_gap_pts": "local engine - that: the hop + the difference in the policy's cost",
    "mixed_policy_cost_pts": "THE ANTI-STARVATION POLICY'S COST: greedy run - default run",
}
NOTES = ["Floor: the local engine on one machine (what the Dask engine adds is the hop to its nodes). Mixed set: one",
         "node of 3 cores, both policies; the 0.2-pt targets of the local benchmark are against the pool, not here."]
