import tempfile, time, os, statistics, sys
from concurrent.futures import wait
import steerflow as sf
from steerflow.task import Function, Executable
from steerflow.bench.floor import mixed_set, warm_up_set, list_schedule_makespan
from steerflow.bench.runtime import sleep_for

def stamp2(d):
    t0 = time.time(); time.sleep(d); return (t0, time.time(), d)

seed = int(sys.argv[1])
tasks = mixed_set(seed=seed)
ideal = list_schedule_makespan([(c, d) for _, c, d in tasks], 2)
for rnd in range(3):
    with sf.Runtime(sf.Allocation.declare(nodes=1, cores=2), run_dir=tempfile.mkdtemp(), max_bypass=None) as rt:
        wait([rt.submit(Executable(["sleep", str(d)]) if k == "exe" else Function(sleep_for, (d,), cores=c)) for k, c, d in warm_up_set(2)])
        ends = {}
        t0 = time.perf_counter(); w0 = time.time()
        fs = []
        for k, c, d in tasks:
            f = rt.submit(Executable(["sleep", str(d)]) if k == "exe" else Function(stamp2 if c == 2 else sleep_for, (d,), cores=c))
            if c == 1:
                f.add_done_callback(lambda f: ends.__setitem__(id(f), time.time()))
            fs.append((c, f))
        wait([f for _, f in fs])
        T = time.perf_counter() - t0
    last1 = max(ends.values()) - w0
    wide = sorted(f.result() for c, f in fs if c == 2)
    tail = [x for x in wide if x[0] - w0 >= last1 - 0.005]
    gaps = [b[0] - a[1] for a, b in zip(tail, tail[1:])]
    over = [e - s - d for s, e, d in tail]
    print(f"seed {seed} round {rnd}: eff {100*ideal/T:.2f}%  makespan {T:.3f} ideal {ideal:.3f}  tail tasks {len(tail)}/{len(wide)}"
          f"  hand-over between tail tasks: sum {1e3*sum(gaps):.1f} ms (median {1e3*statistics.median(gaps):.2f})"
          f"  sleep overrun: sum {1e3*sum(over):.1f} ms  first tail start - last 1-core end {1e3*(tail[0][0]-w0-last1):.1f} ms"
          f"  load {os.getloadavg()[0]:.1f}", flush=True)
