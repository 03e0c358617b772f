"""Runtime as a `concurrent.futures.Executor`: the standard library's own expectations.

Modelled on what CPython's test_concurrent_futures asks of every executor: map's order,
laziness and overall timeout, shutdown(wait, cancel_futures), and use as a context manager.
"""

from __future__ import annotations

import inspect
import itertools
import os
import time
from concurrent.futures import Executor, ProcessPoolExecutor, TimeoutError, as_completed

import pytest

from steerflow import Allocation, Runtime, TaskState
from steerflow.proctree import descendants

from .conftest import wait_until


def sleep_and_return(delay: float, value: object) -> object:
    time.sleep(delay)
    return value


def divide(a: float, b: float) -> float:
    return a / b


def kwargs_back(**kwargs: object) -> dict:
    return kwargs


def framework_sum_of_squares(executor: Executor, n: int) -> int:
    """Code written for any Executor, knowing nothing of steerflow."""
    futures = [executor.submit(pow, i, 2) for i in range(n)]
    return sum(f.result() for f in as_completed(futures))


def test_is_an_executor_with_the_standard_signatures():
    assert issubclass(Runtime, Executor)
    for name in ("submit", "map", "shutdown"):
        ours = inspect.signature(getattr(Runtime, name)).parameters
        theirs = inspect.signature(getattr(ProcessPoolExecutor, name)).parameters
        for param in theirs.values():  # every standard parameter, same kind and default
            assert param.name in ours, f"{name}() lacks {param.name}"
            assert ours[param.name].kind == param.kind, f"{name}({param.name}) is {ours[param.name].kind}"
            assert ours[param.name].default == param.default, f"{name}({param.name}) default differs"


def test_submit_passes_any_keyword_to_the_function(runtime):
    assert runtime.submit(kwargs_back, fn=1, self=2).result(timeout=30) == {"fn": 1, "self": 2}
    assert framework_sum_of_squares(runtime, 20) == sum(i * i for i in range(20))


def test_map_yields_results_in_order_not_completion_order(runtime):
    delays = [0.3, 0.0, 0.2, 0.0, 0.1]
    assert list(runtime.map(sleep_and_return, delays, range(5))) == [0, 1, 2, 3, 4]
    assert list(runtime.map(pow, range(10), [2] * 3)) == [0, 1, 4]  # zip: the shortest iterable wins
    assert list(runtime.map(abs, [])) == []


def test_map_returns_before_the_results_exist(runtime):
    t0 = time.monotonic()
    results = runtime.map(sleep_and_return, [2.0, 0.0], ["slow", "fast"])
    assert time.monotonic() - t0 < 1.5, "map() waited for results; it must return an iterator at once"
    assert not isinstance(results, list)
    assert next(results) == "slow"
    assert list(results) == ["fast"]


def watch(runtime):
    """Every task the runtime saw, with its latest state and description (finished records are not kept)."""
    seen = {}
    runtime.add_listener(lambda record, state: seen.__setitem__(record.id, (state, record.spec)))
    return seen


def test_map_timeout_is_for_the_whole_iteration_and_cancels_the_rest(runtime):
    assert list(runtime.map(sleep_and_return, [0.1, 0.1], range(2), timeout=120)) == [0, 1]  # workers warm
    seen = watch(runtime)
    got = []
    with pytest.raises(TimeoutError):  # the iterator's deadline, not a task's own timeout (that is TaskTimeout)
        for value in runtime.map(sleep_and_return, [0.0, 0.0, 60.0, 0.0], range(4), timeout=5):
            got.append(value)
    assert got == [0, 1][:len(got)]  # in order, up to the deadline (both, unless the machine stalls)
    # the task that timed out (and those after it) are cancelled, not left running for a minute
    assert wait_until(lambda: len(seen) == 4 and all(state.finished for state, _ in list(seen.values())),
                      timeout=30)
    states = [seen[i][0] for i in sorted(seen)]
    assert states[2] is TaskState.CANCELLED


def test_map_raises_the_task_error_at_its_position(runtime):
    results = runtime.map(divide, [1, 2, 3], [1, 0, 1])
    assert next(results) == 1.0
    with pytest.raises(ZeroDivisionError):
        next(results)


def test_map_chunksize_groups_calls_into_fewer_tasks(runtime):
    seen = watch(runtime)
    assert list(runtime.map(pow, range(25), itertools.repeat(2), chunksize=10)) == [i * i for i in range(25)]
    assert len(seen) == 3
    with pytest.raises(ValueError):
        runtime.map(pow, range(3), range(3), chunksize=0)


