"""Per-kind overhead of the mixed set: steerflow (greedy policy) against ProcessPoolExecutor, in turns.

    .venv/bin/python benchmarks/bench_mixed_kinds.py [ROUNDS] [N] [SECONDS]

For each kind of the mixed set alone (1-core functions ``fn1``, 1-core executables ``exe`` = ``sleep``,
2-core functions ``fn2``), N tasks of SECONDS each, after the same warm-up as the mixed rows
(`floor.warm_up_set`), both executors in turns, ROUNDS times. Prints the lost core-milliseconds per task:
(wall x 2 cores - the core-seconds the tasks hold) / N, each executor in its own resource model (the pool
runs a 2-core function as one worker), median over the rounds, and one JSON line.
"""

import json
import statistics
import sys

from steerflow.bench import floor

if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    d = float(sys.argv[3]) if len(sys.argv) > 3 else 0.01
    warm = floor.warm_up_set(2)
    out = {}
    for kind, cores in (("fn1", 1), ("exe", 1), ("fn2", 2)):
        tasks = [(kind, cores, d)] * n
        ours, pool = [], []
        for r in range(rounds):
            arms = ("sf", "pool") if r % 2 == 0 else ("pool", "sf")
            for arm in arms:
                if arm == "sf":
                    wall, _ = floor._steerflow_seconds(2, warm, tasks, max_bypass=None)
                    ours.append((wall * 2 - n * d * cores) / n * 1e3)
                else:
                    wall = floor._pool_seconds(2, warm, tasks)
                    pool.append((wall * 2 - n * d) / n * 1e3)
        out[kind] = {"steerflow_lost_core_ms_per_task": round(statistics.median(ours), 3),
                     "pool_lost_core_ms_per_task": round(statistics.median(pool), 3),
                     "steerflow_runs": [round(x, 3) for x in ours], "pool_runs": [round(x, 3) for x in pool]}
        print(f"{kind}: steerflow {statistics.median(ours):.3f} core-ms/task {[round(x, 2) for x in ours]}  "
              f"pool {statistics.median(pool):.3f} {[round(x, 2) for x in pool]}", flush=True)
    print(json.dumps(out))
