"""The rows of `steerflow bench runtime` beyond the core ones, for the Dask engine (`--engine dask`).

The local benchmark also reports: the round trip of a function defined in a script's ``__main__``,
a campaign's throughput (journal on, one agent), the efficiency on a mixed set (1- and 2-core
functions and executables) and the data shapes (bag, diamond, reduce; 0 and 1 MB per task). Here
each is measured for the Dask engine, with the local engine as the floor (``floor_*``) and plain
Dask futures as the peer (``dask_*``) where plain Dask can run it, in the same run, so the JSON of
``--engine dask`` has the local benchmark's keys. Their ratios (``*_vs_floor``) are to the local engine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import wait
from pathlib import Path
from typing import Any, Callable

from . import shapes
from .floor import campaign_noop_rate, list_schedule_makespan, mixed_set, same_policy_makespan, warm_up_set
from .runtime import shape_rows as _shape_rows
from .runtime import sleep_for

_MAIN_SCRIPT = r'''
import json, sys, time


def noop():  # defined in __main__: pickled by value to the Dask nodes
    return None


if __name__ == "__main__":
    import logging
    import steerflow as sf
    from steerflow.engines.dask import DaskEngine
    logging.getLogger("distributed").setLevel(logging.CRITICAL)
    which, n, workers, run_dir, address = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
    if which == "dask":  # the bench's cluster: one node of 1 core on each of its workers
        rt = sf.Runtime(sf.Allocation.declare(nodes=workers, cores=1), engine=DaskEngine(address, min_nodes=workers),
                        run_dir=run_dir)
    else:
        rt = sf.Runtime(sf.Allocation.declare(nodes=1, cores=workers), run_dir=run_dir)
    with rt:
        for _ in range(20):
            rt.submit(noop).result()
        out = []
        for _ in range(n):
            t = time.perf_counter()
            rt.submit(noop).result()
            out.append((time.perf_counter() - t) * 1e3)
    out.sort()
    print(json.dumps(out[len(out) // 2]))
'''


class BenchCluster:
    """One Dask LocalCluster (as the engine starts one) for the Dask engine's parts of the benchmark.

    Each part connects a Dask engine of its own to it (a new session on each node: its own warm
    workers, killed when the part ends) instead of starting a cluster: starting and stopping one
    cost 1.5-2 CPU seconds (3-5 s on a loaded 2-core machine) per part. Each of its ``workers``
    worker processes declares ``workers`` cores; a part views them through a declared allocation
    (``nodes`` nodes of ``cores`` cores, node i on worker i). The cluster's scheduler runs on an
    event loop thread of its own here, as a remote scheduler would.
    """

    def __init__(self, workers: int) -> None:
        import asyncio
        import logging
        import threading

        from ..engines.dask_comms import start_local_cluster

        logging.getLogger("distributed").setLevel(logging.CRITICAL)
        self.workers = workers
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="steerflow-bench-cluster", daemon=True)
        self._thread.start()
        spec = {"n_workers": workers, "resources": {"cores": workers}}
        self.cluster, _ = asyncio.run_coroutine_threadsafe(start_local_cluster(spec), self._loop).result(300)
        self.address = self.cluster.scheduler_address

    def engine(self) -> Any:
        from ..engines.dask import DaskEngine

        return DaskEngine(self.address, min_nodes=self.workers)

    def runtime(self, run_dir: str | Path, nodes: int | None = None, cores: int = 1, **options: Any) -> Any:
        """A Runtime on ``nodes`` (default: every worker) nodes of ``cores`` cores of this cluster; ``options``: the
        Runtime's (e.g. ``max_bypass``)."""
        from ..resources import Allocation
        from ..runtime import Runtime

        return Runtime(Allocation.declare(nodes=nodes or self.workers, cores=cores), engine=self.engine(),
                       run_dir=run_dir, **options)

    def close(self) -> None:
        import asyncio

        if self._loop.is_closed():
            return
        try:
            async def close() -> None:
                from distributed import Client

                from ..engines.dask_quiet import stop_heartbeat

                try:  # quietly: no worker heartbeat in flight as the scheduler goes (see stop_heartbeat)
                    async with Client(self.cluster, asynchronous=True) as client:
                        await asyncio.wait_for(client.run(stop_heartbeat), 10)
                except Exception:  # noqa: BLE001 - the workers may be gone already
                    pass
                await self.cluster.close()

            asyncio.run_coroutine_threadsafe(close(), self._loop).result(120)
        finally:
            getattr(self.cluster, "_steerflow_undo", lambda: None)()  # (see dask_comms.keep_script_out_of_workers)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
            self._loop.close()

    def __enter__(self) -> BenchCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main_rtt_p50_ms(n: int = 300, cluster: BenchCluster | None = None, workers: int = 3) -> dict[str, float]:
    """Round trip p50 of a no-op defined in a script's ``__main__``: the Dask engine on ``cluster``, or
    (``cluster`` None) the local engine of ``workers`` cores."""
    which, key = ("dask", "rtt_main_p50_ms") if cluster is not None else ("local", "floor_rtt_main_p50_ms")
    workers = cluster.workers if cluster is not None else workers
    tmp = Path(tempfile.mkdtemp(prefix="steerflow-bench-dask-"))
    try:
        script = tmp / "user_script.py"
        script.write_text(_MAIN_SCRIPT)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        proc = subprocess.run([sys.executable, str(script), which, str(n), str(workers), str(tmp / which),
                               cluster.address if cluster is not None else ""],
                              capture_output=True, text=True, env=env, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"the __main__ round-trip script failed for {which}:\n{proc.stderr[-2000:]}")
        return {key: float(json.loads(proc.stdout.strip().splitlines()[-1]))}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def campaign_throughput(n: int = 3000, cluster: BenchCluster | None = None, workers: int = 3) -> dict[str, float]:
    """No-op tasks/s through a campaign (journal on, one agent that sees every result): the Dask engine
    on ``cluster`` (``workers`` nodes of 1 core), or (``cluster`` None) the local engine of ``workers`` cores."""
    from ..campaign import Campaign
    from ..resources import Allocation

    if cluster is not None:
        rate = campaign_noop_rate(lambda d: Campaign(d, allocation=Allocation.declare(nodes=cluster.workers, cores=1),
                                                     engine=cluster.engine(), progress=False),
                                  n, prefix="steerflow-bench-dask-")
        return {"campaign_throughput_tasks_per_s": rate}
    rate = campaign_noop_rate(lambda d: Campaign(d, allocation=Allocation.declare(nodes=1, cores=workers),
                                                 progress=False), n, prefix="steerflow-bench-dask-")
    return {"floor_campaign_throughput_tasks_per_s": rate}


