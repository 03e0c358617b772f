"""Zero-overhead simulation of the mixed set on 2 cores with the real Scheduler: list scheduling (no pipelining)
vs pipelining's release-ahead (next task committed behind the oldest running one). Idle core-ms at zero overhead."""
import heapq, sys, os
sys.path.insert(0, os.getcwd())
import numpy as np
from steerflow.bench.floor import mixed_set
from steerflow.resources import Allocation
from steerflow.scheduler import Scheduler, Request

MB = 64
def run(tasks, pipeline, noise=None, gate=None, steal=False, nowide=False, youngest=False):
    sch = Scheduler(Allocation.declare(nodes=1, cores=2), max_bypass=MB)
    for i, (c, _) in enumerate(tasks): sch.submit(Request(i, 1, c))
    d = [t[1] + (noise[i] if noise is not None else 0) for i, t in enumerate(tasks)]
    now = 0.0
    core_run = {0: None, 1: None}   # core -> (task, end)
    core_q = {0: None, 1: None}     # core -> queued 1-core task
    released = set(); held = []; holds = {}     # held: placements on cores still busy (waiting for them)
    started_order = []; events = []; k = 0
    def cores_of(p): return list(p.slots[0].cores)
    started_ids = set()
    def start(i, cores):
        nonlocal k
        started_ids.add(i)
        for c in cores: core_run[c] = (i, now + d[i])
        k += 1; heapq.heappush(events, (now + d[i], k, i, tuple(cores)))
    def place_all():
        for p in sch.schedule():
            i = p.request.id; cs = cores_of(p)
            if all(core_run[c] is None for c in cs): start(i, cs)
            elif len(cs) == 1 and core_q[cs[0]] is None and core_run[cs[0]] is not None: core_q[cs[0]] = i
            else: held.append((i, cs))
    def release_ahead():
        while pipeline and sch.n_waiting and not sch.free_cores():
            if nowide and any(cls.queue and cls.need_c > 1 and cls.bypass >= sch.max_bypass - nowide for cls in sch._classes.values()): break
            cand = [(v[1] - d[v[0]], v[0]) for c, v in core_run.items() if v is not None and v[0] not in released and tasks[v[0]][0] == 1 and core_q[c] is None]
            if not cand: break
            _, i = (max(cand) if youngest else min(cand))
            released.add(i); sch.release(i); place_all()
    def waiting_wide():
        done = set(x for x in started_ids)
        return [j for j in range(len(tasks)) if j not in done and j not in qset() and j not in [h[0] for h in held]][:1]
    def qset(): return set(v for v in core_q.values() if v is not None)
    place_all(); release_ahead()
    idle = 0.0; busy_until = {0: 0.0, 1: 0.0}
    while events:
        now, _, i, cs = heapq.heappop(events)
        for c in cs: core_run[c] = None
        if i not in released: sch.release(i)
        if i in holds: sch.release(holds.pop(i))
        for c in cs:
            if core_q[c] is not None:
                j = core_q[c]; core_q[c] = None; start(j, [c])
        for h in list(held):
            j, hc = h
            if all(core_run[c] is None for c in hc): held.remove(h); start(j, hc)
        place_all()
        if steal:
            for c in (0, 1):
                o = 1 - c
                if core_run[c] is None and not any(c in h[1] for h in held) and core_q[o] is not None and core_run[o] is not None:
                    j = core_q[o]; core_q[o] = None; owner = core_run[o][0]
                    sch.rename(j, -(owner + 1)); holds[owner] = -(owner + 1)
                    sch.submit(Request(j, 1, 1)); place_all()
        release_ahead()
    return now



import statistics
for MB in (None, 64):
    rows = []
    for seed in range(7, 13):
        t = [(c, dd) for _, c, dd in mixed_set(seed=seed)]
        work = sum(c * dd for c, dd in t)
        nz = np.random.default_rng(seed).uniform(0, 1e-4, size=len(t))
        lst = run(t, False, nz); pip = run(t, True, nz, steal=True)
        rows.append((seed, round((2*lst - work)*1e3), round((2*pip - work)*1e3), round(100*(1 - lst/pip), 2)))
    print("max_bypass", MB, "(seed, idle core-ms list, idle core-ms pipelined+steal, pipelining's cost in points):", rows,
          "median pts", statistics.median(r[3] for r in rows))
