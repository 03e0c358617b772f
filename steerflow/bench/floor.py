"""The runtime against its floor, as ratios measured in one run (`steerflow bench runtime`).

* round trip of a function defined in the ``__main__`` of the user's script (a script run as
  its own process, once for steerflow and once for ``ProcessPoolExecutor``);
* a campaign with its journal and one agent, against ``ProcessPoolExecutor`` on the same no-ops;
* efficiency on a mixed set: 1- and 2-core functions and executables, each executor against
  the ideal makespan of its own resource model (a zero-overhead list scheduler), on several task
  lists (`mixed_rows`); steerflow under the pool's greedy policy (``max_bypass=None``) and under its
  default anti-starvation policy, whose cost is reported apart.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np

from .runtime import noop, sleep_for

_MAIN_SCRIPT = r'''
import json, sys, time
from concurrent.futures import ProcessPoolExecutor


def noop():  # defined in __main__: pickled by value (steerflow) or found again in the forked child (pool)
    return None


def rtts(submit, n):
    for _ in range(20):
        submit(noop).result()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        submit(noop).result()
        out.append((time.perf_counter() - t) * 1e3)
    out.sort()
    return out[len(out) // 2]


if __name__ == "__main__":
    which, n, workers, run_dir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    if which == "steerflow":
        import steerflow as sf
        with sf.Runtime(sf.Allocation.declare(nodes=1, cores=workers), run_dir=run_dir) as ex:
            print(json.dumps(rtts(ex.submit, n)))
    else:
        with ProcessPoolExecutor(workers) as ex:
            print(json.dumps(rtts(ex.submit, n)))
'''


def main_rtt_p50_ms(workers: int = 2, n: int = 300) -> dict[str, float]:
    """Round trip p50 of a no-op defined in a script's ``__main__``: steerflow and the pool, alternating."""
    tmp = Path(tempfile.mkdtemp(prefix="steerflow-bench-"))
    try:
        script = tmp / "user_script.py"
        script.write_text(_MAIN_SCRIPT)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        out = {}
        for which, key in (("steerflow", "rtt_main_p50_ms"), ("pool", "floor_rtt_main_p50_ms")):
            proc = subprocess.run([sys.executable, str(script), which, str(n), str(workers), str(tmp / "run")],
                                  capture_output=True, text=True, env=env, timeout=300)
            if proc.returncode != 0:
                raise RuntimeError(f"the __main__ round-trip script failed for {which}:\n{proc.stderr[-2000:]}")
            out[key] = float(json.loads(proc.stdout.strip().splitlines()[-1]))
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def campaign_noop_rate(make: Callable[[Path], Any], n: int, prefix: str = "steerflow-bench-",
                       timings: dict[str, float] | None = None) -> float:
    """No-op tasks/s through the campaign ``make(directory)`` builds, with an agent that must see every result.

    Measured as the pool's floor is (`campaign_throughput`): from warm workers (a first task waited for, as the
    pool's first ``result()``) to the moment the agent has the last result (as the pool's ``wait`` returns), so
    neither side's start-up or shutdown counts as throughput. The campaign's close (workers stopped, journal
    committed and closed), which the pool's measure has no counterpart of, goes to ``timings["close_s"]``.
    """
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        camp = make(tmp / "c")
        seen = [0]
        last = [0.0]

        @camp.on_result()
        def count(result: Any, ctx: Any) -> None:
            seen[0] += 1
            last[0] = time.perf_counter()

        camp.submit(noop).result(timeout=300)  # the workers' start is not throughput (the runtime runs it now)
        t0 = time.perf_counter()
        for _ in range(n):
            camp.submit(noop)
        camp.run()
        ended = time.perf_counter()
        if seen[0] != n + 1:
            raise RuntimeError(f"the agent saw {seen[0]} results of {n + 1}")
        if timings is not None:
            timings["close_s"] = ended - last[0]
        return n / (last[0] - t0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def campaign_throughput(n: int = 3000, workers: int = 2) -> dict[str, float]:
    """No-op tasks/s through a campaign (journal on, one agent that sees every result) and through the pool.

    Both from warm workers to the last result in hand (see `campaign_noop_rate`); ``campaign_close_s``: the
    campaign's close after its last result, kept apart (a fixed cost per campaign, not per task).
    """
    from ..campaign import Campaign
    from ..resources import Allocation

    timings: dict[str, float] = {}
    ours = campaign_noop_rate(lambda d: Campaign(d, allocation=Allocation.declare(nodes=1, cores=workers),
                                                 progress=False), n, timings=timings)
    with ProcessPoolExecutor(workers) as ex:
        ex.submit(noop).result()
        t0 = time.perf_counter()
        wait([ex.submit(noop) for _ in range(n)])
        floor = n / (time.perf_counter() - t0)
    return {"campaign_throughput_tasks_per_s": ours, "floor_campaign_throughput_tasks_per_s": floor,
            "campaign_close_s": timings["close_s"]}


def mixed_set(n: int = 120, seed: int = 7, median: float = 0.03) -> list[tuple[str, int, float]]:
    """(kind, cores, seconds): 1-core functions, 2-core functions and 1-core executables, lognormal durations."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(["fn1", "fn2", "exe"], size=n, p=[0.6, 0.2, 0.2])
    durations = rng.lognormal(np.log(median), 0.8, size=n)
    return [(str(k), 2 if k == "fn2" else 1, round(float(d), 3)) for k, d in zip(kinds, durations)]


def list_schedule_makespan(tasks: list[tuple[int, float]], cores: int) -> float:
    """Makespan of a zero-overhead scheduler that starts, whenever cores free up, every queued task that fits.

    ``tasks``: (cores, seconds) in submission order (the greedy, backfilling list scheduler).
    """
    now, free = 0.0, cores
    queue = list(tasks)
    running: list[tuple[float, int]] = []
    while queue or running:
        started = []
        for i, (c, d) in enumerate(queue):
            if c <= free:
                free -= c
                heapq.heappush(running, (now + d, c))
                started.append(i)
        for i in reversed(started):
            queue.pop(i)
        end, c = heapq.heappop(running)
        now, free = end, free + c
        while running and running[0][0] <= now:
            free += heapq.heappop(running)[1]
    return now


def same_policy_makespan(tasks: list[tuple[int, float]], cores: int, max_bypass: int | None,
                         estimates: list[float] | None = None) -> float:
    """Makespan of steerflow's own scheduler (`Scheduler`, this ``max_bypass``) run at zero overhead.

    `list_schedule_makespan` backfills without limit, so it starves a wide task until nothing narrower is
    left; steerflow's scheduler reserves for it after ``max_bypass`` bypasses (anti-starvation), which
    costs idle core time even at zero overhead. Measured against this ideal, the efficiency is the
    runtime's overhead alone, without the cost of that policy (which the pool, all of whose tasks fit
    one worker, never faces). ``estimates``: each task's run time as the scheduler would know it
    (``inf``: unknown), for backfill into a reservation's shadow; None gives it no estimates at all.
    """
    from ..resources import Allocation
    from ..scheduler import Request, Scheduler

    clock = [0.0]
    started: dict[int, float] = {}
    estimator = None
    if estimates is not None:
        known = list(estimates)

        class Simulated:  # the scheduler's Estimator on the simulated clock
            def now(self) -> float:
                return clock[0]

            def run_time(self, req: Request) -> float:
                return known[req.id]

            def end(self, req_id: int) -> float:
                return started[req_id] + known[req_id]

        estimator = Simulated()
    scheduler = Scheduler(Allocation.declare(nodes=1, cores=cores), max_bypass=max_bypass, estimator=estimator)
    for i, (c, _) in enumerate(tasks):
        scheduler.submit(Request(i, 1, c))
    running: list[tuple[float, int]] = []
    while True:
        now = clock[0]
        for placement in scheduler.schedule():
            started[placement.request.id] = now
            heapq.heappush(running, (now + tasks[placement.request.id][1], placement.request.id))
        if not running:
            return now
        clock[0], i = heapq.heappop(running)
        scheduler.release(i)
        while running and running[0][0] <= clock[0]:
            scheduler.release(heapq.heappop(running)[1])


def run_exe(seconds: float) -> int:
    """What a pool runs for an executable task: the program as a subprocess."""
    return subprocess.run(["sleep", str(seconds)], check=True).returncode


def warm_up_set(workers: int) -> list[tuple[str, int, float]]:
    """What both executors run before the mixed set is timed: a task of every kind, one per worker for functions.

    Each side then has every process it will use started (the pool its workers; steerflow its workers of
    both bindings, a 2-core function needing a worker started with 2 threads, and its program launcher).
    Warming only 1-core workers left steerflow's first 2-core function to start a Python worker inside the
    timed run (0.2-0.5 s with both cores booked and idle), which the pool never pays.
    """
    return [("fn1", 1, 0.2)] * workers + [("fn2", 2, 0.05), ("exe", 1, 0.05)]


def _steerflow_seconds(workers: int, warm: list[tuple[str, int, float]], tasks: list[tuple[str, int, float]],
                       **options: Any) -> tuple[float, Any]:
    """Seconds for steerflow to run ``tasks`` after ``warm`` (a new `Runtime` with ``options``), and its
    scheduler's ``max_bypass``."""
    from ..resources import Allocation
    from ..runtime import Runtime
    from ..task import Executable, Function

    tmp = tempfile.mkdtemp(prefix="steerflow-bench-")
    try:
        with Runtime(Allocation.declare(nodes=1, cores=workers), run_dir=tmp, **options) as rt:
            def submit(batch: list[tuple[str, int, float]]) -> list:
                return [rt.submit(Executable(["sleep", str(d)]) if k == "exe" else Function(sleep_for, (d,), cores=c))
                        for k, c, d in batch]

            wait(submit(warm))
            t0 = time.perf_counter()
            wait(submit(tasks))
            return time.perf_counter() - t0, rt._scheduler.max_bypass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _pool_seconds(workers: int, warm: list[tuple[str, int, float]], tasks: list[tuple[str, int, float]]) -> float:
    with ProcessPoolExecutor(workers) as ex:
        def submit(batch: list[tuple[str, int, float]]) -> list:
            return [ex.submit(run_exe, d) if k == "exe" else ex.submit(sleep_for, d) for k, c, d in batch]

        wait(submit(warm))
        t0 = time.perf_counter()
        wait(submit(tasks))
        return time.perf_counter() - t0


