import json, sys
label = None
rows = []
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith(("NEW", "OLD", "END")):
        label = line; continue
    if line.startswith("{"):
        r = json.loads(line)
        rows.append((label, r))
print("| reading | at (UTC) | load 1-min start -> end | greedy gap (IQR; 90% CI) | same-policy gap (IQR; 90% CI) | headline gap | policy cost | lists | s |")
print("|---|---|---|---|---|---|---|---|---|")
for label, r in rows:
    kind, i = label.split()[:2]
    g = r["mixed_greedy_gap_pts"]; s = r["mixed_efficiency_same_policy_gap_pts"]
    gi = r.get("mixed_greedy_gap_pts_iqr"); gc = r.get("mixed_greedy_gap_pts_ci90")
    si = r.get("mixed_efficiency_same_policy_gap_pts_iqr"); sc = r.get("mixed_efficiency_same_policy_gap_pts_ci90")
    extra = lambda a, b: f" ({a[0]:.2f}..{a[1]:.2f}; {b[0]:.2f}..{b[1]:.2f})" if a else ""
    load = f'{r.get("load_start", float(label.split()[4]))} -> {r.get("load_end", "")}'
    print(f'| {kind.lower()} {i} | {r.get("at", label.split()[2])} | {load} | **{g:.2f}**{extra(gi, gc)} | **{s:.2f}**{extra(si, sc)} | {r["mixed_efficiency_gap_pts"]:.2f} | {r["mixed_policy_cost_pts"]:.2f} | {r["mixed_lists"]} | {r.get("seconds", "")} |')
new = [r for l, r in rows if l.startswith("NEW")]
if new:
    ok = sum(1 for r in new if r["mixed_greedy_gap_pts"] <= 0.2 and r["mixed_efficiency_same_policy_gap_pts"] <= 0.2)
    print(f"\nnew: both gaps <= 0.2 in {ok} of {len(new)}")
    for key in ("mixed_greedy_gap_pts", "mixed_efficiency_same_policy_gap_pts"):
        v = sorted(r[key] for r in new); print(key, "range", v[0], v[-1], "median", v[len(v)//2])
old = [r for l, r in rows if l.startswith("OLD")]
if old:
    for key in ("mixed_greedy_gap_pts", "mixed_efficiency_same_policy_gap_pts"):
        v = sorted(r[key] for r in old); print("old", key, "range", v[0], v[-1])
