"""A/B: the Dask engine's throughput of n no-op tasks (BenchCluster of 3 workers), rounds in one cluster;
also CPU per task: the driver process, and every descendant (nannies, Dask workers, warm workers)."""
import json, logging, os, statistics, sys, tempfile, time
import psutil
import steerflow
from steerflow.bench.dask_rows import BenchCluster
from steerflow.bench.runtime import noop

label, n, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
logging.getLogger("distributed").setLevel(logging.CRITICAL)
me = psutil.Process()


def cpu_tree():
    total = 0.0
    for p in me.children(recursive=True):
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


out, drv, tree = [], [], []
with BenchCluster(3) as cluster:
    rt = cluster.runtime(tempfile.mkdtemp(prefix="13j-ab-"))
    with rt:
        for _ in range(300):
            rt.submit(noop).result()
        for _ in range(rounds):
            c0, k0 = time.process_time(), cpu_tree()
            t0 = time.perf_counter()
            fs = [rt.submit(noop) for _ in range(n)]
            for f in fs:
                f.result()
            out.append(n / (time.perf_counter() - t0))
            drv.append((time.process_time() - c0) / n * 1e6)
            tree.append((cpu_tree() - k0) / n * 1e6)
print(json.dumps({"label": label, "file": steerflow.__file__, "rates": [round(x) for x in out],
                  "median": statistics.median(out[1:]), "drv_us": statistics.median(drv[1:]),
                  "tree_us": statistics.median(tree[1:]),
                  "load": os.getloadavg()[0], "t": time.strftime("%H:%M:%S")}), flush=True)
