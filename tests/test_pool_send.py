"""A round's task messages are written as the loop's round ends (`WarmPool.send_all`), in order.

Writing a task message wakes its worker, which on a busy machine takes the CPU from the loop at once
(~25 us a task in the middle of a round); so `_launch_function` only queues the message, and the
engine's `wait` (the loop's next sleep) writes them all. Anything else written to that worker first
sends what is queued for it: a task queued behind it (`launch_behind`), or the stop message.
"""

from __future__ import annotations

import os
import pickle

from steerflow import Allocation
from steerflow.engines.base import Launch
from steerflow.engines.local import LocalEngine
from steerflow.engines.pool import DEFAULT_BINDING, Worker
from steerflow.engines.worker import Frames
from steerflow.placement import Placement, Slot
from steerflow.scheduler import Request
from steerflow.task import Function


def _engine_with_a_worker_on_a_pipe() -> tuple[LocalEngine, Worker, int, int]:
    r, w = os.pipe()
    gate_r, gate_w = os.pipe2(os.O_NONBLOCK)
    worker = Worker(None, -1, w, -1, DEFAULT_BINDING, (gate_r, gate_w))  # type: ignore[arg-type]
    engine = LocalEngine(workers=1)
    engine.defer_sends = True  # (as the runtime's loop runs it)
    engine._idle.append(worker)
    engine._allocation = Allocation.declare(nodes=1, cores=1)
    return engine, worker, r, w


def _launch(task_id: int) -> Launch:
    return Launch(task_id, 1, Function(abs, (task_id,)), Placement(Request(task_id), (Slot(0, (0,), (), 0),)), b"")


def _close(engine: LocalEngine, worker: Worker, r: int) -> None:
    for fd in (r, worker.wfd, *worker.gate):
        os.close(fd)
    engine._sel.close()
    os.close(engine._wake_fd)


def test_a_task_message_is_written_when_the_round_ends() -> None:
    engine, worker, r, _ = _engine_with_a_worker_on_a_pipe()
    os.set_blocking(r, False)
    engine._launch_function(_launch(1))
    try:
        os.read(r, 1)
        raise AssertionError("the message was written in the middle of the round")
    except BlockingIOError:
        pass
    engine.wait(0)  # the loop's next wait: the round is over
    os.set_blocking(r, True)
    assert pickle.loads(Frames(r).next())[0] == 1
    assert not engine._unsent and not worker.unsent
    _close(engine, worker, r)


def test_without_deferral_a_message_is_written_at_once() -> None:
    """For a caller that launches and does not wait after it (a Dask node's session launching held tasks)."""
    engine, worker, r, _ = _engine_with_a_worker_on_a_pipe()
    engine.defer_sends = False
    engine._launch_function(_launch(1))
    assert pickle.loads(Frames(r).next())[0] == 1
    _close(engine, worker, r)


def test_the_runtime_defers_its_local_engines_sends() -> None:
    from steerflow import Runtime

    with Runtime(Allocation.declare(nodes=1, cores=1)) as rt:
        assert rt.submit(abs, -3).result(timeout=60) == 3
        assert rt.engine.defer_sends is True


def test_a_task_queued_behind_goes_after_the_one_it_waits_for() -> None:
    engine, worker, r, _ = _engine_with_a_worker_on_a_pipe()
    engine._launch_function(_launch(1))
    assert engine.launch_behind(_launch(2), 1)  # written at once: what was queued for this worker goes first
    engine.send_all()  # (the round ends: nothing left to send, nothing sent twice)
    messages = Frames(r)
    first, second = pickle.loads(messages.next()), pickle.loads(messages.next())
    assert (first[0], first[6], second[0], second[6]) == (1, False, 2, True)
    os.set_blocking(r, False)
    try:
        os.read(r, 1)
        raise AssertionError("a message was sent twice")
    except BlockingIOError:
        pass
    _close(engine, worker, r)
