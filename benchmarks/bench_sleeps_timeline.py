"""Where the 200 lognormal sleeps' efficiency goes: a per-task timeline (prints a table, writes JSON).

The runtime benchmark's 200 sleeps (seed 2024, 3 one-core nodes) run ``--repeat`` times on the Dask
engine (a `steerflow.bench.dask_rows.BenchCluster`, as `steerflow bench runtime --engine dask` uses) or on
the local engine, after 2,000 no-ops. Each run's makespan is split with the workers' own timestamps:

- ``ideal_measured_s``: the ideal list schedule of the *measured* run times (the gap to ``ideal_s`` is sleep
  overrun, the host's); ``lag_measured_s``: a zero-latency simulation of pipelining's policy (a task is
  assigned to a core when the one before it there starts) on the same run times;
- ``gaps_*``: idle time between consecutive tasks on a core, and its part from "result serialised" to
  "next message received" (``ser_to_recv_*``: a worker that lost its CPU right after writing its reply);
- ``head_ms`` (first submit to first start), ``end_ms`` (last end to the wait returning).

    nice -n 19 python benchmarks/bench_sleeps_timeline.py --engine dask --repeat 3 --json timeline.json
"""

from __future__ import annotations

import argparse
import heapq
import json
import logging
import statistics
import sys
import tempfile
import time
from concurrent.futures import wait
from typing import Any

from steerflow.bench.runtime import ideal_makespan, lognormal_durations, noop, sleep_for


def lag_makespan(durations: list[float], workers: int) -> float:
    """Pipelining's policy with zero latency: each core runs its task and has the next one queued behind it;
    a core that ends starts its queued task and the next waiting one is queued behind that; at the end, a
    core with nothing queued takes the oldest task queued elsewhere."""
    n, nxt, events, queued, order = len(durations), 0, [], {}, []
    for core in range(min(workers, n)):
        heapq.heappush(events, (durations[nxt], core))
        nxt += 1
    for core in range(workers):
        if nxt < n:
            queued[core] = nxt
            order.append(nxt)
            nxt += 1
    last = 0.0
    while events:
        t, core = heapq.heappop(events)
        last = max(last, t)
        task = queued.pop(core, None)
        if task is None and order:  # steal the oldest queued task
            task = order[0]
            del queued[next(c for c, k in queued.items() if k == task)]
        if task is None:
            continue
        order.remove(task)
        heapq.heappush(events, (t + durations[task], core))
        if core not in queued and nxt < n:
            queued[core] = nxt
            order.append(nxt)
            nxt += 1
    return last


def decompose(futures: list, durations: list[float], t0: float, t_end: float, workers: int) -> dict[str, Any]:
    per: dict[tuple, list] = {}
    measured = [0.0] * len(futures)
    for i, f in enumerate(futures):
        attempt = f._record.attempts[-1]
        per.setdefault(attempt.nodes, []).append(attempt.times)
        measured[i] = attempt.times[2] - attempt.times[1]
    gaps, ser_to_recv, firsts, lasts = [], [], [], []
    for times in per.values():
        times.sort(key=lambda t: t[1])
        firsts.append(times[0][1] - t0)
        lasts.append(times[-1][2] - t0)
        for a, b in zip(times, times[1:]):
            gaps.append(b[1] - a[2])
            ser_to_recv.append(b[0] - a[3])
    gaps.sort()
    ideal = ideal_makespan(durations, workers)
    return {"efficiency_pct": 100 * ideal / (t_end - t0), "makespan_s": t_end - t0, "ideal_s": ideal,
            "ideal_measured_s": ideal_makespan(measured, workers), "lag_measured_s": lag_makespan(measured, workers),
            "overrun_s": sum(measured) - sum(durations), "gaps_sum_s": sum(gaps),
            "gaps_p50_ms": 1e3 * statistics.median(gaps), "gaps_p90_ms": 1e3 * gaps[int(0.9 * len(gaps))],
            "gaps_max_ms": 1e3 * gaps[-1], "ser_to_recv_sum_s": sum(x for x in ser_to_recv if x > 0),
            "head_ms": 1e3 * min(firsts), "head_max_ms": 1e3 * max(firsts), "end_ms": 1e3 * (t_end - t0 - max(lasts))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engine", choices=["dask", "local"], default="dask")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    logging.getLogger("distributed").setLevel(logging.CRITICAL)
    durations, workers = lognormal_durations(200), 3
    cluster = None
    run_dir = tempfile.mkdtemp(prefix="steerflow-timeline-")
    if args.engine == "dask":
        from steerflow.bench.dask_rows import BenchCluster

        cluster = BenchCluster(workers)
        rt = cluster.runtime(run_dir)
    else:
        from steerflow import Allocation, Runtime

        rt = Runtime(Allocation.declare(nodes=workers, cores=1), run_dir=run_dir)
    runs = []
    try:
        with rt:
            wait([rt.submit(noop) for _ in range(2000)])
            for _ in range(args.repeat):
                t = time.perf_counter()
                t0 = time.time()
                futures = [rt.submit(sleep_for, d) for d in durations]
                wait(futures)
                runs.append(decompose(futures, durations, t0, t0 + time.perf_counter() - t, workers))
    finally:
        if cluster is not None:
            cluster.close()
    keys = list(runs[0])
    print(f"200 lognormal sleeps on the {args.engine} engine, {workers} one-core nodes ({args.repeat} runs)")
    for key in keys:
        print(f"  {key:<20}" + "".join(f"{r[key]:>11.4f}" for r in runs))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"engine": args.engine, "runs": runs}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
