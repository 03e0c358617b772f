"""What a task changes in its warm worker's process (working directory, environment, `sys.path`) does not leak
into the next task on that worker: each starts as the worker did (the binding's variables as the runtime set them).
One core, so every task here runs in the same warm worker, one after another.
"""
from __future__ import annotations

import os
import sys

import steerflow as sf

BOUND = 60


def pid() -> int:
    return os.getpid()


def state() -> tuple:
    return (os.getpid(), os.getcwd(), dict(os.environ), list(sys.path), os.environ.get("OMP_NUM_THREADS"))


def wander(where: str) -> int:
    os.chdir(where)
    os.environ["SF_LEFTOVER"] = "1"
    os.environ.pop("HOME", None)
    os.environ["OMP_NUM_THREADS"] = "64"  # (one of the binding's variables)
    sys.path.insert(0, where)
    return os.getpid()


def wreck(where: str) -> int:
    os.chdir(where)
    os.rmdir(where)  # its own working directory is gone
    os.environ.clear()
    sys.path.clear()  # (before: the worker's next result failed to import `mmap`)
    raise ValueError("left a mess")


def rebind() -> int:
    os.environ = {"PATH": "nowhere"}  # noqa: B003 - (a task that rebinds the name itself)
    sys.path = []
    return os.getpid()


def test_a_task_does_not_move_the_next_one(make_runtime, tmp_path):
    rt = make_runtime(allocation=sf.Allocation.declare(nodes=1, cores=1))
    before = rt.submit(state).result(timeout=BOUND)
    away = tmp_path / "away"
    away.mkdir()
    assert rt.submit(wander, str(away)).result(timeout=BOUND) == before[0]
    after = rt.submit(state).result(timeout=BOUND)
    assert after[0] == before[0]  # the same warm worker
    assert after[1] == before[1]  # cwd (before: the task's directory)
    assert "SF_LEFTOVER" not in after[2] and after[2].get("HOME") == before[2].get("HOME")
    assert after[4] == before[4] == "1"  # the binding's variable as the runtime set it, not the task's 64
    assert after[3] == before[3]  # sys.path


def test_a_task_that_wrecks_its_process_leaves_the_next_one_whole(make_runtime, tmp_path):
    rt = make_runtime(allocation=sf.Allocation.declare(nodes=1, cores=1))
    before = rt.submit(state).result(timeout=BOUND)
    gone = tmp_path / "gone"
    gone.mkdir()
    bad = rt.submit(wreck, str(gone))
    try:
        bad.result(timeout=BOUND)
    except ValueError:
        pass
    assert rt.submit(rebind).result(timeout=BOUND) == before[0]
    after = rt.submit(state).result(timeout=BOUND)
    assert after[0] == before[0]
    assert after[1] == before[1] and after[3] == before[3]
    env = {k: v for k, v in after[2].items() if k != "STEERFLOW_TASK_ID" and k != "STEERFLOW_CHECKPOINT"}
    assert env == {k: v for k, v in before[2].items() if k != "STEERFLOW_TASK_ID" and k != "STEERFLOW_CHECKPOINT"}
    assert after[2]["STEERFLOW_TASK_ID"] != before[2]["STEERFLOW_TASK_ID"]  # (the task's own variables are new)
