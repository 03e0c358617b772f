"""A request that needs more than its pool's quota even with nothing of the pool placed cannot run until the
quota changes: it must not reserve its pool (found by test_scheduler.py's state machine: it starved the pool)."""

from __future__ import annotations

from steerflow.resources import Allocation
from steerflow.scheduler import Request, Scheduler


def test_a_request_over_its_pools_quota_does_not_starve_the_pool() -> None:
    s = Scheduler(Allocation.declare(nodes=1, cores=4, gpus=1), quotas={"b": (None, 0)}, max_bypass=0)
    s.submit(Request(1, 1, 1, 1, pool="b", priority=1))  # one GPU in a pool allowed none
    for i in range(2, 5):
        s.submit(Request(i, pool="b"))
    assert sorted(p.request.id for p in s.schedule()) == [2, 3, 4]
    assert s.n_waiting == 1 and s.bypasses(1) == 0
    s.set_quota("b", None, 1)  # now it can run, and it does
    assert [p.request.id for p in s.schedule()] == [1]


def test_a_request_blocked_by_a_quota_it_can_meet_still_reserves_its_pool() -> None:
    s = Scheduler(Allocation.declare(nodes=1, cores=4), quotas={"b": (2, None)}, max_bypass=0)
    s.submit(Request(1, pool="b"))
    s.submit(Request(2, pool="b"))
    assert len(s.schedule()) == 2
    s.submit(Request(3, 1, 2, pool="b", priority=1))  # 2 cores: fits the quota once the pool's tasks end
    s.submit(Request(4, pool="b"))
    assert s.schedule() == []  # the pool is reserved for it
    s.release(1)
    s.release(2)
    assert [p.request.id for p in s.schedule()] == [3]
