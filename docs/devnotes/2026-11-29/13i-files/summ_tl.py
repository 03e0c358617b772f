"""Tables from mixed_timeline.py's JSON: per arm, medians over its runs."""
import json, statistics, sys
rs = json.load(open(sys.argv[1]))
med = statistics.median
for arm in ("sf", "pool"):
    a = [r for r in rs if r["arm"] == arm]
    if not a: continue
    keys = sorted({k for r in a for k in r["gaps"]})
    print(f"**{arm}** ({len(a)} runs): efficiency {', '.join('%.2f' % r['efficiency_pct'] for r in a)} %; "
          f"idle core-ms (median) {med(r['idle_core_ms'] for r in a):.1f}; hand-over gaps summed {med(r['gaps_sum_ms'] for r in a):.1f}; "
          f"lead (first task's start) {med(max(r['lead_ms']) for r in a):.1f} ms; tail (last end -> wait returns) {med(min(r['tail_ms']) for r in a):.2f} ms")
    print("| transition | n | median gap (ms) | core-ms a run (median) |")
    print("|---|---|---|---|")
    for k in keys:
        rows = [r["gaps"][k] for r in a if k in r["gaps"]]
        print(f"| {k} | {med(x['n'] for x in rows):.0f} | {med(x['p50_ms'] for x in rows):.3f} | {med(x['sum_ms'] for x in rows):.1f} |")
    ov = {}
    for r in a:
        for k, v in r["overrun"].items():
            ov.setdefault(k, []).append(v["per_task_ms"])
    print("overrun per task (ms, the task's own span past its nominal duration; an executable's from exec to exit): " + ", ".join(f"{k} {med(v):.3f}" for k, v in ov.items()))
    print()
