"""What a function task's timeout costs: soft (interrupted in its warm worker) against hard (worker killed), and
against a floor where the same tasks end on their own at the same moment (no timeout at all).

    nice -n 19 .venv/bin/python benchmarks/bench_timeouts.py [--rounds 3] [--json FILE]

Arms alternate in one run (``STEERFLOW_SOFT_TIMEOUT=0`` is the hard arm: the runtime before soft timeouts):

- *one timeout* (1 core, one after another, 20 times): a function sleeping 30 s with ``timeout=0.05``, then a
  no-op task. ``late`` is how long after its deadline the future failed, ``next`` how long the no-op then took
  (a new worker's start, in the hard arm). The floor's task sleeps 0.05 s and has no timeout.
- *load* (2 cores, 200 tasks at once): every other one sleeps 30 s with ``timeout=0.02``, the others sleep
  10 ms with ``timeout=2``. ``wall`` for all 200, the worker starts, and how many short tasks failed (a
  cascade). The floor's long tasks sleep 0.02 s and have no timeout.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import steerflow as sf
from steerflow.engines.local import LocalEngine


class CountingEngine(LocalEngine):
    def __init__(self) -> None:
        super().__init__()
        self.starts = 0

    def _spawn_worker(self, binding):  # type: ignore[no-untyped-def]
        self.starts += 1
        return super()._spawn_worker(binding)


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def noop() -> None:
    return None


def _runtime(cores: int, folder: str) -> tuple[sf.Runtime, CountingEngine]:
    engine = CountingEngine()
    rt = sf.Runtime(sf.Allocation.declare(nodes=1, cores=cores), engine=engine, run_dir=folder)
    rt.submit(noop).result(timeout=120)
    for future in [rt.submit(noop) for _ in range(4 * cores)]:
        future.result(timeout=120)
    return rt, engine


def one_timeout(arm: str, folder: str, n: int = 20, timeout: float = 0.05) -> dict[str, float]:
    rt, engine = _runtime(1, folder)
    late, nxt = [], []
    try:
        for _ in range(n):
            t0 = time.monotonic()
            spec = sf.Function(nap, (timeout,)) if arm == "floor" else sf.Function(nap, (30,), timeout=timeout)
            future = rt.submit(spec)
            try:
                future.result(timeout=120)
            except sf.TaskTimeout:
                pass
            t1 = time.monotonic()
            rt.submit(noop).result(timeout=120)
            t2 = time.monotonic()
            late.append(t1 - t0 - timeout)
            nxt.append(t2 - t1)
    finally:
        rt.shutdown(kill=True)
    return {"late_ms_p50": 1e3 * statistics.median(late), "next_ms_p50": 1e3 * statistics.median(nxt),
            "cost_ms_mean": 1e3 * (statistics.fmean(late) + statistics.fmean(nxt)), "worker_starts": engine.starts - 1}


def load(arm: str, folder: str, n: int = 200, timeout: float = 0.02) -> dict[str, float]:
    rt, engine = _runtime(2, folder)
    starts = engine.starts
    try:
        t0 = time.monotonic()
        futures = []
        for i in range(n):
            if i % 2:
                futures.append(rt.submit(sf.Function(nap, (0.01,), timeout=2.0)))
            elif arm == "floor":
                futures.append(rt.submit(sf.Function(nap, (timeout,))))
            else:
                futures.append(rt.submit(sf.Function(nap, (30,), timeout=timeout)))
        timed_out = short_failed = 0
        for i, future in enumerate(futures):
            try:
                future.result(timeout=600)
            except sf.TaskTimeout:
                timed_out += 1
                short_failed += i % 2
        wall = time.monotonic() - t0
    finally:
        rt.shutdown(kill=True)
    return {"wall_s": wall, "tasks_per_s": n / wall, "worker_starts": engine.starts - starts, "timed_out": timed_out,
            "short_tasks_failed": short_failed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    arms = ("soft", "hard", "floor")
    rows: dict[str, dict[str, list[dict[str, float]]]] = {arm: {"one": [], "load": []} for arm in arms}
    with tempfile.TemporaryDirectory(prefix="steerflow-bench-timeouts-") as folder:
        for r in range(args.rounds):
            for arm in arms:
                os.environ["STEERFLOW_SOFT_TIMEOUT"] = "0" if arm == "hard" else "1"
                rows[arm]["one"].append(one_timeout(arm, f"{folder}/{r}-{arm}-one"))
                rows[arm]["load"].append(load(arm, f"{folder}/{r}-{arm}-load"))
                print(f"round {r + 1} {arm}: {rows[arm]['one'][-1]} {rows[arm]['load'][-1]}", file=sys.stderr,
                      flush=True)
    os.environ.pop("STEERFLOW_SOFT_TIMEOUT", None)
    med = {arm: {part: {k: statistics.median(run[k] for run in rows[arm][part]) for k in rows[arm][part][0]}
                 for part in ("one", "load")} for arm in arms}
    print(f"\nmedians of {args.rounds} rounds (load average {os.getloadavg()[0]:.1f})")
    print("| arm | one timeout: late p50 (ms) | next task p50 (ms) | cost mean (ms) | worker starts (20) "
          "| load: wall (s) | tasks/s | worker starts | short tasks failed |")
    print("|---|---|---|---|---|---|---|---|---|")
    for arm in arms:
        one, ld = med[arm]["one"], med[arm]["load"]
        print(f"| {arm} | {one['late_ms_p50']:.1f} | {one['next_ms_p50']:.1f} | {one['cost_ms_mean']:.1f} "
              f"| {one['worker_starts']:.0f} | {ld['wall_s']:.2f} | {ld['tasks_per_s']:.0f} | {ld['worker_starts']:.0f} "
              f"| {ld['short_tasks_failed']:.0f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rounds": rows, "medians": med, "load_average": os.getloadavg()}, f, indent=1)


if __name__ == "__main__":
    main()
