"""Round trip of one program at a time: steerflow Executable(["true"]) against the pool's subprocess.run in its worker."""
import statistics, subprocess, sys, tempfile, time
from concurrent.futures import ProcessPoolExecutor
import steerflow as sf
from steerflow.task import Executable
def run_true():
    return subprocess.run(["true"], check=True).returncode
n = 100
out = {}
for arm in ("sf", "pool", "sf", "pool"):
    ts = []
    if arm == "sf":
        with sf.Runtime(sf.Allocation.declare(nodes=1, cores=2), run_dir=tempfile.mkdtemp()) as rt:
            for _ in range(5): rt.submit(Executable(["true"])).result()
            for _ in range(n):
                t = time.perf_counter(); rt.submit(Executable(["true"])).result(); ts.append(time.perf_counter() - t)
    else:
        with ProcessPoolExecutor(2) as ex:
            for _ in range(5): ex.submit(run_true).result()
            for _ in range(n):
                t = time.perf_counter(); ex.submit(run_true).result(); ts.append(time.perf_counter() - t)
    out.setdefault(arm, []).append(statistics.median(ts) * 1e3)
print({k: [round(x, 3) for x in v] for k, v in out.items()})
