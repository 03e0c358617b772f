import json, sys
import numpy as np
pts = []
for f in sys.argv[1:]:
    for l in open(f):
        if l.startswith("{"):
            r = json.loads(l)
            if r.get("mixed_lists") == 14 and "load_start" in r:
                pts.append(((r["load_start"] + r["load_end"]) / 2, r["mixed_greedy_gap_pts"], r["mixed_efficiency_same_policy_gap_pts"]))
a = np.array(pts)
for lo, hi in ((0, 7), (7, 20)):
    m = (a[:, 0] >= lo) & (a[:, 0] < hi)
    if m.any():
        print(f"load {lo}-{hi}: {int(m.sum())} readings, greedy mean {a[m, 1].mean():+.2f} (SD {a[m, 1].std(ddof=1) if m.sum() > 1 else 0:.2f}), same-policy mean {a[m, 2].mean():+.2f}")
print("correlation load vs greedy gap: %.2f, vs same-policy: %.2f" % (np.corrcoef(a[:, 0], a[:, 1])[0, 1], np.corrcoef(a[:, 0], a[:, 2])[0, 1]))
print("slope greedy per load unit: %.3f" % np.polyfit(a[:, 0], a[:, 1], 1)[0], "intercept at load 0: %.2f" % np.polyfit(a[:, 0], a[:, 1], 1)[1])