def test_map_buffersize_reads_an_endless_iterable_lazily(runtime):
    seen = watch(runtime)
    results = runtime.map(pow, itertools.count(), itertools.repeat(2), buffersize=4)
    assert [next(results) for _ in range(10)] == [i * i for i in range(10)]
    assert len(seen) <= 10 + 4
    results.close()


def test_map_takes_task_options_as_extra_keywords(runtime):
    seen = watch(runtime)
    results = runtime.map(os.getpid, cores=2, pool="wide", task_timeout=30, timeout=30)
    assert list(results) == []  # no iterables: no calls
    pids = list(runtime.map(sleep_and_return, [0.0] * 4, range(4), cores=2, pool="wide", task_timeout=30))
    assert pids == [0, 1, 2, 3]
    specs = [spec for _, spec in seen.values()]
    assert len(specs) == 4 and {s.cores for s in specs} == {2} and {s.timeout for s in specs} == {30}


def test_submit_after_shutdown_raises_runtime_error(make_runtime):
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=1))
    rt.shutdown()
    with pytest.raises(RuntimeError):
        rt.submit(pow, 2, 2)
    rt.shutdown()  # a second call is harmless


def test_shutdown_wait_true_lets_every_task_finish(make_runtime):
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=1))
    futures = [rt.submit(sleep_and_return, 0.05, i) for i in range(6)]
    rt.shutdown(wait=True)
    assert [f.result(timeout=0) for f in futures] == list(range(6))


def test_shutdown_wait_false_returns_at_once_and_tasks_still_finish(make_runtime):
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=1))
    futures = [rt.submit(sleep_and_return, 1.0, i) for i in range(3)]
    t0 = time.monotonic()
    rt.shutdown(wait=False)
    assert time.monotonic() - t0 < 2.5, "shutdown(wait=False) blocked until the tasks ended (3 s)"
    assert [f.result(timeout=60) for f in futures] == [0, 1, 2]
    with pytest.raises(RuntimeError):
        rt.submit(pow, 2, 2)
    rt.shutdown(wait=True)  # joins the drained runtime


def test_shutdown_cancel_futures_cancels_only_what_has_not_started(make_runtime):
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=2))
    futures = [rt.submit(sleep_and_return, 0.1, i) for i in range(50)]
    assert wait_until(lambda: any(f.running() for f in futures))
    rt.shutdown(cancel_futures=True)
    cancelled = [f for f in futures if f.cancelled()]
    assert len(cancelled) > 20
    others = [f for f in futures if not f.cancelled()]
    assert others, "a running task was cancelled; cancel_futures leaves running tasks alone"
    for future in others:
        assert future.done() and future.exception() is None


def test_shutdown_kill_also_stops_running_tasks(make_runtime):
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=1))
    running = rt.submit(sleep_and_return, 60.0, "never")
    assert wait_until(lambda: running.state is TaskState.RUNNING)
    t0 = time.monotonic()
    rt.shutdown(kill=True)
    assert running.cancelled() and time.monotonic() - t0 < 30


def test_context_manager_waits_and_leaves_no_process(tmp_path):
    before = set(descendants(os.getpid()))
    with Runtime(Allocation.declare(nodes=1, cores=2), run_dir=tmp_path) as rt:
        assert list(rt.map(abs, range(-5, 5))) == [5, 4, 3, 2, 1, 0, 1, 2, 3, 4]
        late = rt.submit(sleep_and_return, 0.2, "late")
    assert late.done() and late.result() == "late"
    assert wait_until(lambda: not (set(descendants(os.getpid())) - before), timeout=10)


def test_context_manager_on_an_error_still_waits_like_any_executor(tmp_path):
    with pytest.raises(KeyError):
        with Runtime(Allocation.declare(nodes=1, cores=1), run_dir=tmp_path) as rt:
            future = rt.submit(sleep_and_return, 0.2, "kept")
            raise KeyError("boom")
    assert future.result(timeout=0) == "kept"


def test_context_manager_on_an_interrupt_kills_the_tasks(tmp_path):
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        with Runtime(Allocation.declare(nodes=1, cores=1), run_dir=tmp_path) as rt:
            future = rt.submit(sleep_and_return, 60.0, "never")
            assert wait_until(lambda: future.state is TaskState.RUNNING)
            raise KeyboardInterrupt
    assert future.cancelled() and time.monotonic() - t0 < 30
