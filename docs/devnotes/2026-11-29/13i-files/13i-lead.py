import statistics, sys, tempfile, time, os
from concurrent.futures import ProcessPoolExecutor, wait
import steerflow as sf
from steerflow.bench import floor
from steerflow.bench.runtime import sleep_for
from steerflow.task import Executable, Function
tasks = floor.mixed_set(120, seed=int(sys.argv[1]) if len(sys.argv) > 1 else 8)
def stamped(d):
    t = time.monotonic(); time.sleep(d); return t
res = {"sf_submit_ms": [], "pool_submit_ms": [], "sf_first2": [], "pool_first2": []}
for r in range(3):
    with sf.Runtime(sf.Allocation.declare(nodes=1, cores=2), run_dir=tempfile.mkdtemp(), max_bypass=None) as rt:
        wait([rt.submit(Executable(["sleep", str(d)]) if k == "exe" else Function(sleep_for, (d,), cores=c)) for k, c, d in floor.warm_up_set(2)])
        t0 = time.monotonic()
        fs = [rt.submit(Executable(["sleep", str(d)]) if k == "exe" else Function(stamped, (d,), cores=c)) for k, c, d in tasks]
        t1 = time.monotonic()
        wait(fs)
        starts = sorted(f.result() - t0 for (k, _, _), f in zip(tasks, fs) if k != "exe")[:2]
    res["sf_submit_ms"].append((t1 - t0) * 1e3); res["sf_first2"].append([round(s * 1e3, 2) for s in starts])
    with ProcessPoolExecutor(2) as ex:
        wait([ex.submit(floor.run_exe, d) if k == "exe" else ex.submit(sleep_for, d) for k, c, d in floor.warm_up_set(2)])
        t0 = time.monotonic()
        fs = [ex.submit(floor.run_exe, d) if k == "exe" else ex.submit(stamped, d) for k, c, d in tasks]
        t1 = time.monotonic()
        wait(fs)
        starts = sorted(f.result() - t0 for (k, _, _), f in zip(tasks, fs) if k != "exe")[:2]
    res["pool_submit_ms"].append((t1 - t0) * 1e3); res["pool_first2"].append([round(s * 1e3, 2) for s in starts])
print({k: [round(x, 2) if isinstance(x, float) else x for x in v] for k, v in res.items()})
