"""A placement's slots come from a bounded cache of recent places: equal to slots built afresh, whatever the shape."""

from __future__ import annotations

import random

from steerflow import placement
from steerflow.placement import Slot, slots_of
from steerflow.resources import Allocation
from steerflow.scheduler import Placement, Request, Scheduler


def _fresh(p: Placement) -> tuple[Slot, ...]:
    req = p.request
    held = p._held
    parts = [held] if held[0].__class__ is int else list(held)
    return tuple(s for part in parts for s in slots_of(part, req.cores_per_rank, req.gpus_per_rank,
                                                       req.memory_mb_per_rank))


def test_cached_slots_equal_slots_built_afresh_for_every_shape():
    s = Scheduler(Allocation.declare(nodes=3, cores=8, gpus=2, memory_mb=4000))
    rng = random.Random(5)
    running: list[int] = []
    seen_cached = 0
    for rid in range(3000):
        s.submit(Request(rid, ranks=rng.choice([1, 1, 2, 3]), cores_per_rank=rng.choice([1, 2]),
                         gpus_per_rank=rng.choice([0, 0, 1]), memory_mb_per_rank=rng.choice([0, 0, 500]),
                         pool=rng.choice(["a", "b"])))
        for p in s.schedule():
            held = p._held
            cached = held[0].__class__ is int and held in placement._SLOTS
            seen_cached += cached
            assert p.slots == _fresh(p), (rid, p)
            assert p.slots is p.slots
            assert s.placed(p.request.id).slots == p.slots  # (a placement rebuilt from the record: the same)
            running.append(p.request.id)
        while running and rng.random() < 0.6:
            s.release(running.pop(rng.randrange(len(running))))
    assert seen_cached > 100  # the same places came back, and were served from the cache


def test_the_cache_stays_bounded(monkeypatch):
    monkeypatch.setattr(placement, "_SLOTS_MAX", 8)
    monkeypatch.setattr(placement, "_SLOTS", {})
    s = Scheduler(Allocation.declare(nodes=40, cores=4))
    for rid in range(160):
        s.submit(Request(rid, cores_per_rank=1 + rid % 2))
    placed = s.schedule()
    assert len(placed) > 50
    for p in placed:
        assert p.slots == _fresh(p)
        assert len(placement._SLOTS) <= 8
