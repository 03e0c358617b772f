"""A per-task timeline of one mixed-set list, steerflow (greedy policy) and ProcessPoolExecutor in turns.

    .venv/bin/python benchmarks/mixed_timeline.py [SEED] [ROUNDS] [--json OUT]

Needs ``perf`` with tracepoint access (sched:sched_process_{fork,exec,exit}, clock CLOCK_MONOTONIC): an
executable's start is its ``exec`` of ``sleep``, its end its exit; a function stamps its own start and end
(``time.monotonic``, the same function on both sides, returning its worker's pid). A "lane" is a core for
steerflow (a 2-core function holds both) and a worker process for the pool. Per lane: the idle time between
one task's end and the next one's start (hand-overs), from the timed start to the first task, and from the
last task to the end of the wall; split by the kinds on each side of a hand-over.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, wait

from steerflow.bench import floor


def stamped(seconds: float) -> tuple[float, float, int, tuple]:
    t = time.monotonic()
    time.sleep(seconds)
    return t, time.monotonic(), os.getpid(), tuple(sorted(os.sched_getaffinity(0)))


def pool_exe(seconds: float) -> int:
    return subprocess.run(["sleep", str(seconds)], check=True).returncode


class Perf:
    def __init__(self) -> None:
        self.path = tempfile.mktemp(prefix="13i-perf-")
        self.proc = subprocess.Popen(["perf", "record", "-q", "-k", "mono", "-a", "-o", self.path, "-e",
                                      "sched:sched_process_fork,sched:sched_process_exec,sched:sched_process_exit"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # (perf's set-up)

    def events(self) -> list[tuple[str, float, dict]]:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(30)
        text = subprocess.run(["perf", "script", "-i", self.path, "-F", "time,event,trace"], capture_output=True,
                              text=True).stdout
        os.unlink(self.path)
        out = []
        for line in text.splitlines():
            parts = line.split()
            if len(parts) < 3:
                continue
            t = float(parts[0].rstrip(":"))
            ev = parts[1].rstrip(":").split(":")[-1]
            fields = dict(p.split("=", 1) for p in parts[2:] if "=" in p)
            out.append((ev, t, fields))
        return out


def exe_intervals(events: list, workers: set[int]) -> list[tuple[float, float, int]]:
    """(exec, exit, parent worker pid) of every ``sleep`` a worker started."""
    parent: dict[int, int] = {}
    start: dict[int, float] = {}
    out = []
    for ev, t, f in events:
        if ev == "sched_process_fork":
            parent[int(f["child_pid"])] = int(f["pid"])
        elif ev == "sched_process_exec" and f.get("filename", "").endswith("/sleep"):
            start[int(f["pid"])] = t
        elif ev == "sched_process_exit" and int(f["pid"]) in start:
            pid = int(f["pid"])
            p = parent.get(pid, -1)
            while p not in workers and p in parent:  # (through a launcher or guard, if any)
                p = parent[p]
            out.append((start.pop(pid), t, p))
    return out


def run_arm(arm: str, tasks: list, warm: list) -> dict:
    fn_results: list = []
    perf = None
    if arm == "sf":
        import steerflow as sf
        from steerflow.task import Executable, Function
        tmp = tempfile.mkdtemp(prefix="13i-tl-")
        with sf.Runtime(sf.Allocation.declare(nodes=1, cores=2), run_dir=tmp, max_bypass=None) as rt:
            def submit(batch):
                return [rt.submit(Executable(["sleep", str(d)]) if k == "exe" else Function(stamped, (d,), cores=c))
                        for k, c, d in batch]
            warm_f = submit(warm)
            wait(warm_f)
            lanes_f = submit([("fn1", 1, 0.05)] * 2)  # (the 1-core workers' pids and bindings)
            wait(lanes_f)
            perf = Perf()
            t0 = time.monotonic()
            fs = submit(tasks)
            wait(fs)
            t1 = time.monotonic()
            fn_results = [(k, c, f.result()) for (k, c, _), f in zip(tasks, fs) if k != "exe"]
    else:
        with ProcessPoolExecutor(2) as ex:
            def submit(batch):
                return [ex.submit(pool_exe, d) if k == "exe" else ex.submit(stamped, d) for k, c, d in batch]
            wait(submit(warm))
            lanes_f = submit([("fn1", 1, 0.05)] * 2)
            wait(lanes_f)
            perf = Perf()
            t0 = time.monotonic()
            fs = submit(tasks)
            wait(fs)
            t1 = time.monotonic()
            fn_results = [(k, c, f.result()) for (k, c, _), f in zip(tasks, fs) if k != "exe"]
    events = perf.events()
    # lanes: steerflow: a core (from a 1-core worker's binding); pool: a worker pid
    worker_lane: dict[int, tuple] = {}
    for k, c, (_, _, pid, cpus) in fn_results + [("fn1", 1, f.result()) for f in lanes_f]:
        if c == 1:
            worker_lane[pid] = cpus if arm == "sf" else (pid,)
    intervals = []  # (start, end, kind, lanes)
    for k, c, (s, e, pid, cpus) in fn_results:
        lanes = cpus if arm == "sf" else (pid,)
        intervals.append((s, e, k, lanes))
    for s, e, p in exe_intervals(events, set(worker_lane)):
        if p in worker_lane:  # (a ``sleep`` of someone else's is not ours)
            intervals.append((s, e, "exe", worker_lane[p]))
    n_exe = sum(1 for k, _, _ in tasks if k == "exe")
    got_exe = sum(1 for i in intervals if i[2] == "exe")
    per_lane: dict = {}
    for s, e, k, lanes in intervals:
        for lane in lanes:
            per_lane.setdefault(lane, []).append((s, e, k))
    gaps: dict[str, list[float]] = {}
    lead, tail = [], []
    for lane, items in per_lane.items():
        items.sort()
        lead.append(items[0][0] - t0)
        tail.append(t1 - items[-1][1])
        for (s0, e0, k0), (s1, e1, k1) in zip(items, items[1:]):
            gaps.setdefault(f"{k0}->{k1}", []).append(s1 - e0)
    busy = sum(e - s for s, e, k, lanes in intervals for _ in lanes)
    dur = {}
    for k, c, d in tasks:
        dur.setdefault(k, []).append(d)
    over: dict[str, list[float]] = {}
    for s, e, k, lanes in intervals:
        over.setdefault(k, []).append(e - s)
    overrun = {k: {"n": len(v), "sum_ms": round((sum(v) - sum(dur[k])) * 1e3, 2),
                   "per_task_ms": round((sum(v) - sum(dur[k])) / len(v) * 1e3, 3)} for k, v in over.items()}
    big = sorted(((round((s1 - e0) * 1e3, 2), k0, k1) for lane, items in per_lane.items()
                  for (s0, e0, k0), (s1, e1, k1) in zip(sorted(items), sorted(items)[1:]) if s1 - e0 > 0.002), reverse=True)
    held = sum(d * c for k, c, d in tasks) if arm == "sf" else sum(d for k, c, d in tasks)
    return {"wall_ms": (t1 - t0) * 1e3, "exe_seen": f"{got_exe}/{n_exe}", "lanes": len(per_lane),
            "busy_core_ms": busy * 1e3, "overrun_core_ms": (busy - held) * 1e3,
            "idle_core_ms": (2 * (t1 - t0) - busy) * 1e3,
            "lead_ms": [round(x * 1e3, 2) for x in lead], "tail_ms": [round(x * 1e3, 2) for x in tail],
            "gaps": {k: {"n": len(v), "sum_ms": round(sum(v) * 1e3, 2), "p50_ms": round(statistics.median(v) * 1e3, 3),
                         "max_ms": round(max(v) * 1e3, 2)} for k, v in sorted(gaps.items())},
            "overrun": overrun, "gaps_over_2ms": big[:12], "gaps_sum_ms": round(sum(sum(v) for v in gaps.values()) * 1e3, 2)}


if __name__ == "__main__":
    seed = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 7
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2].isdigit() else 2
    tasks = floor.mixed_set(120, seed=seed)
    if "--kind" in sys.argv:  # one kind alone: --kind KIND N SECONDS
        i = sys.argv.index("--kind")
        kind, n, d = sys.argv[i + 1], int(sys.argv[i + 2]), float(sys.argv[i + 3])
        tasks = [(kind, 2 if kind == "fn2" else 1, d)] * n
    ideal = floor.list_schedule_makespan([(c, d) for _, c, d in tasks], 2)
    ideal_pool = floor.list_schedule_makespan([(1, d) for _, _, d in tasks], 2)
    warm = floor.warm_up_set(2)
    out = []
    for r in range(rounds):
        for arm in (("sf", "pool") if r % 2 == 0 else ("pool", "sf")):
            res = run_arm(arm, tasks, warm)
            res["arm"] = arm
            res["efficiency_pct"] = 100 * (ideal if arm == "sf" else ideal_pool) / (res["wall_ms"] / 1e3)
            out.append(res)
            print(json.dumps(res), flush=True)
    if "--json" in sys.argv:
        with open(sys.argv[sys.argv.index("--json") + 1], "w") as f:
            json.dump(out, f, indent=1)
