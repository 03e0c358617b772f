import json, os, sys, time
from steerflow.bench import floor
t = time.perf_counter()
rows = floor.mixed_rows(2, lists=6)
keep = ("mixed_greedy_gap_pts", "mixed_efficiency_same_policy_gap_pts", "mixed_efficiency_gap_pts",
        "floor_mixed_efficiency_pct", "mixed_efficiency_pct", "mixed_efficiency_same_policy_pct", "mixed_greedy_efficiency_pct")
print(json.dumps({"arm": sys.argv[1], "s": round(time.perf_counter() - t), "load": round(os.getloadavg()[0], 2),
                  **{k: round(rows[k], 2) for k in keep if k in rows}}), flush=True)
