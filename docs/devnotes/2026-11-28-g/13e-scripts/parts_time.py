import json, time, sys, os
from steerflow.bench import floor, scheduler
t0 = time.perf_counter()
rows = floor.mixed_rows(2, lists=6)
t1 = time.perf_counter()
pl = scheduler.run(nodes=10_000)
t2 = time.perf_counter()
print(json.dumps({"arm": sys.argv[1], "mixed_s": round(t1 - t0, 1), "placements_s": round(t2 - t1, 1),
                  "load": os.getloadavg()[0], **{k: round(v, 2) for k, v in rows.items()},
                  "pl": pl["placements_per_s"], "pl16": pl["placements_per_s_batch16"]}), flush=True)
