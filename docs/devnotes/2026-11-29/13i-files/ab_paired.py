"""Per-list paired difference (yield on - off) of the greedy and same-policy gaps over the rounds of an A/B file."""
import json, statistics, sys
import numpy as np
lab = None; arms = {"0": [], "1": []}
for l in open(sys.argv[1]):
    if l.startswith("yield"): lab = l.split()[0].split("=")[1]; continue
    arms[lab].append(json.loads(l))
for key in ("mixed_greedy_gap_pts", "mixed_efficiency_same_policy_gap_pts"):
    on = np.array([r[key + "_by_list"] for r in arms["1"]]).mean(axis=0)
    off = np.array([r[key + "_by_list"] for r in arms["0"]]).mean(axis=0)
    d = on - off
    print(f"{key}: on - off, per list (mean over rounds): mean {d.mean():+.3f} +- {d.std(ddof=1) / len(d) ** 0.5:.3f} (SE), "
          f"median {np.median(d):+.3f}, lists better with the yield {int((d < 0).sum())} of {len(d)}")
