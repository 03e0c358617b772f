"""CPU-bound tasks queued one behind another (pipelined), the hand-over yield on and off in turns, with the pool
in the same run: does the loop's yield (`steerflow.engines.local.HAND_OVER_YIELD`) delay its own turn, and so the
pipeline, when the next task computes instead of sleeping?

    .venv/bin/python benchmarks/bench_handover_cpu.py [ROUNDS] [N] [MS,MS,...]

Each arm in a fresh interpreter: N busy-loop tasks of each duration (default 1, 5 and 20 ms), 1-core and 2-core,
on 2 cores; prints
the wall time of each (ms), medians over the rounds, and the pool's for 1-core tasks.
"""

import json
import os
import statistics
import subprocess
import sys

PROBE = r"""
import json, sys, tempfile, time
from concurrent.futures import ProcessPoolExecutor, wait


def spin_for(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
    return seconds


n = int(sys.argv[1]); out = {}; durations = [float(x) for x in sys.argv[3].split(",")]
if sys.argv[2] == "pool":
    with ProcessPoolExecutor(2) as ex:
        wait([ex.submit(spin_for, 0.05) for _ in range(2)])
        for ms in durations:
            t = time.perf_counter(); wait([ex.submit(spin_for, ms / 1e3) for _ in range(n)])
            out[f"fn1_{ms}ms"] = (time.perf_counter() - t) * 1e3
else:
    import steerflow as sf
    from steerflow.task import Function
    with sf.Runtime(sf.Allocation.declare(nodes=1, cores=2), run_dir=tempfile.mkdtemp(), max_bypass=None) as rt:
        for c in (1, 2):
            wait([rt.submit(Function(spin_for, (0.05,), cores=c)) for _ in range(2)])
            for ms in durations:
                t = time.perf_counter(); wait([rt.submit(Function(spin_for, (ms / 1e3,), cores=c)) for _ in range(n)])
                out[f"fn{c}_{ms}ms"] = (time.perf_counter() - t) * 1e3
print(json.dumps(out))
"""

if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    n = sys.argv[2] if len(sys.argv) > 2 else "300"
    durations = sys.argv[3] if len(sys.argv) > 3 else "1,5,20"
    got: dict = {}
    arms = [("yield", "1"), ("no-yield", "0"), ("pool", "1")]
    for r in range(rounds):
        for name, y in (arms if r % 2 == 0 else arms[::-1]):
            env = dict(os.environ, STEERFLOW_HANDOVER_YIELD=y)
            out = subprocess.run([sys.executable, "-c", PROBE, n, "pool" if name == "pool" else "sf", durations], env=env,
                                 capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            for k, v in json.loads(out).items():
                got.setdefault(k, {}).setdefault(name, []).append(round(v, 1))
    for k, arms_ in got.items():
        print(k, {a: (statistics.median(v), v) for a, v in arms_.items()})
    print(json.dumps(got))
