"""Benchmark: the driver's CPU per task with the terminal view's live numbers on, off, and not sampled.

    python benchmarks/bench_live_view.py [--tasks 3000] [--rounds 3] [--big 0] [--json FILE]

Each round runs, in a fresh process each and in turn (so the machine's load hits all alike), a
campaign of ``--tasks`` trivial function tasks on 2 declared cores, with:
- ``off``: no terminal view (the floor);
- ``view``: the terminal view redrawn 4x a second to a forced terminal, its live numbers never
  re-sampled from the journal (the display as it was before the live numbers);
- ``live``: the same, with the live numbers sampled from the journal every second (`observe.live`).
With ``--big N``, the campaign's journal first gets N synthetic finished tasks, so each snapshot
scans a journal of that size. The driver's CPU is the process's own (workers are other processes).
Prints medians of µs of driver CPU per task; compare only numbers from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

STEP = """
import json, os, sys, time
import steerflow as sf
from steerflow import progress
from rich.console import Console
mode, directory, tasks, big = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sink = open(os.devnull, "w")
progress.Console = lambda stderr=True: Console(file=sink, force_terminal=True, width=100)
if mode == "view":
    progress.SNAPSHOT_EVERY_S = 1e9  # one snapshot at the start, none after
camp = sf.Campaign(directory, allocation=sf.Allocation.declare(nodes=1, cores=2), progress=mode != "off")
if big:  # finished tasks of an earlier phase, far from this run's keys: only the snapshots read them
    import sqlite3
    conn = sqlite3.connect(os.path.join(directory, "journal.db"), timeout=30)
    t = time.time() - 3600
    conn.executemany("INSERT INTO tasks (key, name, kind, pool, tags, priority, fingerprint, submitted, state, spec,"
                     " cores, gpus) VALUES (?, 'old', 'Function', 'default', '', 0, ?, ?, 'done', ?, 1, 0)",
                     [(10**9 + k, f"fp{k}", t + k * 1e-3, b"x" * 200) for k in range(big)])
    conn.executemany("INSERT INTO results (key, ok, value, path, error, started, ended) VALUES (?, 1, ?, NULL, NULL,"
                     " ?, ?)", [(10**9 + k, b"x" * 40, t + k * 1e-3, t + k * 1e-3 + 1) for k in range(big)])
    conn.commit()
    conn.close()
t0, c0 = time.perf_counter(), time.process_time()
for i in range(tasks):
    camp.submit(sf.Function(abs, args=(i,)))
camp.run()
print(json.dumps({"cpu_us_per_task": (time.process_time() - c0) / tasks * 1e6,
                  "wall_s": time.perf_counter() - t0}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--big", type=int, default=0, help="synthetic finished tasks in the journal first")
    parser.add_argument("--json")
    args = parser.parse_args()
    modes = ("off", "view", "live")
    seen: dict[str, list[dict]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for mode in modes:
                out = subprocess.run([sys.executable, "-c", STEP, mode, os.path.join(tmp, f"{mode}{r}"),
                                      str(args.tasks), str(args.big)], capture_output=True, text=True)
                if out.returncode:
                    raise SystemExit(out.stderr[-3000:])
                seen[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    result = {"tasks": args.tasks, "rounds": args.rounds, "big": args.big}
    print(f"{'mode':6} {'driver CPU µs/task':>20} {'wall s':>8}   (median of {args.rounds}; journal +{args.big:,})")
    for mode in modes:
        cpu = statistics.median(x["cpu_us_per_task"] for x in seen[mode])
        wall = statistics.median(x["wall_s"] for x in seen[mode])
        result[mode] = {"cpu_us_per_task": cpu, "wall_s": wall, "all_cpu": [x["cpu_us_per_task"] for x in seen[mode]]}
        print(f"{mode:6} {cpu:20.1f} {wall:8.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
