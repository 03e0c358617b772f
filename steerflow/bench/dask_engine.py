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
from .runtime import measure_executor, lognormal_durations, measure_dask, measure_steerflow, sleep_for

KEYS = ("throughput_tasks_per_s", "rtt_p50_ms", "rtt_p99_ms", "hetero_efficiency_pct",
        "hetero_efficiency_vs_lower_bound_pct", "first_result_s", "peak_rss_mb")


def _engine(workers: int) -> Any:
    from ..engines.dask import DaskEngine

    return DaskEngine(cluster={"n_workers": workers, "threads_per_worker": 1, "resources": {"cores": 1}})


def measure_engine(workers: int = 3, n_tasks: int = 5000, n_rtt: int = 200,
                   durations: list[float] | None = None) -> dict[str, float]:
    from ..runtime import Runtime

    logging.getLogger("distributed").setLevel(logging.CRITICAL)
    durations = durations or lognormal_durations()
    tmp = tempfile.mkdtemp(prefix="steerflow-bench-dask-")
    result = measure_executor(lambda: Runtime(engine=_engine(workers), run_dir=tmp),
                      lambda rt, fn, args: rt.submit(fn, *args), lambda rt: rt.shutdown(),
                      workers, n_tasks, n_rtt, durations)
    result["cancel_ms"] = measure_cancel_ms(workers)
    return result


def measure_cancel_ms(workers: int = 3, repeats: int = 5) -> float:
    """From `cancel()` of a running function on a Dask node to its process being gone (median)."""
    from ..runtime import Runtime
    from ..task import Function, TaskState

    times = []
    with Runtime(engine=_engine(workers), run_dir=tempfile.mkdtemp(prefix="steerflow-bench-dask-")) as rt:
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


def _peer(workers: int, n_tasks: int, durations: list[float]) -> dict[str, float] | None:
    try:
        return measure_dask(workers, n_tasks=n_tasks, durations=durations)
    except Exception as exc:  # noqa: BLE001 - a peer that fails (e.g. timeouts on a starved machine) is reported
        print(f"plain Dask failed in this run: {type(exc).__name__}: {exc}"[:500])
        return None


def run(repeat: int = 3, workers: int = 3, n_tasks: int = 2000, n_shapes: int = 300,
        n_campaign: int = 3000, n_sleeps: int = 200, n_mixed: int = 120) -> dict[str, float | None]:
    """Every key of `steerflow bench runtime` (local), for the Dask engine; peers and floor in the same run.

    ``floor_*``: the local engine (what the Dask engine adds is the hop to the nodes); ``peer_dask_*``
    and ``dask_*``: plain Dask futures on a LocalCluster of the same shape (the same numbers under
    the issue's names and the local benchmark's names).
    """
    from . import dask_rows
    from .scheduler import placements_per_second

    durations = lognormal_durations(n_sleeps)
    ours = [measure_engine(workers, n_tasks=n_tasks, durations=durations) for _ in range(repeat)]
    result: dict[str, float | None] = {key: statistics.median(r[key] for r in ours) for key in ours[0]}
    peers = [r for r in (_peer(workers, n_tasks, durations) for _ in range(repeat)) if r is not None]
    for key in KEYS:
        value = statistics.median(r[key] for r in peers) if peers else None
        result[f"peer_dask_{key}"] = value
        result[f"dask_{key}"] = value
    result["peer_dask_runs_ok"] = len(peers)
    floor = [measure_steerflow(workers, n_tasks=n_tasks, durations=durations) for _ in range(repeat)]
    for key in (*KEYS, "cancel_ms"):
        result[f"floor_{key}"] = statistics.median(r[key] for r in floor)
    result["rtt_p50_vs_floor"] = result["rtt_p50_ms"] / result["floor_rtt_p50_ms"]  # type: ignore[operator]
    for part in (lambda: dask_rows.main_rtt_p50_ms(workers), lambda: dask_rows.campaign_throughput(n_campaign, workers),
                 lambda: dask_rows.mixed_efficiency(workers, n_mixed)):
        runs = [part() for _ in range(repeat)]
        for key in runs[0]:
            result[key] = statistics.median(r[key] for r in runs)
    result["rtt_main_p50_vs_floor"] = result["rtt_main_p50_ms"] / result["floor_rtt_main_p50_ms"]  # type: ignore[operator]
    result["campaign_throughput_vs_floor"] = (result["campaign_throughput_tasks_per_s"]  # type: ignore[operator]
                                              / result["floor_campaign_throughput_tasks_per_s"])
    result["mixed_efficiency_gap_pts"] = result["floor_mixed_efficiency_pct"] - result["mixed_efficiency_pct"]  # type: ignore[operator]
    result.update(dask_rows.shape_rows(n=n_shapes, workers=workers, repeat=repeat))
    # our scheduler places for the Dask engine exactly as for the local one: the same measurement
    result["placements_per_s_10k_nodes"] = placements_per_second(nodes=10_000)["placements_per_s"]
    result["repeat"] = repeat
    result["workers"] = workers
    result["n_tasks"] = n_tasks
    result["load_avg_1min"] = os.getloadavg()[0]
    result["engine"] = "dask"  # type: ignore[assignment]
    return result


TARGETS = {"throughput_tasks_per_s": (">=", 1500), "rtt_p50_ms": ("<=", 3.0),
           "hetero_efficiency_pct": (">=", 98.0), "cancel_ms": ("<=", 100)}
"""The issue's targets for the Dask engine (3 worker processes on one machine)."""
