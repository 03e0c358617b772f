"""From the readings' per-list gaps: how much a reading swings with other estimators over the same lists."""
import json, statistics, sys
import numpy as np
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
new = [r for r in rows if r["mixed_lists"] == 14]
old = [r for r in rows if r["mixed_lists"] == 6]
def trim(v, f=0.2):
    v = sorted(v); k = int(len(v) * f); return statistics.mean(v[k:len(v) - k])
for key in ("mixed_greedy_gap_pts", "mixed_efficiency_same_policy_gap_pts"):
    for name, rs in (("new", new), ("old", old)):
        L = [r[key + "_by_list"] for r in rs]
        for est_name, est in (("median", statistics.median), ("mean", statistics.mean), ("20% trimmed mean", trim)):
            vals = [est(l) for l in L]
            print(f"{key} {name} {est_name}: readings {[round(x, 2) for x in vals]} sd {statistics.stdev(vals):.3f} range {max(vals) - min(vals):.2f}")
    # per-seed noise across the new readings
    A = np.array([r[key + "_by_list"] for r in new])
    print(key, "per-list sd across readings (new, 14 seeds):", np.round(A.std(axis=0, ddof=1), 2), "median", round(float(np.median(A.std(axis=0, ddof=1))), 2))
    print(key, "per-seed mean over the 10 readings:", np.round(A.mean(axis=0), 2))
