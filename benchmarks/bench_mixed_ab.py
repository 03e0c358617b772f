"""Old code against new on the mixed set's kinds, in the same minutes: each arm a fresh interpreter whose
``steerflow`` comes from a folder (``PYTHONPATH``; e.g. ``git archive <sha> steerflow | tar -x -C /tmp/old``),
the arms alternating, ROUNDS times.

    .venv/bin/python benchmarks/bench_mixed_ab.py ROUNDS N SECONDS NAME=DIR [NAME=DIR ...] [--env NAME=VAR=VALUE]

Each run prints `bench_mixed_kinds.py`'s lost core-ms per task (steerflow, greedy policy, and the pool in the
same interpreter) for one round; this script prints every arm's runs and medians.
"""

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    rounds, n, d = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    arms = [a.split("=", 1) for a in sys.argv[4:] if "=" in a and not a.startswith("--")]
    got: dict = {}
    for r in range(rounds):
        for name, folder in (arms if r % 2 == 0 else arms[::-1]):
            env = dict(os.environ)
            if folder != "-":
                env["PYTHONPATH"] = folder
            if ":" in name:  # NAME:VAR=VALUE sets an environment variable for that arm
                name, var = name.split(":", 1)
                key, value = var.split("~", 1)
                env[key] = value
            out = subprocess.run([sys.executable, str(HERE / "bench_mixed_kinds.py"), "1", n, d], env=env,
                                 capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            for kind, row in json.loads(out).items():
                got.setdefault(name, {}).setdefault(kind, {"sf": [], "pool": []})
                got[name][kind]["sf"] += row["steerflow_runs"]
                got[name][kind]["pool"] += row["pool_runs"]
        print(f"round {r + 1}: load {os.getloadavg()[0]:.2f}", flush=True)
    for name, kinds in got.items():
        for kind, v in kinds.items():
            print(f"{name:>8} {kind}: steerflow {statistics.median(v['sf']):.3f} core-ms/task {v['sf']}  "
                  f"pool {statistics.median(v['pool']):.3f}")
    print(json.dumps(got))
