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
from .floor import campaign_noop_rate, list_schedule_makespan, mixed_set
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
    which, n, workers, run_dir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    if which == "dask":
        rt = sf.Runtime(engine=DaskEngine(cluster={"n_workers": workers, "resources": {"cores": 1}}), run_dir=run_dir)
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


def dask_engine(workers: int, cores: int = 1) -> Any:
    """A Dask engine on a LocalCluster of ``workers`` nodes (worker processes) of ``cores`` cores each."""
    from ..engines.dask import DaskEngine

    return DaskEngine(cluster={"n_workers": workers, "threads_per_worker": 1, "resources": {"cores": cores}})


def main_rtt_p50_ms(workers: int = 3, n: int = 300) -> dict[str, float]:
    """Round trip p50 of a no-op defined in a script's ``__main__``: Dask engine, then the local engine."""
    tmp = Path(tempfile.mkdtemp(prefix="steerflow-bench-dask-"))
    try:
        script = tmp / "user_script.py"
        script.write_text(_MAIN_SCRIPT)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        out = {}
        for which, key in (("dask", "rtt_main_p50_ms"), ("local", "floor_rtt_main_p50_ms")):
            proc = subprocess.run([sys.executable, str(script), which, str(n), str(workers), str(tmp / which)],
                                  capture_output=True, text=True, env=env, timeout=600)
            if proc.returncode != 0:
                raise RuntimeError(f"the __main__ round-trip script failed for {which}:\n{proc.stderr[-2000:]}")
            out[key] = float(json.loads(proc.stdout.strip().splitlines()[-1]))
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def campaign_throughput(n: int = 3000, workers: int = 3) -> dict[str, float]:
    """No-op tasks/s through a campaign (journal on, one agent that sees every result): Dask engine and local."""
    from ..campaign import Campaign
    from ..resources import Allocation

    out = {}
    for key, make in (("campaign_throughput_tasks_per_s", lambda d: Campaign(d, engine=dask_engine(workers),
                                                                              progress=False)),
                      ("floor_campaign_throughput_tasks_per_s",
                       lambda d: Campaign(d, allocation=Allocation.declare(nodes=1, cores=workers), progress=False))):
        out[key] = campaign_noop_rate(make, n, prefix="steerflow-bench-dask-")
    return out


def mixed_efficiency(workers: int = 3, n: int = 120) -> dict[str, float]:
    """Efficiency (ideal makespan / measured) on the mixed set, on one node of ``workers`` cores.

    One node, because the set has 2-core functions: Dask engine (one worker declaring ``workers``
    cores) and the local engine, each against the same ideal (a zero-overhead list scheduler).
    """
    from ..resources import Allocation
    from ..runtime import Runtime
    from ..task import Executable, Function

    tasks = mixed_set(n)
    ideal = list_schedule_makespan([(c, d) for _, c, d in tasks], workers)
    out = {}
    for key, make in (("mixed_efficiency_pct", lambda d: Runtime(engine=dask_engine(1, workers), run_dir=d)),
                      ("floor_mixed_efficiency_pct",
                       lambda d: Runtime(Allocation.declare(nodes=1, cores=workers), run_dir=d))):
        tmp = tempfile.mkdtemp(prefix="steerflow-bench-dask-")
        try:
            with make(tmp) as rt:
                wait([rt.submit(sleep_for, 0.2) for _ in range(workers)])  # every worker started and warm
                t0 = time.perf_counter()
                futures = [rt.submit(Executable(["sleep", str(d)]) if k == "exe" else
                                     Function(sleep_for, (d,), cores=c)) for k, c, d in tasks]
                wait(futures)
                out[key] = 100.0 * ideal / (time.perf_counter() - t0)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _dask_engine_executor(workers: int) -> tuple[Any, Callable[..., Any], Callable[[Any], Any], Callable[[], None]]:
    from ..runtime import Runtime

    rt = Runtime(engine=dask_engine(workers), run_dir=tempfile.mkdtemp(prefix="steerflow-bench-dask-"))
    return rt, rt.submit, lambda f: f.result(), rt.shutdown


shapes.EXECUTORS.setdefault("sfdask", (_dask_engine_executor, (False, True)))


def shape_rows(n: int = 300, workers: int = 3, repeat: int = 1) -> dict[str, float]:
    """The data shapes for the Dask engine (``<shape>_<size>_<mode>_s``), the local engine (``floor_…``,
    same mode) and plain Dask futures (``dask_…``), one after the other in one run; ratios to the local engine."""
    # one executor at a time: with a plain Dask cluster alive in this process beside ours (two Dask event
    # loops contending for one GIL), everything here ran 10-50x slower, plain Dask included (measured
    # at load ~18: 60 no-op tasks took ours 0.16 s alone and 9.5 s beside it; plain Dask took 44 s)
    measured: dict[str, float] = {}
    for executor in ("sfdask", "steerflow", "dask"):
        measured.update(shapes.measure(n=n, workers=workers, repeat=repeat, executors=(executor,)))
    rows: dict[str, float] = {}
    for key, value in measured.items():
        name, mode, rest = key.split("_", 2)
        shape = rest[: -len("_s")]
        if name == "sfdask":
            rows[f"{shape}_{mode}_s"] = value
            local = measured.get(f"steerflow_{mode}_{shape}_s")
            if local:
                rows[f"floor_{shape}_{mode}_s"] = local
                rows[f"{shape}_{mode}_vs_floor"] = value / local
        elif name == "dask":
            rows[f"dask_{shape}_{mode}_s"] = value
    return rows