def mixed_efficiency(workers: int = 2, tasks: list[tuple[str, int, float]] | None = None,
                     greedy_first: bool = False) -> dict[str, float]:
    """Efficiency (ideal makespan / measured) of steerflow, under each scheduling policy, and of the pool on
    one task list of the mixed set, each after the same warm-up (`warm_up_set`).

    steerflow's ideals know that a 2-core task holds two cores; the pool's treats every task as one worker,
    since that is all a pool can do. steerflow runs twice, in a new `Runtime` each: with the default policy
    (a 2-core task reserves its cores after 64 bypasses: the anti-starvation guarantee) and with
    ``max_bypass=None`` (never reserve: greedy backfill, the pool's own policy); ``greedy_first`` says
    which goes first (the pool runs last). Keys:

    * ``mixed_greedy_efficiency_pct``: the greedy policy against the greedy ideal (`list_schedule_makespan`,
      a zero-overhead list scheduler): the same policy as the pool's, so its gap to the pool is overhead;
    * ``mixed_efficiency_same_policy_pct``: the default policy against itself at zero overhead
      (`same_policy_makespan`): overhead too;
    * ``mixed_efficiency_pct`` (the headline of earlier sessions): the default policy against the greedy
      ideal, i.e. overhead plus the anti-starvation policy's cost, which the pool never pays;
    * ``mixed_policy_cost_ideal_pts``: that cost at zero overhead (the two ideals).
    """
    tasks = tasks or mixed_set()
    shape = [(c, d) for _, c, d in tasks]
    ideal_greedy = list_schedule_makespan(shape, workers)
    ideal_pool = list_schedule_makespan([(1, d) for _, _, d in tasks], workers)
    warm = warm_up_set(workers)
    seconds: dict[str, float] = {}
    max_bypass = None
    for arm in (("greedy", "default") if greedy_first else ("default", "greedy")):
        if arm == "greedy":
            seconds[arm], _ = _steerflow_seconds(workers, warm, tasks, max_bypass=None)
        else:
            seconds[arm], max_bypass = _steerflow_seconds(workers, warm, tasks)
    pool = _pool_seconds(workers, warm, tasks)
    ideal_policy = same_policy_makespan(shape, workers, max_bypass)
    return {"mixed_efficiency_pct": 100.0 * ideal_greedy / seconds["default"],
            "floor_mixed_efficiency_pct": 100.0 * ideal_pool / pool,
            "mixed_efficiency_same_policy_pct": 100.0 * ideal_policy / seconds["default"],
            "mixed_greedy_efficiency_pct": 100.0 * ideal_greedy / seconds["greedy"],
            "mixed_policy_cost_ideal_pts": 100.0 - 100.0 * ideal_greedy / ideal_policy}


