import tempfile, time, statistics, os
from concurrent.futures import wait
import steerflow as sf
from steerflow.task import Function
from steerflow.bench.runtime import sleep_for
from steerflow.bench.floor import warm_up_set
def run(cores_each, n=30, d=0.03, pipeline=None):
    if pipeline is not None: os.environ["STEERFLOW_PIPELINE"] = pipeline
    with sf.Runtime(sf.Allocation.declare(nodes=1, cores=2), run_dir=tempfile.mkdtemp(), max_bypass=None) as rt:
        wait([rt.submit(Function(sleep_for, (x,), cores=c)) for _, c, x in warm_up_set(2)])
        t0 = time.perf_counter()
        wait([rt.submit(Function(sleep_for, (d,), cores=cores_each)) for _ in range(n)])
        el = time.perf_counter() - t0
    os.environ.pop("STEERFLOW_PIPELINE", None)
    ideal = n * d if cores_each == 2 else n * d / 2
    return (el - ideal) / (n if cores_each == 2 else n / 2) * 1e3  # ms lost per transition (per core chain)
for r in range(3):
    print("2-core back to back: %.3f ms/transition" % run(2), " 1-core, 2 chains: %.3f ms/transition" % run(1),
          " 2-core, pipelining off: %.3f" % run(2, pipeline="0"), "load", os.getloadavg()[0], flush=True)
