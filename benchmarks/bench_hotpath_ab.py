"""The hot path of two source trees of steerflow, alternating, with ProcessPoolExecutor in the same run.

    nice -n 19 .venv/bin/python benchmarks/bench_hotpath_ab.py OLD_TREE [NEW_TREE] [--rounds 5] [--json FILE]

A tree is a checkout's root (``git archive main | tar -x -C /tmp/old``); NEW_TREE defaults to this one. Each
measurement runs in a fresh interpreter with that tree first on PYTHONPATH (its workers inherit it): the
throughput and round-trip rows of `steerflow bench runtime` (`bench.runtime.measure_executor`: 5,000 no-op
tasks at once, then 500 one at a time), on 2 workers. The arms rotate each round; medians are printed.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

PROBE = """
import json, sys
from concurrent.futures import ProcessPoolExecutor
from steerflow.bench.runtime import measure_executor
arm = sys.argv[1]
if arm == "pool":
    make, submit, close = lambda: ProcessPoolExecutor(2), lambda ex, fn, args: ex.submit(fn, *args), lambda ex: ex.shutdown()
else:
    import tempfile
    from steerflow import Allocation, Runtime
    make = lambda: Runtime(Allocation.declare(nodes=1, cores=2), run_dir=tempfile.mkdtemp(prefix="steerflow-ab-"))
    submit, close = lambda rt, fn, args: rt.submit(fn, *args), lambda rt: rt.shutdown()
row = measure_executor(make, submit, close, 2, 5000, 500, [0.001] * 4)
print(json.dumps({k: row[k] for k in ("throughput_tasks_per_s", "rtt_p50_ms", "rtt_p99_ms")}))
"""


def measure(arm: str, tree: str) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=tree)
    out = subprocess.run([sys.executable, "-c", PROBE, arm], env=env, cwd=tree, capture_output=True, text=True,
                         timeout=600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new", nargs="?", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    arms = {"old": args.old, "new": args.new, "pool": args.new}
    rows: dict[str, list[dict[str, float]]] = {arm: [] for arm in arms}
    order = list(arms)
    for r in range(args.rounds):
        for arm in order[r % 3:] + order[:r % 3]:
            rows[arm].append(measure(arm, arms[arm]))
            print(f"round {r + 1} {arm}: {rows[arm][-1]}", file=sys.stderr, flush=True)
    med = {arm: {k: statistics.median(x[k] for x in rows[arm]) for k in rows[arm][0]} for arm in arms}
    print(f"medians of {args.rounds} rounds (load average {os.getloadavg()[0]:.1f})")
    print("| arm | throughput (tasks/s) | vs pool | round trip p50 (ms) | vs pool | p99 (ms) |")
    print("|---|---|---|---|---|---|")
    for arm in arms:
        m, p = med[arm], med["pool"]
        print(f"| {arm} | {m['throughput_tasks_per_s']:.0f} | {m['throughput_tasks_per_s'] / p['throughput_tasks_per_s']:.2f}x "
              f"| {m['rtt_p50_ms']:.3f} | {m['rtt_p50_ms'] / p['rtt_p50_ms']:.2f}x | {m['rtt_p99_ms']:.3f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rounds": rows, "medians": med, "trees": arms}, f, indent=1)


if __name__ == "__main__":
    main()
