"""The mixed-set rows of `steerflow bench runtime` alone, ROUNDS times: on each of 6 task lists, steerflow with the
scheduler's anti-starvation reservation (the default: a wide task reserves its cores after 64 bypasses) and
without it (``Runtime(max_bypass=None)``: the greedy policy of the pool and of the greedy ideal), which goes first
alternating list by list, then ProcessPoolExecutor; the runtime's overhead apart from the policy's cost.

    nice -n 19 .venv/bin/python benchmarks/bench_mixed_reservation.py [ROUNDS]

Prints one JSON line per round (`floor.mixed_rows`: medians over the lists; see its docstring for each key).
"""

import json
import sys

from steerflow.bench import floor

if __name__ == "__main__":
    for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 2):
        rows = floor.mixed_rows(2, lists=6)
        print(json.dumps({k: v if isinstance(v, list) else round(v, 2) for k, v in rows.items()}), flush=True)