#: the order the three arms run a list in, by the list's number (every order as often, so none is always first
#: after another, or last, when the machine's state drifts within a list's ~8 s)
ARM_ORDERS = (("default", "greedy", "pool"), ("greedy", "pool", "default"), ("pool", "default", "greedy"),
              ("greedy", "default", "pool"), ("pool", "greedy", "default"), ("default", "pool", "greedy"))

#: task lists of the mixed rows at ``steerflow bench runtime``'s default (``--repeat 3``); see `mixed_rows`
MIXED_LISTS = 14


@contextlib.contextmanager
def _warm_arms(workers: int) -> Iterator[tuple[dict[str, Callable[[list[tuple[str, int, float]]], float]], Any]]:
    """The three executors of the mixed rows, started and warmed once (`warm_up_set`) and kept for every list:
    steerflow with its default policy (``"default"``), steerflow with ``max_bypass=None`` (``"greedy"``) and the
    pool (``"pool"``). Yields (arm -> a function timing one task list there, the default runtime's
    ``max_bypass``). An idle executor waits in a blocking read (no timer), so the two idle ones cost the timed
    one nothing."""
    from ..resources import Allocation
    from ..runtime import Runtime
    from ..task import Executable, Function

    warm = warm_up_set(workers)
    with contextlib.ExitStack() as stack:
        def steerflow(**options: Any) -> Callable[[list[tuple[str, int, float]]], float]:
            tmp = tempfile.mkdtemp(prefix="steerflow-bench-")
            stack.callback(shutil.rmtree, tmp, True)
            rt = stack.enter_context(Runtime(Allocation.declare(nodes=1, cores=workers), run_dir=tmp, **options))

            def submit(batch: list[tuple[str, int, float]]) -> list:
                return [rt.submit(Executable(["sleep", str(d)]) if k == "exe" else Function(sleep_for, (d,), cores=c))
                        for k, c, d in batch]

            def seconds(tasks: list[tuple[str, int, float]]) -> float:
                t0 = time.perf_counter()
                wait(submit(tasks))
                return time.perf_counter() - t0

            wait(submit(warm))
            arms[f"{'greedy' if options else 'default'}_max_bypass"] = rt._scheduler.max_bypass
            return seconds

        arms: dict[str, Any] = {}
        timers = {"default": steerflow(), "greedy": steerflow(max_bypass=None)}
        pool = stack.enter_context(ProcessPoolExecutor(workers))

        def pool_submit(batch: list[tuple[str, int, float]]) -> list:
            return [pool.submit(run_exe, d) if k == "exe" else pool.submit(sleep_for, d) for k, c, d in batch]

        def pool_seconds(tasks: list[tuple[str, int, float]]) -> float:
            t0 = time.perf_counter()
            wait(pool_submit(tasks))
            return time.perf_counter() - t0

        wait(pool_submit(warm))
        timers["pool"] = pool_seconds
        yield timers, arms["default_max_bypass"]


