"""`steerflow bench steering`: the campaign runtime's costs with the journal on.

- steer_rtt: a result arrives, an agent decides and submits the next task, its result arrives
  (a chain of no-op tasks; one link = one steering decision + one task round trip);
- journal_us_per_task: the journal writer's busy time per task over thousands of tasks;
- data_10mb_ms: a 10 MB array to a task and its sum back, through the runtime;
- resume_s_10k_tasks: a campaign with 10,000 finished tasks, resumed (journal read, replay to agents).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .runtime import noop


def array_sum(a: Any) -> float:
    return float(a.sum())


def _campaign(directory: Path, resume: bool = False):
    from ..campaign import Campaign
    from ..resources import Allocation

    return Campaign(directory, allocation=Allocation.declare(nodes=1, cores=2), resume=resume, progress=False)


def steer_rtt(links: int = 300) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="steerflow-bench-"))
    try:
        camp = _campaign(tmp / "c")
        arrivals: list[float] = []

        @camp.on_result()
        def chain(result: Any, ctx: Any) -> None:
            arrivals.append(camp.runtime.task(result.key).ended)
            if len(arrivals) < links:
                ctx.submit(noop)

        camp.submit(noop)
        camp.run()
        rtts = np.diff(arrivals[20:]) * 1e3  # skip warm-up
        return {"steer_rtt_p50_ms": float(np.percentile(rtts, 50)), "steer_rtt_p99_ms": float(np.percentile(rtts, 99))}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def journal_cost(n: int = 5000) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="steerflow-bench-"))
    try:
        camp = _campaign(tmp / "c")
        t0 = time.perf_counter()
        for _ in range(n):
            camp.submit(noop)
        camp.run()
        elapsed = time.perf_counter() - t0
        journal = camp.journal
        return {"journal_us_per_task": journal.busy_s / n * 1e6, "journal_rows_per_task": journal.rows / n,
                "campaign_throughput_tasks_per_s": n / elapsed}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def data_roundtrip(size_mb: int = 10, repeats: int = 20) -> dict[str, float]:
    from ..resources import Allocation
    from ..runtime import Runtime

    tmp = tempfile.mkdtemp(prefix="steerflow-bench-")
    array = np.random.default_rng(0).random(size_mb * 2**20 // 8)
    times = []
    with Runtime(Allocation.declare(nodes=1, cores=2), run_dir=tmp) as rt:
        rt.submit(noop).result()
        for _ in range(repeats):
            t0 = time.perf_counter()
            value = rt.submit(array_sum, array).result()
            times.append((time.perf_counter() - t0) * 1e3)
            assert abs(value - array.sum()) < 1e-6 * abs(value)
    shutil.rmtree(tmp, ignore_errors=True)
    return {f"data_{size_mb}mb_ms": statistics.median(times)}


def resume_time(n: int = 10_000) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="steerflow-bench-"))
    try:
        camp = _campaign(tmp / "c")
        seen = []
        camp.on_result()(lambda result, ctx: seen.append(result.key))
        for _ in range(n):
            camp.submit(noop)
        camp.run()
        t0 = time.perf_counter()
        camp = _campaign(tmp / "c", resume=True)
        replayed: list[int] = []
        camp.on_result()(lambda result, ctx: replayed.append(result.key))
        for _ in range(n):
            camp.submit(noop)
        camp.run()
        elapsed = time.perf_counter() - t0
        assert len(replayed) == n and replayed == seen, "resume did not replay every result in order"
        return {"resume_s_10k_tasks" if n == 10_000 else f"resume_s_{n}_tasks": elapsed}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(repeat: int = 3) -> dict[str, float]:
    parts = [steer_rtt, journal_cost, data_roundtrip, resume_time]
    result: dict[str, float] = {}
    for part in parts:
        runs = [part() for _ in range(repeat)]
        for key in runs[0]:
            result[key] = statistics.median(r[key] for r in runs)
    result["repeat"] = repeat
    return result


TARGETS = {"steer_rtt_p50_ms": ("<=", 1.0), "journal_us_per_task": ("<=", 50.0), "data_10mb_ms": ("<=", 5.0),
           "resume_s_10k_tasks": ("<=", 2.0)}
