"""Which idle warm worker a function task gets (`WarmPool._pick_worker`).

Prefer one that already ran the function and is bound to the task's CPUs already (no affinity
change in the worker, which costs it a listing of its threads and a syscall per thread), then one
that ran the function, then any of the binding; never one of another binding.
"""

from __future__ import annotations

import os

from steerflow.engines.local import LocalEngine
from steerflow.engines.pool import DEFAULT_BINDING, Worker


def idle_worker(known: set[int], cpus: list[int] | None, binding=DEFAULT_BINDING) -> Worker:
    worker = Worker(None, -1, -1, -1, binding)  # type: ignore[arg-type]  # (never started: picking only)
    for key in known:
        worker.known.add(key, None, 1)
    worker.cpus = cpus
    return worker


def engine_with(*workers: Worker) -> LocalEngine:
    engine = LocalEngine(workers=len(workers))
    engine._idle.extend(workers)
    engine._max_idle = 10
    return engine


def close(engine: LocalEngine) -> None:
    engine._sel.close()
    os.close(engine._wake_fd)


def test_the_worker_bound_to_the_same_cpus_is_preferred() -> None:
    on0, on1 = idle_worker({7}, [0]), idle_worker({7}, [1])
    engine = engine_with(on0, on1)
    assert engine._pick_worker(7, DEFAULT_BINDING, [0]) is on0
    assert engine._idle == [on1]
    close(engine)
    engine = engine_with(on1, on0)
    assert engine._pick_worker(7, DEFAULT_BINDING, [1]) is on1
    close(engine)


def test_a_warm_function_comes_before_the_same_cpus() -> None:
    cold_same_cpus, warm_other_cpus = idle_worker(set(), [0]), idle_worker({7}, [1])
    engine = engine_with(cold_same_cpus, warm_other_cpus)
    assert engine._pick_worker(7, DEFAULT_BINDING, [0]) is warm_other_cpus
    close(engine)


def test_another_binding_is_never_picked() -> None:
    gpu = idle_worker({7}, [0], binding=("0", "1"))
    plain = idle_worker(set(), [1])
    engine = engine_with(gpu, plain)
    assert engine._pick_worker(7, DEFAULT_BINDING, [0]) is plain
    assert engine._idle == [gpu]
    close(engine)


def test_a_message_carries_the_binding_only_when_the_worker_changes_binding() -> None:
    import pickle

    from steerflow import Allocation
    from steerflow.engines.base import Launch
    from steerflow.engines.worker import Frames
    from steerflow.placement import Placement, Slot
    from steerflow.scheduler import Request
    from steerflow.task import Function

    r, w = os.pipe()
    worker = idle_worker(set(), None)
    worker.wfd = w
    engine = engine_with(worker)
    engine._allocation = Allocation.declare(nodes=1, cores=2)
    messages = Frames(r)
    sent = []
    for task_id, core in enumerate([0, 0, 1, 1, 0], start=1):
        placement = Placement(Request(task_id), (Slot(0, (core,), (), 0),))
        engine._launch_function(Launch(task_id, 1, Function(abs, (1,)), placement, b""))
        engine.send_all()  # (the loop's round ends: the message is written)
        msg = pickle.loads(messages.next())
        sent.append((str(msg[0]), msg[5].get("STEERFLOW_CORES")))
        engine._idle.append(engine._busy.pop(task_id))  # (its task ended)
    assert sent == [("1", "0"), ("2", None), ("3", "1"), ("4", None), ("5", "0")]
    os.close(r)
    os.close(w)
    close(engine)