def spread(values: list[float], resamples: int = 2000, seed: int = 13) -> dict[str, list[float]]:
    """The interquartile range of ``values`` and a 90 % bootstrap interval of their median (seeded: the same
    values give the same interval), to print beside a median over task lists."""
    import statistics

    rng = np.random.default_rng(seed)
    data = np.asarray(values, dtype=float)
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else (values[0],) * 3
    medians = np.median(rng.choice(data, size=(resamples, len(data)), replace=True), axis=1)
    low, high = np.percentile(medians, [5, 95])
    return {"iqr": [round(q1, 3), round(q3, 3)], "ci90": [round(float(low), 3), round(float(high), 3)]}


def mixed_rows(workers: int = 2, lists: int = MIXED_LISTS, first_seed: int = 7, n: int = 120,
               median: float = 0.03) -> dict[str, Any]:
    """The mixed-set rows on ``lists`` task lists (`mixed_set` seeds ``first_seed``, ``first_seed + 1``, ...),
    each run by steerflow under its default policy, by steerflow under the greedy policy and by the pool, one
    after the other (`ARM_ORDERS`: the order turns list by list), each executor started and warmed once for all
    lists (`_warm_arms`). Efficiency is each run's ideal makespan over its wall time; gaps are taken list by
    list (the three runs of a list lie within ~8 s) and reported as the median over the lists, with their
    interquartile range and a 90 % bootstrap interval of that median (``*_iqr``, ``*_ci90``). Gaps are in
    points, the pool's efficiency minus steerflow's:

    * ``mixed_greedy_gap_pts``: steerflow with ``max_bypass=None`` (greedy backfill, the pool's policy)
      against the greedy ideal. The same policy on both sides: the runtime's overhead; the 0.2-point target;
    * ``mixed_efficiency_same_policy_gap_pts``: the default policy against its own zero-overhead ideal:
      the runtime's overhead under the default policy; the 0.2-point target too;
    * ``mixed_efficiency_gap_pts``: the default policy against the greedy ideal: overhead plus the cost of
      the anti-starvation policy (a 2-core task reserves after 64 bypasses), which the pool, all of whose
      tasks fit one worker, never pays. No target: that cost is the guarantee's, measured by
      ``mixed_policy_cost_pts`` (the greedy run's efficiency minus the default run's, same ideal, list by
      list) and, at zero overhead, ``mixed_policy_cost_ideal_pts``.

    Why this design (issue 13i's note has the measurements). One list's gap swings by ~1-3 points from run to
    run, and by up to ~1 point between lists run minutes apart: the tasks' own sleeps overrun by 0.2-0.6 ms
    each depending on what else the machine does, so the noise moves with the minute. Until session 7, 6 lists
    were each run by executors started for that list, the pool always last: a reading swung by ~1.3 points
    (-0.19 to 1.15 idle), more than the target. Now the three runs of a list follow each other at once (no
    executor starts between them, which also spends the time on more lists), in every order equally often,
    over 14 lists at ``bench runtime``'s default. The set itself is unchanged: the same kinds and shares, the
    same durations, 120 tasks a list, 2 workers, every list kept; the ideals too. What it resolves (session 8,
    load 6-13, ten readings): one list's gap still swings by ~0.8 points (SD) from reading to reading, so a
    reading's median swings by ~0.2 (SD; -0.64 to -0.01): it resolves ~0.4 points, not 0.2. Each reading's own
    uncertainty is in the JSON (``*_ci90``); compare two codes list by list over several readings.

    Why several lists: on one list, which core a task lands on decides how long a 2-core task's cores
    drain, and that is luck of the list more than cost of the runtime. At zero overhead, on the first list
    (seed 7, the only one until session 6), steerflow's pipelining (a core's next task committed one task
    ahead) left 78 idle core-ms per run against the list scheduler's 23 (~1.1 points of the gap); over 200
    lists of the same kind, 80 against 77 on average. ``*_first_list`` keep the seed-7 list's own gaps (one
    run) for comparison with earlier sessions; ``*_by_list`` every list's gap, in seed order.
    """
    import gc

    runs = []
    with _warm_arms(workers) as (timers, max_bypass):
        for i in range(lists):
            tasks = mixed_set(n, seed=first_seed + i, median=median)
            seconds = {}
            for arm in ARM_ORDERS[i % len(ARM_ORDERS)]:
                gc.collect()  # (what the arm before left is not collected inside this arm's timed run)
                time.sleep(0.05)  # (the arm before has told its last result: its loop is asleep again)
                seconds[arm] = timers[arm](tasks)
            shape = [(c, d) for _, c, d in tasks]
            ideal_greedy = list_schedule_makespan(shape, workers)
            ideal_pool = list_schedule_makespan([(1, d) for _, _, d in tasks], workers)
            ideal_policy = same_policy_makespan(shape, workers, max_bypass)
            runs.append({"mixed_efficiency_pct": 100.0 * ideal_greedy / seconds["default"],
                         "floor_mixed_efficiency_pct": 100.0 * ideal_pool / seconds["pool"],
                         "mixed_efficiency_same_policy_pct": 100.0 * ideal_policy / seconds["default"],
                         "mixed_greedy_efficiency_pct": 100.0 * ideal_greedy / seconds["greedy"],
                         "mixed_policy_cost_ideal_pts": 100.0 - 100.0 * ideal_greedy / ideal_policy})
    return summarise_mixed(runs)


