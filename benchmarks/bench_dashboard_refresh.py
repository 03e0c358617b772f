"""Benchmark: one dashboard refresh at scale, before (whole journal re-read) and after (incremental reads).

    python benchmarks/bench_dashboard_refresh.py [--tasks 10000,100000] [--new 1000] [--json FILE]

For each size, a synthetic finished journal (steerflow.observe.synthetic, 64 nodes x 32 cores + 4
GPUs) is written; then, in one fresh process per size, after ``--new`` more finished tasks are
appended (what a running campaign adds between two refreshes):
- ``before``: what each refresh cost before: `timeline.read` of the whole journal + `dashboard.view`
  (every metric recomputed);
- ``read_full``: the whole read alone (the floor of ``before``);
- ``read_incremental``: a `timeline.Follower` that read the journal once already reads the new rows;
- ``after``: the live part of a refresh now (incremental read + status, running tasks, failures with
  the latest metrics reused);
- ``metrics``: recomputing every metric on the followed timeline (the dashboard does it every
  max(refresh, 4x this)).
Figures are not included (both before and after draw them at most every max(5 s, 5x their cost)).
Compare only numbers of one run: the machine's load moves them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

STEP = """
import json, sys, time
from steerflow.observe import dashboard, metrics, synthetic, timeline
directory, new = sys.argv[1], int(sys.argv[2])
out = {}
follower = timeline.Follower(directory)
tl = follower.read()
cached = metrics.compute(tl)
synthetic.append(directory, tasks=new)
t = time.perf_counter(); full = timeline.read(directory); out["read_full_s"] = time.perf_counter() - t
t = time.perf_counter(); dashboard.view(timeline.read(directory)); out["before_s"] = time.perf_counter() - t
t = time.perf_counter(); tl = follower.read(); out["read_incremental_s"] = time.perf_counter() - t
assert len(tl.tasks) == len(full.tasks) and len(tl.holds) == len(full.holds)
synthetic.append(directory, tasks=new, seed=2)
t = time.perf_counter(); tl = follower.read(); dashboard.view(tl, cached); out["after_s"] = time.perf_counter() - t
t = time.perf_counter(); metrics.compute(tl); out["metrics_s"] = time.perf_counter() - t
print(json.dumps(out))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default="10000,100000")
    parser.add_argument("--new", type=int, default=1000)
    parser.add_argument("--json")
    args = parser.parse_args()
    from steerflow.observe import synthetic

    rows = []
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    with tempfile.TemporaryDirectory(prefix="steerflow-bench-refresh-") as tmp:
        for n in (int(x) for x in args.tasks.split(",")):
            directory = Path(tmp) / f"c{n}"
            synthetic.write(directory, tasks=n)
            done = subprocess.run([sys.executable, "-c", STEP, str(directory), str(args.new)], capture_output=True,
                                  text=True, env=env)
            if done.returncode:
                raise SystemExit(done.stderr[-3000:])
            rows.append({"tasks": n, "new": args.new, **json.loads(done.stdout.strip().splitlines()[-1])})
    print(f"{'tasks':>8} {'before s':>9} {'read full':>10} {'read incr':>10} {'after s':>8} {'metrics s':>10}"
          f"   (+{args.new:,} new tasks between refreshes)")
    for r in rows:
        print(f"{r['tasks']:>8,} {r['before_s']:9.2f} {r['read_full_s']:10.2f} {r['read_incremental_s']:10.3f} "
              f"{r['after_s']:8.3f} {r['metrics_s']:10.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
