"""The Dask engine of several source trees of steerflow, alternating, each with the local engine's floor in the same run.

    nice -n 19 .venv/bin/python benchmarks/bench_dask_ab.py TREE [TREE ...] [--rounds 5] [--json FILE]

A tree is a checkout's root (``git archive 64a3242 | tar -x -C /tmp/old``), or ``.`` for this one. Each measurement
runs in a fresh interpreter with that tree first on PYTHONPATH (the Dask workers and their warm workers inherit it):
`bench.dask_engine.measure_engine(n_tasks=3000)` (a LocalCluster of 3 workers, one node of 1 core each: 3,000 no-op
tasks at once, 200 one at a time, 200 lognormal sleeps), then the local engine's floor on 3 cores
(`bench.runtime.measure_steerflow`, the same tasks), and the CPU time per no-op task of the driver and of every process
below it (Dask workers, nannies, warm workers: a load-independent measure, where the machine is shared). The arms
rotate each round; medians are printed, and the ratio to the floor measured beside each arm.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

PROBE = """
import json, logging, sys, tempfile, time
import psutil
from steerflow.bench.dask_engine import measure_engine
from steerflow.bench.dask_rows import BenchCluster
from steerflow.bench.runtime import measure_steerflow, noop
logging.getLogger("distributed").setLevel(logging.CRITICAL)
me = psutil.Process()


def tree_cpu():
    total = 0.0
    for p in me.children(recursive=True):
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


row = measure_engine(3, n_tasks=3000)
floor = measure_steerflow(3, n_tasks=3000)
n = 3000
with BenchCluster(3) as cluster:  # CPU per task: 3 rounds of n no-ops after a warm-up, the median round
    with cluster.runtime(tempfile.mkdtemp(prefix="steerflow-ab-")) as rt:
        for _ in range(300):
            rt.submit(noop).result()
        driver, below = [], []
        for _ in range(3):
            c0, k0 = time.process_time(), tree_cpu()
            futures = [rt.submit(noop) for _ in range(n)]
            for f in futures:
                f.result()
            driver.append((time.process_time() - c0) / n * 1e6)
            below.append((tree_cpu() - k0) / n * 1e6)
print(json.dumps({"throughput_tasks_per_s": row["throughput_tasks_per_s"], "rtt_p50_ms": row["rtt_p50_ms"],
                  "floor_throughput_tasks_per_s": floor["throughput_tasks_per_s"], "floor_rtt_p50_ms": floor["rtt_p50_ms"],
                  "driver_cpu_us_per_task": sorted(driver)[1], "nodes_cpu_us_per_task": sorted(below)[1]}))
"""


def measure(tree: str) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree))
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=tree, capture_output=True, text=True,
                         timeout=900, check=True)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["vs_floor"] = row["throughput_tasks_per_s"] / row["floor_throughput_tasks_per_s"]
    row["cpu_us_per_task"] = row["driver_cpu_us_per_task"] + row["nodes_cpu_us_per_task"]
    row["load_avg_1min"] = os.getloadavg()[0]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    rows: dict[str, list[dict[str, float]]] = {tree: [] for tree in args.trees}
    order = list(args.trees)
    for r in range(args.rounds):
        k = r % len(order)
        for tree in order[k:] + order[:k]:
            rows[tree].append(measure(tree))
            print(f"round {r + 1} {tree}: {json.dumps(rows[tree][-1])}", file=sys.stderr, flush=True)
    keys = ("throughput_tasks_per_s", "floor_throughput_tasks_per_s", "vs_floor", "rtt_p50_ms", "floor_rtt_p50_ms",
            "driver_cpu_us_per_task", "nodes_cpu_us_per_task", "cpu_us_per_task")
    med = {tree: {key: statistics.median(x[key] for x in rows[tree]) for key in keys} for tree in rows}
    print(f"medians of {args.rounds} rounds (load average {os.getloadavg()[0]:.1f})")
    print("| tree | Dask engine (tasks/s) | local floor | vs floor | round trip p50 (ms) | floor (ms) "
          "| CPU per task: driver (us) | nodes (us) | all (us) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for tree, m in med.items():
        print(f"| {tree} | {m['throughput_tasks_per_s']:.0f} | {m['floor_throughput_tasks_per_s']:.0f} | "
              f"{m['vs_floor']:.2f}x | {m['rtt_p50_ms']:.3f} | {m['floor_rtt_p50_ms']:.3f} | "
              f"{m['driver_cpu_us_per_task']:.0f} | {m['nodes_cpu_us_per_task']:.0f} | {m['cpu_us_per_task']:.0f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rounds": rows, "medians": med, "trees": args.trees}, f, indent=1)


if __name__ == "__main__":
    main()