def summarise_mixed(runs: list[dict[str, float]]) -> dict[str, Any]:
    """The rows of `mixed_rows` from each list's efficiencies (in seed order)."""
    import statistics

    def med(values: Callable[[dict[str, float]], float]) -> float:
        return statistics.median(values(r) for r in runs)

    def gap(key: str) -> Callable[[dict[str, float]], float]:
        return lambda r: r["floor_mixed_efficiency_pct"] - r[key]

    per_list = {"mixed_greedy_gap_pts": gap("mixed_greedy_efficiency_pct"),
                "mixed_efficiency_same_policy_gap_pts": gap("mixed_efficiency_same_policy_pct"),
                "mixed_efficiency_gap_pts": gap("mixed_efficiency_pct"),
                "mixed_policy_cost_pts": lambda r: r["mixed_greedy_efficiency_pct"] - r["mixed_efficiency_pct"]}
    spreads = {key: spread([of(r) for r in runs]) for key, of in per_list.items() if key.endswith("gap_pts")}
    return {  # (the table's order)
        "mixed_greedy_efficiency_pct": med(lambda r: r["mixed_greedy_efficiency_pct"]),
        "floor_mixed_greedy_efficiency_pct": med(lambda r: r["floor_mixed_efficiency_pct"]),
        "mixed_greedy_gap_pts": med(per_list["mixed_greedy_gap_pts"]),
        "mixed_efficiency_same_policy_pct": med(lambda r: r["mixed_efficiency_same_policy_pct"]),
        "mixed_efficiency_same_policy_gap_pts": med(per_list["mixed_efficiency_same_policy_gap_pts"]),
        "mixed_efficiency_pct": med(lambda r: r["mixed_efficiency_pct"]),
        "floor_mixed_efficiency_pct": med(lambda r: r["floor_mixed_efficiency_pct"]),
        "mixed_efficiency_gap_pts": med(per_list["mixed_efficiency_gap_pts"]),
        "mixed_policy_cost_pts": med(per_list["mixed_policy_cost_pts"]),
        "mixed_policy_cost_ideal_pts": med(lambda r: r["mixed_policy_cost_ideal_pts"]),
        "mixed_greedy_gap_pts_first_list": per_list["mixed_greedy_gap_pts"](runs[0]),
        "mixed_efficiency_gap_pts_first_list": per_list["mixed_efficiency_gap_pts"](runs[0]),
        "mixed_lists": len(runs),
        # (for the JSON; the table shows the medians) the spread over the lists, and every list's, in seed order
        **{f"{key}_{what}": value for key, s in spreads.items() for what, value in s.items()},
        **{f"{key}_by_list": [round(of(r), 3) for r in runs] for key, of in per_list.items()},
    }
