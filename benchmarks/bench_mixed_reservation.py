"""The mixed-set rows of `steerflow bench runtime` alone, ROUNDS times: on each of 14 task lists (``floor.MIXED_LISTS``),
steerflow with the scheduler's anti-starvation reservation (the default: a wide task reserves its cores after 64
bypasses), steerflow without it (``Runtime(max_bypass=None)``: the greedy policy of the pool and of the greedy
ideal) and ProcessPoolExecutor, one after the other in an order that turns list by list, each executor warmed
once; the runtime's overhead apart from the policy's cost.

    nice -n 19 .venv/bin/python benchmarks/bench_mixed_reservation.py [ROUNDS]

Prints one JSON line per round (`floor.mixed_rows`: medians over the lists, their spread, every list's gaps; see
its docstring for each key), with the load average at the round's start and end.
"""

import json
import os
import sys
import time

from steerflow.bench import floor

if __name__ == "__main__":
    for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 2):
        load, t0 = os.getloadavg()[0], time.time()
        rows = floor.mixed_rows(2)
        rows = {k: v if isinstance(v, list) else round(v, 3) for k, v in rows.items()}
        rows.update(load_start=round(load, 2), load_end=round(os.getloadavg()[0], 2), seconds=round(time.time() - t0, 1),
                    at=time.strftime("%H:%M:%S", time.gmtime(t0)))
        print(json.dumps(rows), flush=True)
