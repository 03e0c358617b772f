"""Median and spread of several runs' summary.json (one run per seed): the numbers the README quotes.

Run: python examples/03-molecular-design/seeds.py runs/full-s1 runs/full-s2 runs/full-s3
"""

from __future__ import annotations

import json
import os
import statistics
import sys

KEYS = ("sims_to_top1pct", "sims_to_top1pct_90", "baseline_sims_to_top1pct", "heuristic_sims_to_top1pct",
        "heuristic_sims_to_top1pct_90", "effective_performance_sims", "effective_performance_sims_vs_heuristic",
        "effective_performance", "effective_performance_vs_heuristic", "effective_performance_sims_90",
        "effective_performance_sims_vs_heuristic_90", "time_to_top1pct_s", "wall_s", "utilization_pct",
        "mean_simulation_s", "models", "top_ups")


def main(directories: list[str]) -> None:
    runs = []
    for d in directories:
        with open(os.path.join(d, "summary.json")) as f:
            runs.append(json.load(f))
    print(f"{len(runs)} runs: " + ", ".join(f"{os.path.basename(d.rstrip('/'))} (seed {r['seed']}, budget "
                                             f"{r['budget']})" for d, r in zip(directories, runs)))
    print(f"{'':44}{'median':>10}{'min':>10}{'max':>10}   per run")
    for key in KEYS:
        values = [r.get(key) for r in runs]
        if key.endswith("_90") and key.startswith("effective"):  # only where this run reached 90 %: else a bound
            values = [v if r.get("sims_to_top1pct_90") is not None else None for v, r in zip(values, runs)]
        known = [v for v in values if v is not None]
        if not known:
            print(f"{key:44}{'never':>10}")
            continue
        shown = " ".join("-" if v is None else f"{v:.1f}" for v in values)
        print(f"{key:44}{statistics.median(known):>10.1f}{min(known):>10.1f}{max(known):>10.1f}   {shown}"
              + ("  (some runs never reached it)" if len(known) < len(values) else ""))


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        raise SystemExit(__doc__)
    missing = [d for d in sys.argv[1:] if not os.path.isfile(os.path.join(d, "summary.json"))]
    if missing:  # (before: a FileNotFoundError traceback)
        raise SystemExit(f"seeds.py: {', '.join(missing)} holds no summary.json; give the --dir of finished runs of "
                         "campaign.py (each writes DIR/summary.json at its end).")
    main(sys.argv[1:])