def mixed_efficiency(n: int = 120, cluster: BenchCluster | None = None, workers: int = 3,
                     greedy_first: bool = False) -> dict[str, float]:
    """Efficiency (ideal makespan / measured) on the mixed set, on one node of ``workers`` cores, under both
    scheduling policies, as `floor.mixed_efficiency` measures the local engine: the default policy (a 2-core task
    reserves its cores after 64 bypasses) and ``Runtime(max_bypass=None)`` (greedy backfill, the pool's policy),
    each in a new Runtime after the same warm-up; ``greedy_first``: which goes first.

    One node, because the set has 2-core functions: the Dask engine (on the first worker of ``cluster``,
    which declares ``workers`` cores) or (``cluster`` None) the local engine, with ``floor_`` keys. Keys (as the
    local benchmark's): ``mixed_greedy_efficiency_pct`` (the greedy policy against the greedy ideal, a zero-overhead
    list scheduler), ``mixed_efficiency_same_policy_pct`` (the default policy against itself at zero overhead),
    ``mixed_efficiency_pct`` (the default policy against the greedy ideal: overhead and the policy's cost) and
    ``mixed_policy_cost_pts`` (the greedy run's efficiency minus the default run's).
    """
    workers = cluster.workers if cluster is not None else workers
    tasks = mixed_set(n)
    shape = [(c, d) for _, c, d in tasks]
    ideal_greedy = list_schedule_makespan(shape, workers)
    seconds: dict[str, float] = {}
    max_bypass = None
    for arm in (("greedy", "default") if greedy_first else ("default", "greedy")):
        options = {"max_bypass": None} if arm == "greedy" else {}
        seconds[arm], bypass = _mixed_seconds(cluster, workers, tasks, options)
        if arm == "default":
            max_bypass = bypass
    ideal_policy = same_policy_makespan(shape, workers, max_bypass)
    prefix = "" if cluster is not None else "floor_"
    greedy, default = 100.0 * ideal_greedy / seconds["greedy"], 100.0 * ideal_greedy / seconds["default"]
    return {f"{prefix}mixed_greedy_efficiency_pct": greedy,
            f"{prefix}mixed_efficiency_same_policy_pct": 100.0 * ideal_policy / seconds["default"],
            f"{prefix}mixed_efficiency_pct": default,
            f"{prefix}mixed_policy_cost_pts": greedy - default}


