"""Benchmark: the journal writer's CPU per task for the rows one finished task writes (prints JSON).

    python benchmarks/bench_journal_writer.py with|without [--tasks 20000]

The rows of one finished task (task, 3 states with their task_state updates, result, steering
'result') are fed straight into `Journal` (no campaign, no workers) ``--tasks`` times; the figure
is the writer thread's CPU per task. ``with``: the observe data (results.timing, a waiting row's
reason); ``without``: the same rows without it. To compare with a tree from before a change, run
this file with PYTHONPATH pointing at that tree (e.g. `git archive a228a9a steerflow | tar -x -C
/tmp/old`), alternating the trees in one run; the issue-11 budget is +10 % over a228a9a.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from steerflow import journal as J


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("with", "without"))
    parser.add_argument("--tasks", type=int, default=20000)
    args = parser.parse_args()
    has_timing = "timing" in J._STATEMENTS["result"]
    with_data = args.mode == "with" and has_timing
    j = J.Journal(Path(tempfile.mkdtemp(prefix="steerflow-bench-journal-")))
    t = time.time()
    blob = b"\x80\x05K\x01."  # a pickled small int
    for k in range(1, args.tasks + 1):
        j.put("task", k, "noop", "Function", "default", "", 0, "fp", t, b"spec", 1, 0)
        for state, nodes in (("waiting", "deps" if with_data else None), ("running", "node0[c0]"), ("done", None)):
            j.put("state", k, state, t, 1, nodes)
            j.put("task_state", state, nodes if state == "running" else None, 1, k)
        if has_timing:
            j.put_result(k, True, 1, blob, None, t, t, J.pack_timing(t, (t, t, t, t)) if with_data else None)
        else:
            j.put_result(k, True, 1, blob, None, t, t)
        j.put("steer", k, "result", k, None, None, t)
    j.flush()
    j.close()
    print(json.dumps({"mode": args.mode, "timing_column": has_timing, "us_per_task": j.busy_s / args.tasks * 1e6}))


if __name__ == "__main__":
    main()
