"""The scheduler: order, backfill, reservations, quotas, placement shapes, and random-sequence properties."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from steerflow.resources import Allocation, Node
from steerflow.scheduler import Placement, Request, Scheduler, Slot


def ids(placements: list[Placement]) -> list[int]:
    return [p.request.id for p in placements]


def alloc(nodes: int = 1, cores: int = 4, gpus: int = 0, memory_mb: int = 0) -> Allocation:
    return Allocation.declare(nodes=nodes, cores=cores, gpus=gpus, memory_mb=memory_mb)


# ---- order --------------------------------------------------------------------------------------

def test_priority_then_fifo():
    s = Scheduler(alloc(1, 1))
    s.submit(Request(1))
    s.submit(Request(2, priority=5))
    s.submit(Request(3, priority=5))
    s.submit(Request(4))
    order = []
    for _ in range(4):
        placed = s.schedule()
        assert len(placed) == 1
        order += ids(placed)
        s.release(placed[0].request.id)
    assert order == [2, 3, 1, 4]
    assert s.schedule() == [] and s.n_waiting == 0 and s.n_placed == 0


def test_limit():
    s = Scheduler(alloc(1, 8))
    for i in range(5):
        s.submit(Request(i))
    assert ids(s.schedule(limit=2)) == [0, 1]
    assert ids(s.schedule(limit=0)) == []
    assert ids(s.schedule()) == [2, 3, 4]


def test_backfill_places_smaller_requests_behind_a_blocked_one():
    s = Scheduler(alloc(1, 4))
    s.submit(Request(1, cores_per_rank=3))
    assert ids(s.schedule()) == [1]
    s.submit(Request(2, cores_per_rank=2, priority=9))  # blocked: 1 core free
    s.submit(Request(3))
    assert ids(s.schedule()) == [3]
    assert s.is_waiting(2) and s.bypasses(2) == 1


def test_reservation_after_max_bypass():
    s = Scheduler(alloc(1, 4), max_bypass=2)
    s.submit(Request(0, cores_per_rank=3))
    s.schedule()
    s.submit(Request(1, cores_per_rank=2, priority=1))  # blocked behind 0
    for i in range(10, 14):
        s.submit(Request(i))
    assert ids(s.schedule()) == [10]   # bypass 1
    s.release(10)
    assert ids(s.schedule()) == [11]   # bypass 2: budget spent
    assert s.bypasses(1) == 2
    s.release(11)
    assert s.schedule() == []          # reservation: 12 fits but must wait
    s.release(0)
    assert ids(s.schedule()) == [1, 12, 13]


def test_zero_max_bypass_is_strict_priority():
    s = Scheduler(alloc(1, 2), max_bypass=0)
    s.submit(Request(0))
    s.schedule()
    s.submit(Request(1, cores_per_rank=2))
    s.submit(Request(2))
    assert s.schedule() == []


def test_quota_blocked_request_only_reserves_its_own_pool():
    s = Scheduler(alloc(1, 8), quotas={"a": (2, None)}, max_bypass=1)
    s.submit(Request(0, pool="a"))
    s.schedule()
    s.submit(Request(1, cores_per_rank=2, pool="a", priority=3))  # 1 + 2 > 2: quota-blocked
    s.submit(Request(2, pool="a"))
    s.submit(Request(3, pool="b"))
    s.submit(Request(4, pool="b"))
    placed = ids(s.schedule())
    assert placed == [2, 3, 4]  # 2 spends 1's budget of same-pool bypasses; other pools are not counted
    assert s.bypasses(1) == 1
    s.release(2)
    s.submit(Request(5, pool="a"))
    s.submit(Request(6, pool="b"))
    assert ids(s.schedule()) == [6]  # pool a is reserved for request 1; pool b runs on
    s.release(0)
    assert ids(s.schedule()) == [1]
    assert s.usage("a") == (2, 0)


def test_quota_changed_at_run_time():
    s = Scheduler(alloc(2, 4, gpus=2))
    s.set_quota("sim", 2, None)
    assert s.quota("sim") == (2, None) and s.quota("other") == (None, None)
    for i in range(4):
        s.submit(Request(i, pool="sim"))
    assert ids(s.schedule()) == [0, 1]
    assert s.usage("sim") == (2, 0)
    s.set_quota("sim", 3, None)
    assert ids(s.schedule()) == [2]
    s.set_quota("sim", 1, None)  # running tasks stay; nothing new starts
    assert s.schedule() == [] and s.n_placed == 3
    s.release(0)
    s.release(1)
    assert s.schedule() == []
    s.release(2)
    assert ids(s.schedule()) == [3]
    s.set_quota("sim", None, 0)
    s.submit(Request(9, gpus_per_rank=1, pool="sim"))
    assert s.schedule() == []
    s.set_quota("sim", None, None)
    assert ids(s.schedule()) == [9]


def test_quota_rejects_bad_values():
    s = Scheduler(alloc())
    with pytest.raises(ValueError):
        s.set_quota("a", -1, None)


# ---- placement shapes ------------------------------------------------------------------------------

def test_best_fit_single_node_and_lowest_indices():
    s = Scheduler(alloc(3, 4))
    s.submit(Request(1, cores_per_rank=3))
    s.submit(Request(2, cores_per_rank=2))
    a, b = s.schedule()
    assert a.slots[0].cores == (0, 1, 2)
    assert b.slots[0].node != a.slots[0].node and b.slots[0].cores == (0, 1)
    s.submit(Request(3))  # best fit: the node with the fewest free cores that holds it
    (c,) = s.schedule()
    assert c.slots == (Slot(a.slots[0].node, (3,), (), 0),)


def test_all_ranks_on_one_node_when_possible():
    s = Scheduler(alloc(2, 8))
    s.submit(Request(1, ranks=4, cores_per_rank=2))
    (p,) = s.schedule()
    assert {sl.node for sl in p.slots} == {p.slots[0].node}
    assert [sl.cores for sl in p.slots] == [(0, 1), (2, 3), (4, 5), (6, 7)]


def test_ranks_spread_across_nodes():
    s = Scheduler(alloc(3, 4))
    s.submit(Request(1, ranks=5, cores_per_rank=2))  # 2 ranks a node at most
    (p,) = s.schedule()
    per_node: dict[int, int] = {}
    for sl in p.slots:
        assert len(sl.cores) == 2
        per_node[sl.node] = per_node.get(sl.node, 0) + 1
    assert sorted(per_node.values()) == [1, 2, 2]
    assert [sl.node for sl in p.slots] == sorted(sl.node for sl in p.slots)  # block-wise by node
    assert s.free_cores() == 2


def test_contiguous_whole_nodes():
    s = Scheduler(alloc(4, 4, gpus=1))
    s.submit(Request(1, cores_per_rank=1))
    (first,) = s.schedule()
    busy = first.slots[0].node
    s.submit(Request(2, ranks=4, cores_per_rank=1, nodes=2))
    (p,) = s.schedule()
    nodes = sorted({sl.node for sl in p.slots})
    assert len(nodes) == 2 and nodes[1] == nodes[0] + 1 and busy not in nodes
    assert [sl.node for sl in p.slots] == [nodes[0], nodes[0], nodes[1], nodes[1]]
    assert s.usage("default") == (1 + 8, 2)  # the whole nodes are held
    s.release(2)
    assert s.free_cores() == 15


def test_whole_nodes_need_them_fully_free_and_consecutive():
    s = Scheduler(alloc(3, 2))
    s.submit(Request(1))
    s.schedule()
    s.release(1)
    s.submit(Request(2, ranks=1, cores_per_rank=1))
    (p,) = s.schedule()
    s.submit(Request(3, ranks=3, nodes=3))
    assert s.schedule() == []
    s.release(2)
    (q,) = s.schedule()
    assert [sl.node for sl in q.slots] == [0, 1, 2]
    assert p.slots[0].node in (0, 1, 2)


def test_gpus_are_distinct_and_lowest_first():
    s = Scheduler(alloc(1, 8, gpus=4))
    for i in range(3):
        s.submit(Request(i, cores_per_rank=1, gpus_per_rank=1 if i < 2 else 2))
    a, b, c = s.schedule()
    assert (a.slots[0].gpus, b.slots[0].gpus, c.slots[0].gpus) == ((0,), (1,), (2, 3))
    assert s.free_gpus() == 0
    s.submit(Request(3, gpus_per_rank=1))
    assert s.schedule() == []
    s.release(1)
    assert s.schedule()[0].slots[0].gpus == (1,)


def test_memory_is_a_limit():
    s = Scheduler(alloc(2, 8, memory_mb=1000))
    s.submit(Request(1, memory_mb_per_rank=600))
    s.submit(Request(2, memory_mb_per_rank=600))
    s.submit(Request(3, memory_mb_per_rank=600))
    a, b = s.schedule()
    assert a.slots[0].node != b.slots[0].node and a.slots[0].memory_mb == 600
    assert s.free_memory_mb(0) == 400 and s.is_waiting(3)
    s.release(1)
    assert ids(s.schedule()) == [3]


def test_unknown_memory_is_not_limited():
    s = Scheduler(alloc(1, 4))
    s.submit(Request(1, memory_mb_per_rank=10**6))
    assert ids(s.schedule()) == [1] and s.free_memory_mb(0) is None


def test_heterogeneous_nodes():
    a = Allocation((Node("small", 2, 0, 100), Node("big", 8, 2, 1000)))
    s = Scheduler(a)
    s.submit(Request(1, cores_per_rank=4, gpus_per_rank=1))
    (p,) = s.schedule()
    assert p.slots[0].node == 1
    assert "4 cores" in s.never_fits(Request(2, ranks=2, cores_per_rank=4, nodes=2))  # type: ignore[operator]


# ---- withdraw, release, submit errors ----------------------------------------------------------

def test_withdraw():
    s = Scheduler(alloc(1, 1))
    s.submit(Request(1))
    s.submit(Request(2))
    s.submit(Request(3))
    assert s.withdraw(1) is True and s.withdraw(1) is False
    assert s.withdraw(99) is False
    assert ids(s.schedule()) == [2]
    assert s.withdraw(2) is False  # placed, not waiting
    s.withdraw(3)
    s.release(2)
    assert s.schedule() == [] and s.n_waiting == 0


def test_release_errors_and_resubmit():
    s = Scheduler(alloc(1, 1))
    with pytest.raises(KeyError):
        s.release(1)
    r = Request(1)
    s.submit(r)
    with pytest.raises(KeyError):
        s.release(1)  # waiting, not placed
    s.schedule()
    with pytest.raises(ValueError, match="already placed"):
        s.submit(r)
    s.release(1)
    with pytest.raises(KeyError):
        s.release(1)
    s.submit(r)  # a retry queues the same request again
    assert ids(s.schedule()) == [1]
    assert s.placed(1) is not None and s.placed(2) is None


def test_duplicate_and_impossible_submits_raise():
    s = Scheduler(alloc(1, 2))
    s.submit(Request(1))
    with pytest.raises(ValueError, match="already waiting"):
        s.submit(Request(1))
    with pytest.raises(ValueError, match="cores_per_rank=3"):
        s.submit(Request(2, cores_per_rank=3))


# ---- never_fits and free_slots -------------------------------------------------------------------

@pytest.mark.parametrize("req,words", [
    (Request(0, cores_per_rank=64), ["cores_per_rank=64", "32 cores"]),
    (Request(0, gpus_per_rank=5), ["gpus_per_rank=5", "4 GPUs"]),
    (Request(0, memory_mb_per_rank=5000), ["memory_mb_per_rank=5000", "4000 MB"]),
    (Request(0, ranks=100, cores_per_rank=1), ["ranks=100", "64"]),
    (Request(0, ranks=3, gpus_per_rank=4), ["ranks=3", "8 GPUs"]),
    (Request(0, ranks=3, nodes=3), ["nodes=3", "2 nodes"]),
    (Request(0, ranks=2, nodes=3), ["nodes=3", "ranks=2"]),
    (Request(0, ranks=66, nodes=2), ["33 ranks", "32"]),
    (Request(0, ranks=3, memory_mb_per_rank=3000), ["ranks=3", "at most 2"]),
    (Request(0, ranks=0), ["ranks=0"]),
])
def test_never_fits_messages(req, words):
    s = Scheduler(alloc(2, 32, gpus=4, memory_mb=4000))
    reason = s.never_fits(req)
    assert reason is not None and reason.endswith(".")
    for w in words:
        assert w in reason


def test_never_fits_accepts_what_fits():
    s = Scheduler(alloc(2, 32, gpus=4, memory_mb=4000))
    for req in (Request(0), Request(0, ranks=64), Request(0, ranks=8, gpus_per_rank=1), Request(0, ranks=4, nodes=2),
                Request(0, ranks=2, memory_mb_per_rank=4000)):
        assert s.never_fits(req) is None


def test_free_slots():
    s = Scheduler(alloc(2, 8, gpus=2))
    assert s.free_slots("default") == 16
    assert s.free_slots("default", 4, 1) == 4
    assert s.free_slots("default", 3, 0) == 4
    s.submit(Request(1, cores_per_rank=5))
    s.schedule()
    assert s.free_slots("default") == 11
    assert s.free_slots("default", 4, 0) == 2
    s.set_quota("default", 7, 1)
    assert s.free_slots("default") == 2
    assert s.free_slots("default", 1, 1) == 1
    assert s.free_slots("other", 1, 1) == 4
    with pytest.raises(ValueError):
        s.free_slots("default", 0, 0)


# ---- random sequences -----------------------------------------------------------------------------

POOLS = ("a", "b")


class SchedulerMachine(RuleBasedStateMachine):
    """Drives a Scheduler with random operations and checks each placement against a model."""

    @initialize(n=st.integers(1, 4), cores=st.integers(1, 8), gpus=st.integers(0, 4),
                mems=st.lists(st.sampled_from([0, 1000, 2000]), min_size=4, max_size=4),
                max_bypass=st.integers(0, 3))
    def setup(self, n, cores, gpus, mems, max_bypass):
        self.alloc = Allocation(tuple(Node(f"n{i}", cores, gpus, mems[i]) for i in range(n)))
        self.s = Scheduler(self.alloc, max_bypass=max_bypass)
        self.max_bypass = max_bypass
        self.next_id = 0
        self.order = 0
        self.waiting: dict[int, tuple[tuple[int, int], Request]] = {}  # id -> ((-priority, order), request)
        self.placed: dict[int, tuple[Request, list[tuple[int, set[int], set[int], int]]]] = {}
        self.bypass: dict[int, int] = {}
        self.quotas: dict[str, tuple[int | None, int | None]] = {}
        # free state, node by node
        self.free_c = [set(range(nd.cores)) for nd in self.alloc.nodes]
        self.free_g = [set(range(nd.gpus)) for nd in self.alloc.nodes]
        self.used_m = [0] * n

    # -- model helpers --------------------------------------------------------------------------
    def mem_left(self, i: int) -> float:
        m = self.alloc.nodes[i].memory_mb
        return float("inf") if m == 0 else m - self.used_m[i]

    def whole_free(self, i: int) -> bool:
        nd = self.alloc.nodes[i]
        return len(self.free_c[i]) == nd.cores and len(self.free_g[i]) == nd.gpus and self.used_m[i] == 0

    def usage(self, pool: str) -> tuple[int, int]:
        c = g = 0
        for req, held in self.placed.values():
            if req.pool == pool:
                c += sum(len(h[1]) for h in held)
                g += sum(len(h[2]) for h in held)
        return c, g

    def run(self, req: Request) -> int:
        """Start of the lowest run of req.nodes whole-free, able nodes, or -1."""
        n = req.nodes
        assert n is not None
        share = -(-req.ranks // n)
        ok = [self.whole_free(i) and nd.cores >= share * req.cores_per_rank and nd.gpus >= share * req.gpus_per_rank
              and (nd.memory_mb == 0 or nd.memory_mb >= share * req.memory_mb_per_rank)
              for i, nd in enumerate(self.alloc.nodes)]
        for start in range(len(ok) - n + 1):
            if all(ok[start:start + n]):
                return start
        return -1

    def need(self, req: Request) -> tuple[int, int]:
        if req.nodes is None:
            return req.ranks * req.cores_per_rank, req.ranks * req.gpus_per_rank
        start = self.run(req)
        nodes = self.alloc.nodes
        if start < 0:
            return req.nodes * min(nd.cores for nd in nodes), req.nodes * min(nd.gpus for nd in nodes)
        window = nodes[start:start + req.nodes]
        return sum(nd.cores for nd in window), sum(nd.gpus for nd in window)

    def quota_ok(self, req: Request) -> bool:
        qc, qg = self.quotas.get(req.pool, (None, None))
        uc, ug = self.usage(req.pool)
        c, g = self.need(req)
        return (qc is None or uc + c <= qc) and (qg is None or ug + g <= qg)

    def room_ok(self, req: Request, fenced: frozenset = frozenset()) -> bool:
        if req.nodes is not None:
            return self.run(req) >= 0
        k, g, m = req.cores_per_rank, req.gpus_per_rank, req.memory_mb_per_rank
        room = 0
        for i in range(len(self.alloc.nodes)):
            if i in fenced:
                continue
            t = len(self.free_c[i]) // k
            if g:
                t = min(t, len(self.free_g[i]) // g)
            if m:
                t = min(t, self.mem_left(i) // m)
            room += int(t)
        return room >= req.ranks

    @staticmethod
    def shape(req: Request) -> tuple:
        return (req.pool, req.ranks, req.cores_per_rank, req.gpus_per_rank, req.memory_mb_per_rank, req.nodes)

    def is_head(self, rid: int) -> bool:
        key, req = self.waiting[rid]
        return all(k2 >= key for k2, r2 in self.waiting.values() if self.shape(r2) == self.shape(req))

    def over_quota(self, req: Request) -> bool:
        """It needs more than its pool's quota even with nothing of the pool placed: it waits for a new quota."""
        qc, qg = self.quotas.get(req.pool, (None, None))
        c, g = self.need(req)
        return (qc is not None and c > qc) or (qg is not None and g > qg)

    def fence(self, w: Request) -> int:
        """The node a reservation of ``w`` drains (one rank, no ``nodes``, several nodes), or -1."""
        if w.ranks != 1 or w.nodes is not None or len(self.alloc.nodes) < 2:
            return -1
        cls = self.s._classes.get((w.pool, w.ranks, w.cores_per_rank, w.gpus_per_rank, w.memory_mb_per_rank,
                                   w.nodes, w.priority))
        return cls.fence[1] if cls is not None and cls.fence[0] == w.id else -1

    def fenced_before(self, w_key: tuple[int, int]) -> frozenset:
        """The nodes drained for reserving requests ahead of ``w_key`` (their bypass budget spent)."""
        return frozenset(f for k2, r2 in self.waiting.values() if k2 < w_key and self.is_head(r2.id)
                         and self.bypass.get(r2.id, 0) >= self.max_bypass and (f := self.fence(r2)) >= 0)

    def pool_reserved(self, w_key: tuple[int, int], pool: str) -> bool:
        """Some earlier request of this pool is quota-blocked with its bypass budget spent."""
        return any(k2 < w_key and r2.pool == pool and self.is_head(r2.id) and not self.quota_ok(r2)
                   and not self.over_quota(r2)
                   and self.bypass.get(r2.id, 0) >= self.max_bypass for k2, r2 in self.waiting.values())

    # -- checking one placement ------------------------------------------------------------------
    def check_placement(self, p: Placement) -> None:
        req = p.request
        key, _ = self.waiting[req.id]
        # 4. quotas hold for placements made under them
        assert self.quota_ok(req), f"placement of {req} breaks the quota of pool {req.pool}"
        # 3. every earlier waiting request did not fit (or is held by a reservation of its pool)
        for rid, (wkey, w) in list(self.waiting.items()):
            if rid == req.id or wkey > key:
                continue
            quota_blocked = not self.quota_ok(w)
            # (a node drained for an earlier reserving request is room for nobody after it: see `fence`)
            if not quota_blocked and self.room_ok(w, self.fenced_before(wkey)):
                assert self.pool_reserved(wkey, w.pool), f"{w} fit but {req} started ahead of it"
                continue
            if self.is_head(rid) and (not quota_blocked or (w.pool == req.pool and not self.over_quota(w))):
                fence = self.fence(w) if not quota_blocked else -1
                if fence >= 0 and self.bypass.get(rid, 0) >= self.max_bypass:
                    # a one-rank request reserving on several nodes drains one node: the others run on
                    assert all(sl.node != fence for sl in p.slots), f"{req} started on the node {w} drains"
                    continue
                assert self.bypass.get(rid, 0) < self.max_bypass, f"{w} was bypassed past its budget by {req}"
                self.bypass[rid] = self.bypass.get(rid, 0) + 1
        # the slots themselves; 1. nothing is held twice, memory within the node's
        assert len(p.slots) == req.ranks
        held: dict[int, tuple[int, set[int], set[int], int]] = {}
        for sl in p.slots:
            assert len(sl.cores) == req.cores_per_rank and len(sl.gpus) == req.gpus_per_rank
            assert sl.memory_mb == req.memory_mb_per_rank
            h = held.setdefault(sl.node, (sl.node, set(), set(), 0))
            assert not (h[1] & set(sl.cores)) and not (h[2] & set(sl.gpus))
            h[1].update(sl.cores)
            h[2].update(sl.gpus)
            held[sl.node] = (sl.node, h[1], h[2], h[3] + sl.memory_mb)
        if req.nodes is not None:
            nodes = sorted(held)
            assert len(nodes) == req.nodes and nodes == list(range(nodes[0], nodes[0] + req.nodes))
            assert nodes[0] == self.run(req)
            for i in nodes:
                assert self.whole_free(i)
                nd = self.alloc.nodes[i]
                held[i] = (i, set(range(nd.cores)), set(range(nd.gpus)), nd.memory_mb)
        for i, cores, gpus, mem in held.values():
            assert cores <= self.free_c[i], f"core held twice on node {i}"
            assert gpus <= self.free_g[i], f"GPU held twice on node {i}"
            assert mem <= self.mem_left(i), f"memory of node {i} overcommitted"
            self.free_c[i] -= cores
            self.free_g[i] -= gpus
            self.used_m[i] += mem if self.alloc.nodes[i].memory_mb else 0
        del self.waiting[req.id]
        self.bypass.pop(req.id, None)
        self.placed[req.id] = (req, list(held.values()))

    def do_schedule(self, limit: int | None = None) -> list[Placement]:
        placements = self.s.schedule(limit)
        if limit is not None:
            assert len(placements) <= limit
        for p in placements:
            self.check_placement(p)
        return placements

    def do_release(self, rid: int) -> None:
        self.s.release(rid)
        req, held = self.placed.pop(rid)
        for i, cores, gpus, mem in held:
            self.free_c[i] |= cores
            self.free_g[i] |= gpus
            self.used_m[i] -= mem if self.alloc.nodes[i].memory_mb else 0

    # -- rules ------------------------------------------------------------------------------------------
    @rule(ranks=st.integers(1, 3), k=st.integers(1, 4), g=st.integers(0, 2), m=st.sampled_from([0, 0, 400, 900]),
          whole=st.booleans(), nodes=st.integers(1, 2), priority=st.integers(0, 2), pool=st.sampled_from(POOLS))
    def submit(self, ranks, k, g, m, whole, nodes, priority, pool):
        req = Request(self.next_id, ranks, k, g, m, min(nodes, ranks) if whole else None, priority, pool)
        self.next_id += 1
        if self.s.never_fits(req) is not None:
            with pytest.raises(ValueError):
                self.s.submit(req)
            return
        self.s.submit(req)
        self.order += 1
        self.waiting[req.id] = ((-priority, self.order), req)

    @rule(limit=st.one_of(st.none(), st.integers(1, 3)))
    def schedule(self, limit):
        self.do_schedule(limit)

    @precondition(lambda self: self.placed)
    @rule(data=st.data())
    def release(self, data):
        self.do_release(data.draw(st.sampled_from(sorted(self.placed))))

    @rule()
    def release_unknown(self):
        with pytest.raises(KeyError):
            self.s.release(10**9)

    @precondition(lambda self: self.waiting)
    @rule(data=st.data())
    def withdraw(self, data):
        rid = data.draw(st.sampled_from(sorted(self.waiting)))
        assert self.s.withdraw(rid) is True
        del self.waiting[rid]
        self.bypass.pop(rid, None)
        assert self.s.withdraw(rid) is False

    @rule(pool=st.sampled_from(POOLS), cores=st.one_of(st.none(), st.integers(0, 8)),
          gpus=st.one_of(st.none(), st.integers(0, 4)))
    def set_quota(self, pool, cores, gpus):
        self.s.set_quota(pool, cores, gpus)
        if cores is None and gpus is None:
            self.quotas.pop(pool, None)
        else:
            self.quotas[pool] = (cores, gpus)
        assert self.s.quota(pool) == (cores, gpus)

    @invariant()
    def counts_agree(self):
        assert self.s.n_waiting == len(self.waiting) and self.s.n_placed == len(self.placed)
        assert self.s.free_cores() == sum(map(len, self.free_c))
        assert self.s.free_gpus() == sum(map(len, self.free_g))
        for pool in POOLS:
            assert self.s.usage(pool) == self.usage(pool)

    def teardown(self):
        # 2. every request that fits an empty allocation eventually runs (quotas lifted)
        if not hasattr(self, "s"):
            return
        for pool in POOLS:
            self.s.set_quota(pool, None, None)
        self.quotas.clear()
        for _ in range(4 * (len(self.waiting) + len(self.placed)) + 4):
            self.do_schedule()
            if not self.waiting:
                break
            assert self.placed, f"nothing runs, yet {sorted(self.waiting)} wait"
            self.do_release(min(self.placed))
        assert not self.waiting, f"{sorted(self.waiting)} never ran"


TestSchedulerMachine = SchedulerMachine.TestCase
TestSchedulerMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow])
