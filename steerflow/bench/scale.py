"""`steerflow bench scale`: memory and throughput stay flat over a million tasks.

Each part runs in a fresh process, so its peak RSS (``ru_maxrss``) is its own:

- runtime: a bare `Runtime`, no-op tasks submitted in batches whose futures are dropped;
  RSS growth from the end of the first batch to the end, and throughput of the last 100,000
  tasks against the first 100,000;
- campaign: a journaled `Campaign` whose agent submits tiny tasks in waves as results come
  back; peak driver RSS and the same throughput ratio;
- resume: the finished campaign's journal resumed by the same script (nothing runs again:
  every result comes from the journal and is replayed to the agent); its wall time and peak RSS.

``--tasks`` makes it small for a smoke test; the targets are for 1,000,000.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import wait
from pathlib import Path
from typing import Any

TARGETS = {
    "runtime_rss_growth_mb": ("<=", 100),
    "runtime_end_vs_start_throughput": (">=", 0.9),
    "runtime_end_vs_start_cpu_throughput": (">=", 0.9),  # the same, per CPU-second of the driver (load-robust)
    "campaign_peak_rss_mb": ("<=", 400),
    "campaign_end_vs_start_throughput": (">=", 0.9),
    "campaign_end_vs_start_cpu_throughput": (">=", 0.9),
    "resume_s": ("<=", 30),
    "resume_cpu_us_per_task": ("<=", 30),  # 30 s for 1,000,000: the same target, robust to a shared machine's load
}


def noop() -> None:
    return None


def tiny(i: int) -> int:
    return i


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rates(stamps: list[float], window: int) -> tuple[float, float]:
    """Tasks per second over the first and the last ``window`` tasks, from the time each result arrived."""
    window = max(1, min(window, len(stamps) // 2))
    first = window / max(1e-9, stamps[window - 1] - stamps[0]) if len(stamps) > 1 else 0.0
    last = window / max(1e-9, stamps[-1] - stamps[-window])
    return first, last


def runtime_part(tasks: int, batch: int = 10_000) -> dict[str, float]:
    from ..resources import Allocation
    from ..runtime import Runtime

    run_dir = tempfile.mkdtemp(prefix="steerflow-scale-")
    rt = Runtime(Allocation.declare(nodes=1, cores=2), run_dir=run_dir)
    stamps: list[float] = []  # the time every `step`-th task's batch ended
    cpu_stamps: list[float] = []  # the driver's CPU time then (all its threads): per-task cost, whatever the load
    step = max(1, min(batch, tasks))
    try:
        rss_first = 0.0
        done = 0
        t0, cpu0 = time.perf_counter(), time.process_time()
        while done < tasks:
            n = min(step, tasks - done)
            futures = [rt.submit(noop) for _ in range(n)]
            wait(futures)
            del futures
            done += n
            stamps.append(time.perf_counter())
            cpu_stamps.append(time.process_time())
            if not rss_first:
                rss_first = rss_mb()
        elapsed = time.perf_counter() - t0
        rss_end = rss_mb()
    finally:
        rt.shutdown(wait=True, kill=True)
        shutil.rmtree(run_dir, ignore_errors=True)
    window = max(1, min(100_000, tasks // 10) // step)
    first = window * step / (stamps[window - 1] - t0)
    last = window * step / (stamps[-1] - stamps[-window - 1]) if len(stamps) > window else first
    cpu_first = (cpu_stamps[window - 1] - cpu0) / (window * step)
    cpu_last = (cpu_stamps[-1] - cpu_stamps[-window - 1]) / (window * step) if len(stamps) > window else cpu_first
    return {"runtime_tasks": tasks, "runtime_rss_after_first_batch_mb": rss_first, "runtime_rss_end_mb": rss_end,
            "runtime_rss_growth_mb": rss_end - rss_first, "runtime_tasks_per_s": tasks / elapsed,
            "runtime_first_tasks_per_s": first, "runtime_last_tasks_per_s": last,
            "runtime_end_vs_start_throughput": last / first, "runtime_peak_rss_mb": peak_rss_mb(),
            "runtime_first_cpu_us_per_task": 1e6 * cpu_first, "runtime_last_cpu_us_per_task": 1e6 * cpu_last,
            "runtime_end_vs_start_cpu_throughput": cpu_first / cpu_last if cpu_last else 0.0}


def campaign_part(directory: str, tasks: int, wave: int = 5_000, resume: bool = False) -> dict[str, float]:
    """The agent keeps two waves in flight: each time a wave's worth of results arrived, it submits the next."""
    from ..campaign import Campaign
    from ..resources import Allocation

    t0, cpu0 = time.perf_counter(), time.process_time()
    camp = Campaign(directory, allocation=Allocation.declare(nodes=1, cores=2), resume=resume, progress=False)
    wave = max(1, min(wave, tasks))
    state = {"submitted": 0, "seen": 0}
    stamps: list[float] = []
    cpu_stamps: list[float] = []
    every = max(1, min(1000, tasks // 100))

    def submit_wave(ctx: Any) -> None:
        n = min(wave, tasks - state["submitted"])
        for i in range(state["submitted"], state["submitted"] + n):
            ctx.submit(tiny, i)
        state["submitted"] += n

    @camp.on_start
    def start(ctx: Any) -> None:
        submit_wave(ctx)
        submit_wave(ctx)

    @camp.on_result()
    def on_result(result: Any, ctx: Any) -> None:
        state["seen"] += 1
        if state["seen"] % every == 0:
            stamps.append(time.perf_counter())
            cpu_stamps.append(time.process_time())
        if state["seen"] % wave == 0:
            submit_wave(ctx)

    summary = camp.run()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    prefix = "resume" if resume else "campaign"
    # CPU time (all the driver's threads) as well as wall: on a shared machine it is the load-independent number
    out = {f"{prefix}_s": elapsed, f"{prefix}_cpu_s": cpu, f"{prefix}_peak_rss_mb": peak_rss_mb(),
           f"{prefix}_results": state["seen"], f"{prefix}_tasks_per_s": state["seen"] / elapsed,
           f"{prefix}_cpu_us_per_task": 1e6 * cpu / max(1, state["seen"])}
    if not resume:
        first, last = _rates(stamps, max(1, min(100_000, tasks // 10) // every))
        cpu_first, cpu_last = _rates(cpu_stamps, max(1, min(100_000, tasks // 10) // every))
        out.update({"campaign_end_vs_start_cpu_throughput": cpu_last / cpu_first if cpu_first else 0.0,
                    "campaign_first_cpu_us_per_task": 1e6 / (cpu_first * every) if cpu_first else 0.0,
                    "campaign_last_cpu_us_per_task": 1e6 / (cpu_last * every) if cpu_last else 0.0})
        out.update({"campaign_first_tasks_per_s": first * every, "campaign_last_tasks_per_s": last * every,
                    "campaign_end_vs_start_throughput": last / first if first else 0.0,
                    "campaign_done": summary["states"].get("done", 0)})
    return out


def _in_child(args: list[str]) -> dict[str, float]:
    """Run one part in a fresh interpreter (its own peak RSS) and return what it printed as JSON."""
    proc = subprocess.run([sys.executable, "-m", "steerflow.bench.scale", *args], capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"bench scale {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1])


def run(tasks: int = 1_000_000, parts: tuple[str, ...] = ("runtime", "campaign")) -> dict[str, float]:
    result: dict[str, float] = {"tasks": tasks}
    if "runtime" in parts:
        result.update(_in_child(["runtime", str(tasks)]))
    if "campaign" in parts:
        tmp = Path(tempfile.mkdtemp(prefix="steerflow-scale-"))
        try:
            result.update(_in_child(["campaign", str(tmp / "c"), str(tasks)]))
            result.update(_in_child(["resume", str(tmp / "c"), str(tasks)]))
            result["journal_mb"] = (tmp / "c" / "journal.db").stat().st_size / 2**20
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return result


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "runtime":
        print(json.dumps(runtime_part(int(sys.argv[2]))))
    else:
        print(json.dumps(campaign_part(sys.argv[2], int(sys.argv[3]), resume=what == "resume")))
