"""Where a pipelined hand-over's time goes, from the worker's own clock: (reply written) -> (next message
received) -> (next function started). KIND: fn1 or fn2; N tasks of S seconds."""
import statistics, sys, tempfile, time
from concurrent.futures import wait
import steerflow as sf
from steerflow.bench.runtime import sleep_for
from steerflow.engines import pool as P
from steerflow.task import Function

kind, n, d = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
seen = []
orig = P.WarmPool._on_reply
def spy(self, worker, reply, events):
    if len(reply) > 4 and reply[4]:
        seen.append((worker.proc.pid, reply[0], reply[4]))
    return orig(self, worker, reply, events)
P.WarmPool._on_reply = spy
with sf.Runtime(sf.Allocation.declare(nodes=1, cores=2), run_dir=tempfile.mkdtemp(), max_bypass=None) as rt:
    c = 2 if kind == "fn2" else 1
    wait([rt.submit(Function(sleep_for, (0.05,), cores=c)) for _ in range(2)])
    seen.clear()
    t0 = time.time()
    wait([rt.submit(Function(sleep_for, (d,), cores=c)) for _ in range(n)])
    wall = time.time() - t0
by = {}
for pid, tid, t in seen:
    by.setdefault(pid, []).append(t)
a, b, c_, e = [], [], [], []
for pid, ts in by.items():
    ts.sort(key=lambda t: t[1])
    for prev, nxt in zip(ts, ts[1:]):
        a.append(prev[3] - prev[2])  # function returned -> reply serialised
        b.append(nxt[0] - prev[3])   # reply serialised -> next message taken
        c_.append(nxt[1] - nxt[0])   # message taken -> function started
        e.append(nxt[1] - prev[2])   # function end -> next function start
f = lambda v: "p50 %.3f mean %.3f" % (statistics.median(v) * 1e3, statistics.mean(v) * 1e3)
print(kind, "wall %.1f ms" % (wall * 1e3), "| ret->ser", f(a), "| ser->recv", f(b), "| recv->start", f(c_), "| end->start", f(e))
