import time, os
from concurrent.futures import ProcessPoolExecutor, wait
from steerflow.bench.runtime import sleep_for
for r in range(3):
    with ProcessPoolExecutor(2) as ex:
        wait([ex.submit(sleep_for, 0.2) for _ in range(2)])
        t0 = time.perf_counter(); wait([ex.submit(sleep_for, 0.03) for _ in range(30)]); el = time.perf_counter() - t0
    print("pool, 1-core, 2 chains: %.3f ms/transition" % ((el - 0.45) / 15 * 1e3), "load", os.getloadavg()[0])
