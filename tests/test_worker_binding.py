"""Warm workers keep the binding they were started with: checked in what the process really has.

CUDA, OpenMP and BLAS read CUDA_VISIBLE_DEVICES and the thread count once per process, so the
string in os.environ proves nothing. These tests read the worker's start-up environment
(/proc/PID/environ) and the thread pools BLAS really uses (threadpoolctl).
"""

from __future__ import annotations

import os
from collections import defaultdict

import pytest

from steerflow import Allocation, Function

needs_two_cpus = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")


def start_env(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        items = f.read().split(b"\0")
    return dict(item.decode().split("=", 1) for item in items if b"=" in item)


def bound() -> dict:
    return {"pid": os.getpid(), "cuda": os.environ["CUDA_VISIBLE_DEVICES"], "omp": os.environ["OMP_NUM_THREADS"],
            "gpus": os.environ["STEERFLOW_GPUS"], "cpus": sorted(os.sched_getaffinity(0))}


def blas_threads() -> dict:
    import numpy as np
    from threadpoolctl import threadpool_info

    np.ones((64, 64)) @ np.ones((64, 64))  # BLAS really starts its pool
    pools = [p for p in threadpool_info() if p["user_api"] in ("blas", "openmp")]
    return {"pid": os.getpid(), "threads": {p["internal_api"]: p["num_threads"] for p in pools},
            "cpus": sorted(os.sched_getaffinity(0)),
            "thread_cpus": sorted({c for t in os.listdir("/proc/self/task")
                                   for c in os.sched_getaffinity(int(t))})}


def test_each_worker_serves_one_binding_and_starts_with_it(make_runtime):
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=2, gpus=2))
    shapes = [dict(cores=1, gpus=0), dict(cores=1, gpus=1), dict(cores=2, gpus=2), dict(cores=2, gpus=0),
              dict(cores=1, gpus=1), dict(cores=1, gpus=0)] * 4
    served: dict[int, set] = defaultdict(set)
    for shape in shapes:
        r = rt.submit(Function(bound, **shape)).result(timeout=60)
        assert r["cuda"] == r["gpus"] and r["omp"] == str(shape["cores"])  # what the task was given ...
        env = start_env(r["pid"])  # ... is what its process started with
        assert env["CUDA_VISIBLE_DEVICES"] == r["cuda"] and env["OMP_NUM_THREADS"] == r["omp"]
        assert env["OPENBLAS_NUM_THREADS"] == r["omp"]
        served[r["pid"]].add((r["cuda"], r["omp"]))
    assert all(len(b) == 1 for b in served.values()), served  # no worker ever changed its binding


def test_same_shaped_tasks_keep_their_warm_worker(make_runtime):
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=2, gpus=1))
    gpu = {rt.submit(Function(os.getpid, gpus=1)).result(timeout=60) for _ in range(10)}
    plain = {rt.submit(os.getpid).result(timeout=60) for _ in range(10)}
    assert len(gpu) == 1  # one GPU: one worker with CUDA_VISIBLE_DEVICES=0 served every GPU task
    assert 1 <= len(plain) <= 2 and not plain & gpu  # the warm pool served the rest


def test_idle_workers_stay_bounded(make_runtime):
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=2, gpus=2))
    for shape in [dict(gpus=0), dict(gpus=1), dict(cores=2, gpus=2), dict(cores=2), dict(gpus=1)] * 3:
        rt.submit(Function(os.getpid, **shape)).result(timeout=60)
    engine = rt.engine
    live = []
    rt.call_soon(lambda: live.extend([*engine._idle, *engine._busy.values()]))
    from .conftest import wait_until
    assert wait_until(lambda: bool(live), timeout=10)
    assert len(live) <= 2 + 2  # at most `workers` + 2 idle ones are kept (4 bindings ran here)


@needs_two_cpus
def test_blas_threads_follow_the_task_cores_after_a_different_count_ran(make_runtime):
    pytest.importorskip("threadpoolctl")
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=2), )
    for cores in (2, 1, 2, 1):
        r = rt.submit(Function(blas_threads, cores=cores)).result(timeout=60)
        assert r["threads"] and set(r["threads"].values()) == {cores}, r
        assert len(r["cpus"]) == cores and len(r["thread_cpus"]) == cores, r  # every thread, BLAS's too
