"""The mixed-set row of `steerflow bench runtime` with the scheduler's anti-starvation reservation on (the
default: a wide task reserves its cores after 64 bypasses) and off (``max_bypass`` unbounded: the greedy
policy of the row's ideal), alternating, to tell the runtime's overhead from the policy's cost.

    .venv/bin/python benchmarks/bench_mixed_reservation.py [ROUNDS]

Prints one JSON line per arm and round (`floor.mixed_rows`: medians over 6 task lists, each run by steerflow
and then ProcessPoolExecutor).
"""

import json
import sys

import steerflow.runtime as runtime_mod
from steerflow.bench import floor

_init = runtime_mod.Runtime.__init__
_arm = {"off": False}


def _init_with_arm(self, *args, **kwargs):
    if _arm["off"]:
        kwargs["max_bypass"] = 10**9  # never reserves: the greedy backfilling policy
    _init(self, *args, **kwargs)


if __name__ == "__main__":
    runtime_mod.Runtime.__init__ = _init_with_arm
    for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 2):
        for arm in ("on", "off"):
            _arm["off"] = arm == "off"
            rows = floor.mixed_rows(2, lists=6)
            print(json.dumps({"reservation": arm, **{k: round(v, 2) for k, v in rows.items()}}), flush=True)
