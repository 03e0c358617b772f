"""What the scheduler keeps for each placed request, by id: whatever the ids (in order, far apart, negative,
renamed), a record is found, released once, counted, and never shadows another."""

from __future__ import annotations

import random

import pytest

from steerflow.resources import Allocation
from steerflow.scheduler import Request, Scheduler


def test_ids_of_every_kind_are_placed_found_and_released():
    s = Scheduler(Allocation.declare(nodes=2, cores=8))
    ids = [0, 10**9, -5, 3, 40_000, 1, -(10**12), 2, 39_999]  # in order, far ahead, negative, behind the window
    for rid in ids:
        s.submit(Request(rid))
    assert sorted(p.request.id for p in s.schedule()) == sorted(ids)
    assert s.n_placed == len(ids)
    for rid in ids:
        placed = s.placed(rid)
        assert placed is not None and placed.request.id == rid
        with pytest.raises(ValueError, match="already placed"):
            s.submit(Request(rid))
    rng = random.Random(1)
    rng.shuffle(ids)
    for n, rid in enumerate(ids):
        s.release(rid)
        assert s.placed(rid) is None and s.n_placed == len(ids) - n - 1
        with pytest.raises(KeyError, match="not placed"):
            s.release(rid)
    assert s.free_cores() == 16


def test_a_long_running_request_survives_the_window_sliding_past_it():
    """100,000 short tasks after one long one (a store of records by id that slides along must keep it)."""
    s = Scheduler(Allocation.declare(nodes=1, cores=4))
    s.submit(Request(0, cores_per_rank=2))
    s.submit(Request(1))
    assert len(s.schedule()) == 2
    for rid in range(2, 100_000):
        s.submit(Request(rid))
        (p,) = s.schedule()
        assert p.request.id == rid and s.n_placed == 3
        s.release(rid - 1)
        assert s.n_placed == 2
    assert s.placed(0) is not None and s.placed(0).slots[0].cores == (0, 1)
    s.release(0)
    s.release(99_999)
    assert s.n_placed == 0 and s.free_cores() == 4


def test_rename_moves_a_record_to_any_id_and_back():
    s = Scheduler(Allocation.declare(nodes=1, cores=2))
    s.submit(Request(7))
    s.schedule()
    s.rename(7, -7)  # (what pipelining does: a negative id holds the cores for the running task)
    assert s.placed(7) is None and s.placed(-7) is not None and s.n_placed == 1
    s.submit(Request(7))  # the id is free again
    assert [p.request.id for p in s.schedule()] == [7]
    with pytest.raises(KeyError, match="already known"):
        s.rename(7, -7)
    s.release(-7)
    s.release(7)
    assert s.n_placed == 0 and s.free_cores() == 2
