"""Scheduler throughput: placement decisions per second in the steady state of a full machine.

The machine (default 10,000 declared nodes of 32 cores and 4 GPUs) is first filled; then the
loop releases one random placed request, submits a new one and calls ``schedule()``, until
``decisions`` placements were made. The mix: mostly 1-core tasks, some 4-core + 1-GPU tasks,
a few 2-core tasks, and a few multi-node MPI tasks (32-96 one-core ranks, spread over nodes),
with a small share of higher-priority work, so backfill and reservations happen too.

    steerflow bench scheduler --json out.json   (or: python -m steerflow.bench.scheduler --nodes N ...)

`run` (the CLI's rows, and the placements rows of ``steerflow bench runtime``) measures each row in
a new interpreter (`in_new_interpreter`): the scheduler alone, not beside whatever heap earlier
benchmarks of the same process left (~10^6 live objects there made the same code ~10 % slower).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..resources import Allocation
from ..scheduler import Request, Scheduler

TARGET = 100_000


def _shapes(rng: random.Random, n: int) -> list[tuple[int, int, int, int, str]]:
    """(ranks, cores_per_rank, gpus_per_rank, priority, pool) for n requests."""
    out = []
    for _ in range(n):
        x = rng.random()
        priority = 1 if rng.random() < 0.05 else 0
        if x < 0.80:
            out.append((1, 1, 0, priority, "simulate"))
        elif x < 0.95:
            out.append((1, 4, 1, priority, "train"))
        elif x < 0.995:
            out.append((1, 2, 0, priority, "simulate"))
        else:
            out.append((rng.randint(32, 96), 1, 0, priority, "mpi"))
    return out


def placements_per_second(nodes: int = 10_000, cores: int = 32, gpus: int = 4, decisions: int = 200_000,
                          seed: int = 2024, batch: int = 1) -> dict:
    """Steady-state placement rate; returns a dict with ``placements_per_s`` and context.

    ``batch``: how many tasks end (each released, and a new request submitted) between two
    passes of ``schedule()``. 1 is the strictest case, one pass per ended task; a runtime's
    loop thread releases every task that ended since its last pass, then makes one pass.
    The collector is set as a driver sets it (`steerflow.runtime.tune_gc`); the result says so.
    """
    if batch < 1:
        raise ValueError(f"batch={batch} must be at least 1 (tasks ended between two passes).")
    from ..runtime import tune_gc

    tune_gc()
    rng = random.Random(seed)
    alloc = Allocation.declare(nodes=nodes, cores=cores, gpus=gpus)
    sched = Scheduler(alloc)
    shapes = _shapes(rng, decisions + nodes * cores + 1000)
    next_id = 0
    running: list[int] = []

    def submit() -> None:
        nonlocal next_id
        ranks, c, g, prio, pool = shapes[next_id % len(shapes)]
        sched.submit(Request(next_id, ranks, c, g, 0, None, prio, pool))
        next_id += 1

    # ---- fill the machine ---------------------------------------------------------------------
    t0 = time.perf_counter()
    while True:
        for _ in range(1000):
            submit()
        placed = sched.schedule()
        running.extend(p.request.id for p in placed)
        if sched.n_waiting:
            break
    fill_s = time.perf_counter() - t0
    fill_placements = len(running)

    # ---- steady state: ``batch`` times one release and one submit, then one schedule -----------
    rand = rng.random  # (randrange is Python code in random.py, ~5 % of this loop; this is one C call)
    schedule = sched.schedule
    release = sched.release
    submit_ = sched.submit
    n_shapes = len(shapes)
    made = 0
    loops = 0
    max_waiting = 0
    gc_time = [0.0, 0.0]  # seconds spent in the garbage collector during the loop

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            gc_time[1] = time.perf_counter()
        else:
            gc_time[0] += time.perf_counter() - gc_time[1]

    gc.callbacks.append(on_gc)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    while made < decisions:
        for _ in range(batch):
            j = int(rand() * len(running))
            last = running.pop()
            if j < len(running):
                victim = running[j]
                running[j] = last
            else:
                victim = last
            release(victim)
            ranks, c, g, prio, pool = shapes[next_id % n_shapes]  # what submit() does, without its call
            submit_(Request(next_id, ranks, c, g, 0, None, prio, pool))
            next_id += 1
        for p in schedule():
            running.append(p.request.id)
            made += 1
        loops += 1
        if loops & 1023 == 0 and sched.n_waiting > max_waiting:
            max_waiting = sched.n_waiting
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    gc.callbacks.remove(on_gc)
    busy = 1 - sched.free_cores() / alloc.total_cores
    return {
        "nodes": nodes, "cores_per_node": cores, "gpus_per_node": gpus, "seed": seed, "batch": batch,
        "placements": made, "loops": loops, "elapsed_s": round(elapsed, 4),
        "placements_per_s": round(made / elapsed),
        "us_per_placement": round(elapsed / made * 1e6, 3),
        # per second of this process's CPU: what the rate would be on a core of its own (the shared machine's
        # load slows the wall-clock figure down; compare this one across runs)
        "placements_per_cpu_s": round(made / cpu) if cpu > 0 else 0,
        "gc_share": round(gc_time[0] / elapsed, 3), "gc_threshold0": gc.get_threshold()[0],
        "fill_placements": fill_placements, "fill_placements_per_s": round(fill_placements / fill_s),
        "running_at_end": sched.n_placed, "waiting_at_end": sched.n_waiting, "max_waiting": max_waiting,
        "core_utilisation_at_end": round(busy, 4),
    }


def in_new_interpreter(nodes: int = 10_000, batch: int = 1, decisions: int = 200_000, timeout_s: float = 900) -> dict:
    """`placements_per_second` run by a new Python process (this interpreter, this package); its result."""
    # (this package importable there as here, also from a checkout that is not installed)
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
    with tempfile.TemporaryDirectory(prefix="steerflow-bench-") as tmp:
        out = Path(tmp) / "placements.json"
        subprocess.run([sys.executable, "-m", __name__, "--nodes", str(nodes), "--batch", str(batch),
                        "--decisions", str(decisions), "--json", str(out)],
                       check=True, stdout=subprocess.DEVNULL, timeout=timeout_s, env=env)
        return json.loads(out.read_text())


#: the rates taken as a median over a row's repeats (the rest of a row is the median run's context)
MEDIAN_KEYS = ("placements_per_s", "placements_per_cpu_s", "us_per_placement", "gc_share")
REPEAT = 5  # short runs per row
DECISIONS = 60_000  # steady-state decisions per run (after the fill)


def median_row(runs: list[dict]) -> dict:
    """One row from several runs of `placements_per_second`: each rate the median over the runs, and the context
    (fill, loops, queue lengths) of the run whose rate is the median; ``placements_per_s_runs``: every run's rate."""
    import statistics

    rates = sorted(runs, key=lambda r: r["placements_per_s"])
    row = dict(rates[(len(rates) - 1) // 2])
    for key in MEDIAN_KEYS:
        row[key] = statistics.median(r[key] for r in runs)
    row["placements_per_s_runs"] = [r["placements_per_s"] for r in runs]
    row["placements_per_cpu_s_runs"] = [r["placements_per_cpu_s"] for r in runs]
    row["repeat"] = len(runs)
    return row


def run(nodes: int = 10_000, decisions: int = DECISIONS, repeat: int = REPEAT) -> dict:
    """The rows of ``steerflow bench scheduler``: one pass per ended task (batch 1, the strictest case), and
    16 ended tasks a pass (``*_batch16``: what a runtime's loop does under load).

    Each row is the median of ``repeat`` short runs (``decisions`` steady-state decisions each), each in a new
    interpreter, batch 1 and batch 16 taking turns: a run slowed by a burst of load elsewhere on the machine
    does not decide the row (one 200,000-decision run did until session 7). Every run makes the same decisions
    (same seed), so the runs differ only by what the machine did meanwhile.
    """
    if repeat < 1:
        raise ValueError(f"repeat={repeat}: give at least 1 run per row.")
    ones: list[dict] = []
    sixteens: list[dict] = []
    for _ in range(repeat):
        ones.append(in_new_interpreter(nodes=nodes, batch=1, decisions=decisions))
        sixteens.append(in_new_interpreter(nodes=nodes, batch=16, decisions=decisions))
    result = median_row(ones)
    batch16 = median_row(sixteens)
    for key in (*MEDIAN_KEYS, "loops", "placements_per_s_runs"):
        result[f"{key}_batch16"] = batch16[key]
    return result


TARGETS = {"placements_per_s": (">=", TARGET), "placements_per_cpu_s": (">=", TARGET),
           "placements_per_s_batch16": (">=", TARGET), "placements_per_cpu_s_batch16": (">=", TARGET)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--cores", type=int, default=32)
    parser.add_argument("--gpus", type=int, default=4)
    parser.add_argument("--decisions", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--batch", type=int, default=1,
                        help="tasks that end (released, and a new request submitted) between two passes; default 1")
    parser.add_argument("--json", type=Path, help="write the result here as JSON")
    args = parser.parse_args(argv)
    result = placements_per_second(args.nodes, args.cores, args.gpus, args.decisions, args.seed, args.batch)
    print(f"steerflow scheduler benchmark ({args.nodes} nodes x {args.cores} cores, {args.gpus} GPUs)")
    print_rows(result, args.json, checked=("placements_per_s", "placements_per_cpu_s"))
    return 0


def print_rows(result: dict, json_path: Path | None = None, checked: tuple[str, ...] = ()) -> None:
    """A plain table, a row a key (this module's, and benchmarks/bench_scheduler_instructions.py's): the keys in
    ``checked`` marked against `TARGET`; with ``json_path``, the result written there as JSON too."""
    width = max(map(len, result))
    for key, value in result.items():
        mark = ""
        if key in checked:
            mark = "  ok" if value >= TARGET else f"  BELOW TARGET {TARGET}"
        print(f"  {key:<{width}}  {value!s:>14}{mark}")
    if json_path:
        json_path.write_text(json.dumps(result, indent=2))
        print(f"wrote {json_path}")


if __name__ == "__main__":
    raise SystemExit(main())
