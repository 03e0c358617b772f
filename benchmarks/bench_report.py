"""Benchmark: `steerflow report` and the dashboard's refresh on synthetic journals (table; JSON with --json FILE).

    python benchmarks/bench_report.py [--tasks 1000,10000,100000] [--json FILE]

For each size, a synthetic finished campaign (steerflow.observe.synthetic: 64 nodes x 32 cores
and 4 GPUs, four pools, 3 % of tasks retried) is written, then each step runs in a fresh process
so its peak memory is its own:
- ``read_s`` (the floor): reading the journal into holds and waits (timeline.read);
- ``metrics_s``: read + every metric (what `steerflow report DIR --json` computes);
- ``report_s`` and ``report_mb``: the whole `steerflow report` (HTML with figures, JSON, CSV), peak RSS;
- ``dashboard_s``: one dashboard refresh with figures (read + metrics + figures + HTML fragments).
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
import json, resource, sys, time
from steerflow.observe import dashboard, figures, metrics, report, timeline
what, directory = sys.argv[1], sys.argv[2]
t = time.perf_counter()
if what == "read":
    timeline.read(directory)
elif what == "metrics":
    metrics.compute(directory)
elif what == "report":
    report.build(directory, directory + "/report")
else:
    tl = timeline.read(directory)
    data = dashboard.view(tl)
    figures.all_figures(tl, data["metrics"])
print(json.dumps({"s": time.perf_counter() - t, "mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def step(what: str, directory: Path) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-c", STEP, what, str(directory)], capture_output=True, text=True, env=env,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default="1000,10000,100000")
    parser.add_argument("--json")
    args = parser.parse_args()
    from rich.console import Console
    from rich.table import Table

    from steerflow.observe import synthetic

    rows = []
    with tempfile.TemporaryDirectory(prefix="steerflow-bench-report-") as tmp:
        for n in (int(x) for x in args.tasks.split(",")):
            directory = Path(tmp) / f"c{n}"
            synthetic.write(directory, tasks=n)
            row = {"tasks": n, "journal_mb": (directory / "journal.db").stat().st_size / 2**20}
            for what in ("read", "metrics", "report", "dashboard"):
                measured = step(what, directory)
                row[f"{what}_s"] = measured["s"]
                row[f"{what}_mb"] = measured["mb"]
            row["html_kb"] = (directory / "report" / "report.html").stat().st_size / 1024
            rows.append(row)
    table = Table(title="steerflow report on synthetic journals (peak RSS per step in its own process)")
    for column in ("tasks", "journal MB", "read s (floor)", "metrics s", "report s", "report MB", "dashboard s",
                   "HTML KB"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(f"{r['tasks']:,}", f"{r['journal_mb']:.1f}", f"{r['read_s']:.2f}", f"{r['metrics_s']:.2f}",
                      f"{r['report_s']:.2f}", f"{r['report_mb']:.0f}", f"{r['dashboard_s']:.2f}", f"{r['html_kb']:.0f}")
    Console().print(table)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
