"""The node index's invariants under random use: free room never negative and consistent with the masks,
every node in exactly the bucket of its free (cores, GPUs) (none when it has no free core), the per-GPU
node counts and the bitmaps exact, what pools hold counted right with and without quotas, and releasing
everything gives back exactly the empty allocation."""

from __future__ import annotations

import random

import pytest

from steerflow.resources import Allocation, Node
from steerflow.scheduler import Request, Scheduler


def check_index(s: Scheduler) -> None:
    """Every invariant of the node index (steerflow.placement.NodeIndex) that the hot paths keep by hand."""
    n = s._n
    seen: dict[int, int] = {}
    bits = 0
    assert len(s._buckets) == (max(s._cores) + 1) * s._gs
    for r in range(max(s._cores) + 1):
        for g in range(s._gs):
            bucket = s._buckets[r * s._gs + g]
            if r == 0:
                assert not bucket, "a node with no free core is in no bucket"
            for p, i in enumerate(bucket):
                assert i not in seen, f"node {i} is in two buckets"
                seen[i] = r * s._gs + g
                assert s._pos[i] == p
            if bucket:
                bits |= 1 << r * s._gs + g
    assert s._bm == bits, f"non-empty bucket bits {s._bm:b}, should be {bits:b}"
    for i in range(n):
        fc, fg, nc, ng, fm = s._fc[i], s._fg[i], s._nc[i], s._ng[i], s._fm[i]
        assert 0 <= nc <= s._cores[i] and 0 <= ng <= s._gpus[i] and 0 <= fm <= s._mem[i]
        assert 0 <= fc < 1 << s._cores[i] and 0 <= fg < 1 << s._gpus[i]
        assert fc.bit_count() == nc and fg.bit_count() == ng
        assert seen.get(i) == (nc * s._gs + ng if nc else None)
        whole = nc == s._cores[i] and ng == s._gpus[i] and fm == s._mem[i]
        assert s._isfree[i] == whole and bool(s._wf >> i & 1) == whole
    assert s._gcount == [sum(1 for i in range(n) if s._ng[i] == g) for g in range(s._gs)]
    assert s.free_cores() == sum(s._nc) and s.free_gpus() == sum(s._ng)


def _allocation(rng: random.Random) -> Allocation:
    return Allocation(tuple(Node(f"n{i}", rng.randint(1, 8), rng.randint(0, 3), rng.choice([0, 0, 2000]))
                            for i in range(rng.randint(1, 10))))


def _request(rng: random.Random, rid: int) -> Request:
    ranks = rng.choice([1, 1, 1, 2, 3])
    nodes = rng.choice([None] * 6 + [1, 2])
    return Request(rid, ranks, rng.choice([1, 1, 2, 3]), rng.choice([0, 0, 1]), rng.choice([0, 0, 0, 700]),
                   min(nodes, ranks) if nodes else None, rng.choice([0, 0, 1]), rng.choice("abc"))


def _cores_held(s: Scheduler, alloc: Allocation, req: Request) -> int:
    if req.nodes is None:
        return req.ranks * req.cores_per_rank
    return sum(alloc.nodes[i].cores for i in {slot.node for slot in s.placed(req.id).slots})  # whole nodes


@pytest.mark.parametrize("seed", range(40))
def test_the_node_index_stays_consistent_and_a_full_release_restores_it_exactly(seed):
    rng = random.Random(seed)
    alloc = _allocation(rng)
    s = Scheduler(alloc, max_bypass=rng.choice([0, 2, 64]))
    placed: dict[int, Request] = {}
    offline: frozenset[int] = frozenset()
    rid = 0
    for step in range(200):
        x = rng.random()
        if x < 0.45:
            rid += 1
            try:
                s.submit(_request(rng, rid))
            except ValueError:
                pass  # can never run here
        elif x < 0.7:
            for p in s.schedule():
                placed[p.request.id] = p.request
        elif x < 0.9 and placed:
            victim = rng.choice(sorted(placed))
            del placed[victim]
            s.release(victim)
        elif x < 0.95:
            pool = rng.choice("abc")
            s.set_quota(pool, rng.choice([None, 3, 8]), rng.choice([None, 1, 4]))
        elif x < 0.97 and len(alloc.nodes) < 14:  # the allocation grows by a node
            alloc = Allocation(alloc.nodes + (Node(f"g{step}", rng.randint(1, 8), rng.randint(0, 3)),))
            s.update_nodes(alloc, offline)
        else:  # a node leaves, or comes back
            offline = offline ^ {rng.randrange(len(alloc.nodes))}
            s.update_nodes(alloc, offline)
        check_index(s)
        for pool in "abc":  # what a pool holds: counted under a quota, added up without one; the same either way
            cores = sum(_cores_held(s, alloc, req) for req in placed.values() if req.pool == pool)
            assert s.usage(pool)[0] == cores, (seed, step, pool)
    s.update_nodes(alloc, frozenset())  # every node back
    check_index(s)
    fresh = Scheduler(alloc)  # (the allocation may have grown)
    empty = (list(fresh._fc), list(fresh._fg), list(fresh._nc), list(fresh._ng), list(fresh._fm), fresh._bm)
    while s.n_waiting:  # drain: every waiting request fits the empty allocation, and quotas go
        for pool in "abc":
            s.set_quota(pool, None, None)
        for p in s.schedule():
            placed[p.request.id] = p.request
        for victim in list(placed):
            del placed[victim]
            s.release(victim)
        check_index(s)
    assert (list(s._fc), list(s._fg), list(s._nc), list(s._ng), list(s._fm), s._bm) == empty
    assert s.free_cores() == alloc.total_cores and s.n_placed == 0


def test_a_quota_set_on_a_busy_pool_counts_what_it_already_holds():
    """A pool without a quota is not counted as it places; its quota, set later, starts from what it holds."""
    s = Scheduler(Allocation.declare(nodes=2, cores=4, gpus=1))
    for i in range(3):
        s.submit(Request(i, cores_per_rank=1, gpus_per_rank=1 if i == 0 else 0, pool="sim"))
    assert len(s.schedule()) == 3
    assert s.usage("sim") == (3, 1)
    s.set_quota("sim", 4, None)
    assert s.usage("sim") == (3, 1)
    s.submit(Request(10, cores_per_rank=2, pool="sim"))  # 3 + 2 > 4: blocked by the quota
    s.submit(Request(11, cores_per_rank=1, pool="sim"))  # 3 + 1 <= 4
    assert [p.request.id for p in s.schedule()] == [11]
    s.release(0)
    assert s.usage("sim") == (3, 0)
    assert [p.request.id for p in s.schedule()] == []  # 3 + 2 > 4 still
    s.release(1)
    assert [p.request.id for p in s.schedule()] == [10]
    assert s.usage("sim") == (4, 0)
    s.set_quota("sim", None, None)
    assert s.usage("sim") == (4, 0) and s.free_slots("sim", 1, 0) == 4
