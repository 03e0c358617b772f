"""The data-shape and floor benchmarks compute what they say (correctness only; timings are not tested)."""

from __future__ import annotations

import pytest

from steerflow.bench import floor, shapes
from steerflow.bench.runtime import shape_rows


@pytest.mark.parametrize("shape", shapes.SHAPES)
@pytest.mark.parametrize("resolve", [False, True])
def test_each_shape_runs_on_the_runtime_with_futures_or_values(runtime, shape, resolve):
    elapsed = shapes.run_shape(shape, runtime.submit, shapes._future_result, 5, 300_000, resolve)
    assert elapsed > 0


def test_list_schedule_makespan_backfills_and_respects_cores():
    assert floor.list_schedule_makespan([(1, 1.0), (1, 1.0), (1, 1.0)], 2) == 2.0
    assert floor.list_schedule_makespan([(2, 1.0), (1, 0.5), (1, 0.5)], 2) == 1.5
    # a 2-core task waits for both cores while a 1-core task behind it backfills the free one
    assert floor.list_schedule_makespan([(1, 2.0), (2, 1.0), (1, 1.0)], 2) == 3.0


def test_shape_rows_put_the_pool_in_the_floor_column():
    rows = shape_rows({"steerflow_futures_bag_1mb_s": 1.0, "steerflow_resolved_bag_1mb_s": 3.0,
                       "pool_resolved_bag_1mb_s": 2.0, "dask_futures_bag_1mb_s": 4.0})
    assert rows == {"bag_1mb_futures_s": 1.0, "floor_bag_1mb_futures_s": 2.0, "bag_1mb_futures_vs_floor": 0.5,
                    "bag_1mb_resolved_s": 3.0, "floor_bag_1mb_resolved_s": 2.0, "bag_1mb_resolved_vs_floor": 1.5,
                    "dask_bag_1mb_futures_s": 4.0}


def test_the_dask_benchmarks_shape_rows_put_the_local_engine_in_the_floor_column():
    from steerflow.bench import dask_rows

    rows = dask_rows.shape_rows({"sfdask_futures_bag_1mb_s": 2.0, "sfdask_resolved_bag_1mb_s": 6.0,
                                 "steerflow_futures_bag_1mb_s": 1.0, "steerflow_resolved_bag_1mb_s": 3.0,
                                 "pdask_futures_bag_1mb_s": 5.0})
    assert rows == {"bag_1mb_futures_s": 2.0, "floor_bag_1mb_futures_s": 1.0, "bag_1mb_futures_vs_floor": 2.0,
                    "bag_1mb_resolved_s": 6.0, "floor_bag_1mb_resolved_s": 3.0, "bag_1mb_resolved_vs_floor": 2.0,
                    "dask_bag_1mb_futures_s": 5.0}


def test_each_executor_and_mode_takes_its_turn_first():
    runs = ["sf-futures", "sf-resolved", "pool"]
    firsts = [shapes.rotated(runs, r)[0] for r in range(6)]
    assert sorted(firsts) == sorted(runs * 2)
    assert shapes.rotated(runs, 1) == ["sf-resolved", "pool", "sf-futures"]
    assert shapes.rotated([], 3) == []


def test_every_timed_run_comes_right_after_a_warm_up_on_its_own_executor(monkeypatch):
    """Each timed run follows an untimed bag on the same executor: none is measured cold after another's."""
    from concurrent.futures import ThreadPoolExecutor

    calls: list[tuple[str, str]] = []  # (executor, what ran: "warm" or the timed shape)
    real = shapes.run_shape

    def recording(shape, submit, result, n, size, resolve):
        calls.append((submit.__self__.name, "warm" if (shape, n, size) == ("bag", 4, 0) else shape))
        return real(shape, submit, result, n, size, resolve)

    def make(name):
        def executor(workers):
            ex = ThreadPoolExecutor(workers)
            ex.name = name
            return ex, ex.submit, shapes._future_result, ex.shutdown
        return executor

    monkeypatch.setattr(shapes, "run_shape", recording)
    monkeypatch.setitem(shapes.EXECUTORS, "a", (make("a"), (False, True)))
    monkeypatch.setitem(shapes.EXECUTORS, "b", (make("b"), (True,)))
    shapes.measure(n=6, sizes=(0,), workers=2, repeat=2, shapes=("bag", "reduce"), executors=("a", "b"))
    timed = [i for i, (_, what) in enumerate(calls) if what != "warm"]
    assert len(timed) == 2 * 2 * 3  # repeats x shapes x (a futures, a resolved, b)
    for i in timed:
        assert calls[i - 1] == (calls[i][0], "warm"), calls[i - 1:i + 1]


def test_dask_runs_in_a_phase_of_its_own_never_alive_during_the_others_runs(monkeypatch):
    """Dask's scheduler lives in the benchmark's process and works on after its runs: it must not be alive
    while another executor is timed (its aftermath fell on steerflow's futures run every time)."""
    from concurrent.futures import ThreadPoolExecutor

    events: list[tuple[str, str]] = []  # (executor, "start" | "close" | a timed shape)
    real = shapes.run_shape

    def recording(shape, submit, result, n, size, resolve):
        if (shape, n, size) != ("bag", 4, 0):
            events.append((submit.__self__.name, shape))
        return real(shape, submit, result, n, size, resolve)

    def make(name):
        def executor(workers):
            ex = ThreadPoolExecutor(workers)
            ex.name = name
            events.append((name, "start"))

            def close():
                events.append((name, "close"))
                ex.shutdown()
            return ex, ex.submit, shapes._future_result, close
        return executor

    monkeypatch.setattr(shapes, "run_shape", recording)
    monkeypatch.setitem(shapes.EXECUTORS, "a", (make("a"), (False, True)))
    monkeypatch.setitem(shapes.EXECUTORS, "dask", (make("dask"), (False,)))
    monkeypatch.setitem(shapes.EXECUTORS, "b", (make("b"), (True,)))
    shapes.measure(n=6, sizes=(0,), workers=2, repeat=2, shapes=("bag", "reduce"), executors=("a", "dask", "b"))
    alive: set[str] = set()
    timed = 0
    for name, what in events:
        if what == "start":
            alive.add(name)
        elif what == "close":
            alive.discard(name)
        elif what in shapes.SHAPES and what != "warm":
            timed += 1
            assert name in alive and ("dask" not in alive or alive == {"dask"}), (name, alive)
    assert timed == 2 * 2 * 4  # repeats x shapes x (a futures, a resolved, b, dask)
