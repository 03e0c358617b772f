"""Function tasks that misbehave inside their warm worker: the task fails (or not) alone, and the worker serves the
next tasks correctly. Each test failed on the code before its fix."""
from __future__ import annotations

import os

import pytest

import steerflow as sf

BOUND = 60


def echo(x):
    return x, os.getpid()


def forks_and_the_child_returns(how: str) -> str:
    pid = os.fork()
    if pid == 0:
        if how == "raise":
            raise ValueError("from the child")
        return "from the child"
    os.waitpid(pid, 0)
    return "from the task"


def raises_what_cannot_be_pickled_or_printed():
    class Odd(Exception):
        def __reduce__(self):
            raise TypeError("cannot pickle me")

        def __str__(self):
            raise RuntimeError("cannot print me")

    raise Odd()


@pytest.mark.parametrize("how", ["return", "raise"])
def test_a_forked_child_that_returns_from_the_task_does_not_become_a_second_worker(make_runtime, how, capfd):
    rt = make_runtime(allocation=sf.Allocation.declare(nodes=1, cores=1))
    _, worker = rt.submit(echo, 0).result(timeout=BOUND)
    assert rt.submit(forks_and_the_child_returns, how).result(timeout=BOUND) == "from the task"
    # (before: the child answered for the worker, then both read its next task messages)
    assert [rt.submit(echo, i).result(timeout=BOUND) for i in range(8)] == [(i, worker) for i in range(8)]
    assert "end a forked child with os._exit" in capfd.readouterr().err


def test_an_exception_that_cannot_be_pickled_nor_printed_fails_the_task_not_the_worker(make_runtime):
    rt = make_runtime(allocation=sf.Allocation.declare(nodes=1, cores=1), lost_retries=0)
    _, worker = rt.submit(echo, 0).result(timeout=BOUND)
    with pytest.raises(RuntimeError, match="Odd: <its str.. raised>"):
        rt.submit(raises_what_cannot_be_pickled_or_printed).result(timeout=BOUND)
    assert rt.submit(echo, 1).result(timeout=BOUND) == (1, worker)  # (before: the worker died of it)