def _mixed_seconds(cluster: BenchCluster | None, workers: int, tasks: list[tuple[str, int, float]],
                   options: dict[str, Any]) -> tuple[float, Any]:
    """Seconds to run ``tasks`` after the warm-up, in a new Runtime with ``options``, and its scheduler's
    ``max_bypass``: the Dask engine on ``cluster`` (one node of ``workers`` cores), or the local engine."""
    from ..resources import Allocation
    from ..runtime import Runtime
    from ..task import Executable, Function

    tmp = tempfile.mkdtemp(prefix="steerflow-bench-dask-")
    try:
        rt = (cluster.runtime(tmp, nodes=1, cores=workers, **options) if cluster is not None
              else Runtime(Allocation.declare(nodes=1, cores=workers), run_dir=tmp, **options))
        with rt:
            def submit(batch: list[tuple[str, int, float]]) -> list:
                return [rt.submit(Executable(["sleep", str(d)]) if k == "exe" else Function(sleep_for, (d,), cores=c))
                        for k, c, d in batch]

            wait(submit(warm_up_set(workers)))  # every process either side uses, started (as the local row does)
            t0 = time.perf_counter()
            wait(submit(tasks))
            return time.perf_counter() - t0, rt._scheduler.max_bypass  # noqa: SLF001
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def mixed_gaps(result: dict[str, Any]) -> dict[str, float]:
    """The mixed rows' gaps in points, the local engine's (``floor_``) efficiency minus the Dask engine's."""
    def gap(key: str) -> float:
        return result[f"floor_{key}"] - result[key]

    return {"mixed_greedy_gap_pts": gap("mixed_greedy_efficiency_pct"),
            "mixed_efficiency_same_policy_gap_pts": gap("mixed_efficiency_same_policy_pct"),
            "mixed_efficiency_gap_pts": gap("mixed_efficiency_pct")}


_SHAPES_ON: list[Any] = []  # what the "sfdask" and "pdask" shape executors run on (a BenchCluster, a Dask Client)


def _dask_engine_executor(workers: int) -> tuple[Any, Callable[..., Any], Callable[[Any], Any], Callable[[], None]]:
    rt = _SHAPES_ON[-1].runtime(tempfile.mkdtemp(prefix="steerflow-bench-dask-"), nodes=workers)
    return rt, rt.submit, lambda f: f.result(), rt.shutdown


def _plain_dask_executor(workers: int) -> tuple[Any, Callable[..., Any], Callable[[Any], Any], Callable[[], None]]:
    client = _SHAPES_ON[-1]
    return client, lambda fn, *args: client.submit(fn, *args, pure=False), lambda f: f.result(), lambda: None


shapes.EXECUTORS.setdefault("sfdask", (_dask_engine_executor, (False, True)))
shapes.EXECUTORS.setdefault("pdask", (_plain_dask_executor, (False,)))


def shape_times(on: Any, executors: tuple[str, ...], n: int = 300, workers: int = 3,
                repeat: int = 1) -> dict[str, float]:
    """`shapes.measure` for ``executors``, one at a time; "sfdask" runs on the BenchCluster ``on``,
    "pdask" (plain Dask futures) on the Dask Client ``on``."""
    # one executor at a time: with a plain Dask cluster alive in this process beside ours (two Dask event
    # loops contending for one GIL), everything here ran 10-50x slower, plain Dask included (measured
    # at load ~18: 60 no-op tasks took ours 0.16 s alone and 9.5 s beside it; plain Dask took 44 s)
    measured: dict[str, float] = {}
    _SHAPES_ON.append(on)
    try:
        for executor in executors:
            measured.update(shapes.measure(n=n, workers=workers, repeat=repeat, executors=(executor,)))
    finally:
        _SHAPES_ON.remove(on)
    return measured


def shape_rows(measured: dict[str, float]) -> dict[str, float]:
    """Rows for the Dask engine (``<shape>_<size>_<mode>_s``), the local engine (``floor_…``, same mode) and
    plain Dask futures (``dask_…``) from the `shape_times` of "sfdask", "steerflow" and "pdask"; ratios to local."""
    return _shape_rows(measured, "sfdask", "pdask", lambda shape, mode: f"steerflow_{mode}_{shape}_s")
