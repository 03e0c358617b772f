"""Nodes that join and leave while the scheduler runs (the Dask engine's workers)."""

from __future__ import annotations

import pytest

from steerflow.resources import Allocation, Node
from steerflow.scheduler import Request, Scheduler


def nodes(*spec: tuple[str, int, int]) -> Allocation:
    return Allocation(tuple(Node(name, cores, gpus) for name, cores, gpus in spec))


def test_a_node_that_joins_gets_placements_and_a_node_that_leaves_gets_none():
    s = Scheduler(nodes(("a", 2, 0)))
    for i in range(4):
        s.submit(Request(i))
    assert [p.slots[0].node for p in s.schedule()] == [0, 0]
    s.update_nodes(nodes(("a", 2, 0), ("b", 4, 2)))  # grows, keeping what runs on a
    assert s.free_cores() == 4 and s.free_gpus() == 2
    assert [p.slots[0].node for p in s.schedule()] == [1, 1]
    s.update_nodes(s.allocation, offline={1})  # b leaves: its free room is gone
    assert s.free_cores() == 0
    for i in (2, 3):
        s.release(i)  # its tasks end (reported lost): their room stays with the offline node
    assert s.free_cores() == 0 and s.free_gpus() == 0
    s.submit(Request(9, gpus_per_rank=1))
    assert s.schedule() == []
    s.release(0)
    assert s.free_cores() == 1
    s.update_nodes(s.allocation, offline=set())  # b is back
    assert s.free_cores() == 5 and s.free_gpus() == 2
    assert [p.slots[0].node for p in s.schedule()] == [1]


def test_whole_node_requests_skip_offline_nodes():
    s = Scheduler(nodes(("a", 2, 0), ("b", 2, 0), ("c", 2, 0)))
    s.update_nodes(s.allocation, offline={1})
    s.submit(Request(1, ranks=2, nodes=2))
    assert s.schedule() == []  # a and c are not consecutive
    s.update_nodes(s.allocation, offline=set())
    assert [sl.node for sl in s.schedule()[0].slots] == [0, 1]


def test_nodes_are_only_ever_appended():
    s = Scheduler(nodes(("a", 2, 0), ("b", 2, 0)))
    with pytest.raises(ValueError, match="appended"):
        s.update_nodes(nodes(("b", 2, 0), ("a", 2, 0)))
