import statistics, sys, tempfile, time
from concurrent.futures import wait
import steerflow as sf
from steerflow.bench.runtime import sleep_for
from steerflow.engines import pool as P
from steerflow.task import Function
kind = sys.argv[1]; c = 2 if kind == "fn2" else 1
seen = []
orig = P.WarmPool._on_reply
def spy(self, worker, reply, events):
    if len(reply) > 4 and reply[4]: seen.append((worker.proc.pid, reply[4]))
    return orig(self, worker, reply, events)
P.WarmPool._on_reply = spy
with sf.Runtime(sf.Allocation.declare(nodes=1, cores=2), run_dir=tempfile.mkdtemp(), max_bypass=None) as rt:
    wait([rt.submit(Function(sleep_for, (0.05,), cores=c)) for _ in range(2)])
    seen.clear()
    wait([rt.submit(Function(sleep_for, (0.012,), cores=c)) for _ in range(200)])
by = {}
for pid, t in seen: by.setdefault(pid, []).append(t)
A, B, C = [], [], []
for pid, ts in by.items():
    ts.sort(key=lambda t: t[1])
    for prev, nxt in zip(ts, ts[1:]):
        # nxt[4]: before the write of prev's reply; nxt[5]: after it
        A.append(nxt[4] - prev[3]); B.append(nxt[5] - nxt[4]); C.append(nxt[0] - nxt[5])
f = lambda v: "p50 %.3f mean %.3f" % (statistics.median(v) * 1e3, statistics.mean(v) * 1e3)
print(kind, "ser->prewrite", f(A), "| write", f(B), "| postwrite->recv", f(C))
