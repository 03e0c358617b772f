"""The mixed-set benchmark row warms both executors alike: every process each one will use is started."""

from __future__ import annotations

from concurrent.futures import wait

import pytest

from steerflow.bench.floor import mixed_set, warm_up_set
from steerflow.bench.runtime import sleep_for
from steerflow.resources import Allocation
from steerflow.runtime import Runtime
from steerflow.task import Executable, Function


def test_the_warm_up_has_every_kind_and_shape_of_the_timed_set():
    timed = {(kind, cores) for kind, cores, _ in mixed_set()}
    warm = warm_up_set(2)
    assert timed <= {(kind, cores) for kind, cores, _ in warm}
    assert sum(1 for kind, _, _ in warm if kind == "fn1") == 2  # one per pool worker / 1-core worker


def test_after_the_warm_up_a_two_core_function_finds_its_worker_started(tmp_path):
    with Runtime(Allocation.declare(nodes=1, cores=2), run_dir=tmp_path / "run") as rt:
        wait([rt.submit(Executable(["sleep", str(d)]) if k == "exe" else Function(sleep_for, (d,), cores=c))
              for k, c, d in warm_up_set(2)])
        bindings = {worker.binding[1] for worker in rt.engine._idle}  # (threads: one per core)
        assert bindings == {"1", "2"}
        started = {worker.proc.pid for worker in rt.engine._idle}
        rt.submit(Function(sleep_for, (0.01,), cores=2)).result(timeout=60)
        assert {worker.proc.pid for worker in rt.engine._idle} == started  # no worker started for it


def test_the_same_policy_ideal_is_the_schedulers_own_reservation_at_zero_overhead():
    """A wide task reserving after max_bypass=0 bypasses delays the narrow ones behind it; unbounded backfill
    (the headline ideal) starves it instead. With bypasses unbounded both ideals agree, on the benchmark's set too."""
    from steerflow.bench.floor import list_schedule_makespan, same_policy_makespan

    tasks = [(1, 1.0), (2, 0.1), (1, 1.0), (1, 1.0), (1, 1.0)]
    assert list_schedule_makespan(tasks, 2) == pytest.approx(2.1)
    assert same_policy_makespan(tasks, 2, max_bypass=0) == pytest.approx(3.1)
    assert same_policy_makespan(tasks, 2, max_bypass=10**9) == pytest.approx(2.1)
    timed = [(cores, seconds) for _, cores, seconds in mixed_set()]
    assert same_policy_makespan(timed, 2, 10**9) == pytest.approx(list_schedule_makespan(timed, 2))
    assert same_policy_makespan(timed, 2, 64) >= list_schedule_makespan(timed, 2)
