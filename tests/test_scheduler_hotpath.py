"""The scheduler's hot path: what it keeps per placed request, lazily built slots, and one bypass per placement."""

from __future__ import annotations

import gc
import random

from steerflow.placement import Slot
from steerflow.resources import Allocation, Node
from steerflow.scheduler import Placement, Request, Scheduler


def test_placed_rebuilds_an_equal_placement_for_every_kind_of_request():
    s = Scheduler(Allocation((Node("a", 4), Node("b", 4), Node("c", 8, gpus=2, memory_mb=1000),
                              Node("d", 8, gpus=2, memory_mb=1000))))
    requests = [Request(1, ranks=2, cores_per_rank=2, gpus_per_rank=1, memory_mb_per_rank=100),  # one node
                Request(2, ranks=5, cores_per_rank=2),                                            # spread
                Request(3, ranks=3, cores_per_rank=1, nodes=2, priority=2, pool="mpi")]           # whole nodes
    for req in requests:
        s.submit(req)
    placements = {p.request.id: p for p in s.schedule()}
    assert sorted(placements) == [1, 2, 3]
    for req in requests:
        again = s.placed(req.id)
        assert again is not None and again.request == req and again == placements[req.id]
        assert again.slots == placements[req.id].slots
    assert placements[3].slots == (Slot(0, (0,), (), 0), Slot(1, (0,), (), 0), Slot(1, (1,), (), 0))
    assert {slot.node for slot in placements[2].slots} == {2, 3}


def test_the_scheduler_keeps_no_tracked_object_per_running_request():
    """A full machine holds ~10^5 placed requests: the collector must not walk one object each (bench scheduler)."""
    s = Scheduler(Allocation.declare(nodes=50, cores=8, gpus=2))
    rng = random.Random(3)
    for i in range(300):
        s.submit(Request(i, ranks=rng.choice([1, 1, 3]), cores_per_rank=rng.choice([1, 2]),
                         gpus_per_rank=rng.choice([0, 0, 1]), priority=rng.choice([0, 1])))
    placed = s.schedule()
    assert len(placed) > 100
    del placed
    for _ in range(3):  # a tuple is untracked once the tuples inside it are: a pass per level of nesting
        gc.collect()
    assert s.n_placed > 100
    assert not any(gc.is_tracked(record) for record in s._placed.values())


def test_slots_are_built_when_read_and_kept():
    s = Scheduler(Allocation.declare(nodes=1, cores=4, gpus=1))
    s.submit(Request(7, ranks=2, cores_per_rank=2, gpus_per_rank=0))
    (p,) = s.schedule()
    assert p.slots is p.slots and p.slots == (Slot(0, (0, 1), (), 0), Slot(0, (2, 3), (), 0))
    assert Placement(p.request, p.slots) == p
    assert "Placement(request=Request(id=7" in repr(p)


def test_a_blocked_head_displaced_and_restored_counts_each_bypass_once():
    """A head displaced by a higher-priority request of its shape, which is then withdrawn, is tried once a pass."""
    s = Scheduler(Allocation.declare(nodes=1, cores=4))
    s.submit(Request(0, cores_per_rank=3))
    assert [p.request.id for p in s.schedule()] == [0]
    s.submit(Request(1, cores_per_rank=2))               # blocked: 1 core free
    assert s.schedule() == []
    s.submit(Request(2, cores_per_rank=2, priority=5))  # same shape, ahead of 1
    assert s.withdraw(2)                                 # 1 is its shape's head again, before any pass
    s.submit(Request(3))
    assert [p.request.id for p in s.schedule()] == [3]
    assert s.bypasses(1) == 1                            # one placement went past it: one bypass
