"""What the runtime keeps alive, as CPython's own executor tests expect, and what a warm worker keeps.

Found by running CPython 3.11's `test_concurrent_futures` (`ExecutorTest.test_no_stale_references`,
`test_free_reference`) against `Runtime`: a submitted bound method's object stayed alive after its future
was dropped (the engine's function table, the pipelining run-time table and the loop's last message held
it), and `map` kept the value it had yielded. Each warm worker also kept every function it was ever sent:
``rt.submit(model.predict, x)`` (a new bound method each call, the model in its bytes) grew the driver and
the worker by a model per task.
"""

from __future__ import annotations

import gc
import os
import weakref
from pathlib import Path

import numpy as np

from steerflow import Allocation
from steerflow.proctree import descendants

from .conftest import wait_until
from .test_pipelining import BOUND, block_until, queued, wait_for


class Model:
    def __init__(self, megabytes: int = 0) -> None:
        self.weights = np.ones(megabytes * 131072)  # float64: 8 bytes each

    def predict(self, x: float) -> float:
        return float(x * (self.weights[0] if self.weights.size else 1.0))


def make_model(_: int) -> Model:
    return Model()


def collected(ref: weakref.ref) -> bool:
    gc.collect()
    return ref() is None


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS"))


def test_a_dropped_futures_callable_and_arguments_are_freed(runtime):
    model, argument = Model(), Model()
    refs = [weakref.ref(model), weakref.ref(argument)]
    runtime.submit(model.predict, 2.0).result(timeout=BOUND)  # (its future dropped at once)
    runtime.submit(make_model, argument)  # dropped before it even ends
    del model, argument
    assert wait_until(lambda: all(collected(r) for r in refs), timeout=BOUND), \
        "the runtime keeps a finished task's callable or arguments alive after its future is gone"


def test_map_frees_each_result_the_caller_drops(runtime):
    n = 0
    for value in runtime.map(make_model, range(3)):  # (not enumerate: it keeps its last tuple for reuse)
        ref = weakref.ref(value)
        del value
        assert wait_until(lambda: collected(ref), timeout=BOUND), f"map keeps result {n} alive"
        n += 1
    assert n == 3


def test_bound_methods_of_a_large_model_do_not_pile_up_in_the_driver_or_the_worker(make_runtime):
    """The ML-in-HPC call pattern: inference through ``model.predict``, one task per input."""
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=1))
    model = Model(megabytes=24)
    assert rt.submit(model.predict, 1.0).result(timeout=BOUND) == 1.0
    driver_before = rss_mb(os.getpid())
    for x in range(14):  # unbounded, the worker would hold 14 x 24 MB and the driver as much in bytes
        assert rt.submit(model.predict, float(x)).result(timeout=BOUND) == x
    workers = [p for p in descendants(os.getpid()) if os.path.exists(f"/proc/{p}/status")]
    largest = max(rss_mb(p) for p in workers)
    assert largest < 64 + 2 * 24 + 120, f"a warm worker holds {largest:.0f} MB after 14 calls of a 24 MB model"
    assert rss_mb(os.getpid()) - driver_before < 120, "the driver keeps the bytes of every bound method it sent"


def test_more_distinct_functions_than_a_worker_keeps_all_run_right(runtime):
    """Closures made per task, pipelined and stolen between two workers: the driver's idea of what each
    worker holds must stay exact while workers let old functions go."""
    def closure(k: int):
        def task() -> int:
            import time
            time.sleep(0.001)  # (long enough to be queued behind another: the pipelined path too)
            return k
        return task

    futures = [runtime.submit(closure(k)) for k in range(600)]
    assert [f.result(timeout=BOUND) for f in futures] == list(range(600))
    assert runtime.failure is None


def test_a_withdrawn_tasks_function_is_still_known_to_its_worker(make_runtime, tmp_path):
    """A task queued on a worker carries its function's bytes; taken back, the worker still takes the
    function in (the driver counts it so), and the next task of that function runs there without them."""
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=1))
    gate, mark = str(tmp_path / "gate"), str(tmp_path / "a-runs")
    a = rt.submit(block_until, gate, mark)
    wait_for(mark)
    method = Model().predict  # one object: its second task finds it known
    b = rt.submit(method, 3.0)
    assert queued(rt, b)
    b.cancel()
    assert wait_until(lambda: b.cancelled(), timeout=BOUND)
    c = rt.submit(method, 5.0)
    Path(gate).touch()
    a.result(timeout=BOUND)
    assert c.result(timeout=BOUND) == 5.0


def test_a_runtime_without_a_run_dir_leaves_no_empty_folder_behind():
    """A library that makes a runtime per call must not leave a folder in /tmp each time; a program's
    output stays where its result says it is."""
    import sys

    from steerflow import Executable, Runtime

    with Runtime(Allocation.declare(nodes=1, cores=1)) as rt:
        assert rt.submit(pow, 2, 3).result(timeout=BOUND) == 8
    assert not rt.run_dir.exists()
    with Runtime(Allocation.declare(nodes=1, cores=1)) as rt:
        ran = rt.submit(Executable([sys.executable, "-c", "print('kept')"])).result(timeout=BOUND)
    assert ran.stdout.strip() == "kept" and not (rt.run_dir / "checkpoints").exists()
