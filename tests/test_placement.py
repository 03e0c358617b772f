"""Node bookkeeping on its own: bit helpers, best fit, spread, whole-node runs, take and give back."""

from __future__ import annotations

import random

from steerflow.placement import NodeIndex, Slot, _bits, _first_run, slots_of
from steerflow.resources import Allocation, Node


def index(nodes: int = 3, cores: int = 4, gpus: int = 0, memory_mb: int = 0) -> NodeIndex:
    return NodeIndex(Allocation.declare(nodes=nodes, cores=cores, gpus=gpus, memory_mb=memory_mb).nodes)


def test_bits():
    assert _bits(0) == ()
    assert _bits(0b101101) == (0, 2, 3, 5)
    assert _bits(1 << 200) == (200,)


def test_first_run_matches_brute_force():
    rng = random.Random(7)
    for _ in range(2000):
        width = rng.randint(1, 40)
        mask = rng.getrandbits(width)
        n = rng.randint(1, 12)
        want = next((i for i in range(width) if all(mask >> j & 1 for j in range(i, i + n))), -1)
        assert _first_run(mask, n) == want, (bin(mask), n)


def test_take_lowest_indices_and_best_fit():
    ix = index(nodes=3, cores=4, gpus=2)
    slots: list[Slot] = []
    held = ix._take(1, 2, 1, 1, 0, slots)
    assert slots == [Slot(1, (0,), (0,), 0), Slot(1, (1,), (1,), 0)]
    assert held == (1, 0b11, 0b11, 2, 2, 0)
    # node 1 now has the fewest free cores that still hold 2 cores
    assert ix._best_node(2, 0, 0) == 1
    assert ix._best_node(2, 1, 0) in (0, 2)  # node 1 has no GPU left
    assert ix._best_node(5, 0, 0) == -1
    assert ix._wf == 0b101
    ix._give(held)
    assert ix._wf == 0b111 and ix._nc == [4, 4, 4] and ix._ng == [2, 2, 2]


def test_slots_built_from_a_held_tuple_match_a_rank_by_rank_take():
    """The hot path records masks only; `slots_of` must give each rank what a rank-by-rank take gives."""
    rng = random.Random(11)
    for _ in range(300):
        cores, gpus = rng.randint(1, 40), rng.randint(0, 8)
        ix = index(nodes=1, cores=cores, gpus=gpus)
        for _ in range(rng.randint(0, 3)):  # some room already taken, in pieces, to fragment the masks
            if ix._nc[0] >= 1:
                ix._take(0, 1, rng.randint(1, ix._nc[0]), 0, 0)
        if ix._nc[0] < 1:
            continue
        k = rng.randint(1, ix._nc[0])
        g = rng.randint(0, ix._ng[0] // max(1, ix._nc[0] // k)) if gpus else 0
        t = rng.randint(1, min(ix._nc[0] // k, ix._ng[0] // g if g else 99))
        fc, fg = ix._fc[0], ix._fg[0]
        want = []
        for _ in range(t):  # rank by rank, lowest free indices first
            rc = _bits(fc)[:k]
            rg = _bits(fg)[:g]
            for c in rc:
                fc &= ~(1 << c)
            for x in rg:
                fg &= ~(1 << x)
            want.append(Slot(0, rc, rg, 5))
        got: list[Slot] = []
        held = ix._take(0, t, k, g, 5, got)
        assert got == want and slots_of(held, k, g, 5) == want
        assert ix._fc[0] == fc and ix._fg[0] == fg


def test_spread_roomiest_first_and_memory():
    ix = NodeIndex((Node("a", 4, memory_mb=1000), Node("b", 8, memory_mb=1000), Node("c", 2)))
    assert ix._spread(10, 1, 0, 0) == [(1, 8), (0, 2)]
    # memory caps node b at 2 ranks of 400 MB; node c's memory is unknown, so not limited
    assert ix._spread(6, 1, 0, 400) == [(1, 2), (0, 2), (2, 2)]
    assert ix._spread(7, 1, 0, 400) is None
    assert ix.free_memory_mb(0) == 1000 and ix.free_memory_mb(2) is None


def test_take_whole_holds_everything():
    ix = index(nodes=4, cores=4, gpus=1, memory_mb=100)
    assert ix._eligible_mask(3, 2, 0, 10, 2) == 0b1111  # two ranks of 2 cores a node fit
    assert ix._eligible_mask(3, 3, 0, 10, 2) == 0         # two ranks of 3 cores do not
    start = _first_run(ix._wf & ix._eligible_mask(3, 1, 0, 10, 2), 2)
    slots: list[Slot] = []
    held = ix._take_whole(start, 2, 3, 1, 0, 10, slots)
    assert [s.node for s in slots] == [0, 1, 1]  # node j gets ranks j*3//2 .. (j+1)*3//2 - 1
    assert held == [(0, 0b1111, 0b1, 4, 1, 100), (1, 0b1111, 0b1, 4, 1, 100)]
    assert ix._nc[:2] == [0, 0] and ix.free_memory_mb(0) == 0 and ix._wf == 0b1100
    assert ix._count_fits(1, 0) == 8
    for h in held:
        ix._give(h)
    assert ix._wf == 0b1111 and ix._count_fits(1, 0) == 16 and ix._count_fits(2, 1) == 4
