"""The scheduler's decisions, pinned: random request sequences give the same placements as the
scheduler of 2026-11-28 (main at 7de9d0c), before its hot path was rewritten for speed (and one fix of
policy since: see GOLDEN).

Each sequence mixes submits of every kind of request (one or several ranks, GPUs, memory, whole
nodes, priorities, pools), passes with and without a limit, releases, withdraws, quota changes and
nodes going offline, withdrawn ids submitted again; a digest of everything observable (placements and their slots, bypass
counters, free cores and GPUs, pool usage, ``free_slots``, ``placed()``, free memory) is compared
with the one the old scheduler gave. Half the sequences use the benchmark's mix on a full machine
(``steerflow bench scheduler``): mostly one-core requests, one release and one submit per pass.

To see which step differs, run ``trace(seed)`` here and against a checkout of 7de9d0c.
"""

from __future__ import annotations

import hashlib
import random

import pytest

from steerflow.resources import Allocation, Node
from steerflow.scheduler import Request, Scheduler


def _allocation(rng: random.Random) -> Allocation:
    n = rng.randint(1, 12)
    if rng.random() < 0.5:
        return Allocation.declare(nodes=n, cores=rng.randint(1, 8), gpus=rng.randint(0, 3),
                                  memory_mb=rng.choice([0, 0, 4000]))
    return Allocation(tuple(Node(f"n{i}", rng.randint(1, 8), rng.randint(0, 3), rng.choice([0, 0, 1000, 4000]))
                            for i in range(n)))


def _request(rng: random.Random, rid: int) -> Request:
    ranks = rng.choice([1, 1, 1, 1, 2, 3, 5])
    nodes = rng.choice([None] * 8 + [1, 2, 3])
    return Request(rid, ranks, rng.choice([1, 1, 1, 2, 3]), rng.choice([0, 0, 0, 1, 2]),
                   rng.choice([0, 0, 0, 500, 1500]), min(nodes, ranks) if nodes else None,
                   rng.choice([0, 0, 0, 1, 2]), rng.choice(["a", "a", "b", "c"]))


def _bench_request(rng: random.Random, rid: int) -> Request:
    x = rng.random()
    priority = 1 if rng.random() < 0.05 else 0
    if x < 0.80:
        return Request(rid, 1, 1, 0, 0, None, priority, "simulate")
    if x < 0.95:
        return Request(rid, 1, 4, 1, 0, None, priority, "train")
    if x < 0.99:
        return Request(rid, 1, 2, 0, 0, None, priority, "simulate")
    return Request(rid, rng.randint(8, 40), 1, 0, 0, None, priority, "mpi")


def _slots(p) -> tuple:
    return tuple((s.node, s.cores, s.gpus, s.memory_mb) for s in p.slots)


def _state(s: Scheduler, waiting: set[int], placed: list[int], pools: str, full: bool) -> tuple:
    out: list = [s.free_cores(), s.free_gpus(), s.n_waiting, s.n_placed]
    out += [(w, s.bypasses(w)) for w in sorted(waiting)]
    for pool in pools:
        out += [s.usage(pool), s.free_slots(pool, 1, 0), s.free_slots(pool, 2, 1), s.free_slots(pool, 0, 1)]
    if full:
        out += [(p, _slots(s.placed(p)), s.placed(p).request) for p in sorted(placed)]
        out += [s.free_memory_mb(i) for i in range(len(s.allocation.nodes))]
    return tuple(out)


def trace(seed: int, steps: int = 150):
    """Yield what the scheduler does and shows, step by step, on the random sequence ``seed``."""
    rng = random.Random(seed)
    bench = seed % 2 == 1
    if bench:
        alloc = Allocation.declare(nodes=rng.randint(4, 24), cores=32, gpus=4)
        s = Scheduler(alloc, max_bypass=rng.choice([2, 64]))
        make, pools = _bench_request, ("simulate", "train", "mpi")
    else:
        alloc = _allocation(rng)
        s = Scheduler(alloc, max_bypass=rng.choice([0, 1, 2, 5, 64]))
        make, pools = _request, "abc"
    rid = 0
    placed: list[int] = []
    waiting: set[int] = set()
    offline: set[int] = set()
    if bench:  # fill the machine, then one release, one submit and one pass a step
        while not s.n_waiting:
            for _ in range(50):
                rid += 1
                s.submit(make(rng, rid))
                waiting.add(rid)
            for p in s.schedule():
                placed.append(p.request.id)
                waiting.discard(p.request.id)
                yield p.request.id, _slots(p)
    for step in range(steps):
        x = rng.random()
        if bench:
            v = placed.pop(rng.randrange(len(placed)))
            s.release(v)
            rid += 1
            s.submit(make(rng, rid))
            waiting.add(rid)
            if rng.random() < 0.05:
                s.set_quota("train", rng.choice([None, 40, 200]), rng.choice([None, 10, 40]))
            x = 0.5
        elif x < 0.4:
            rid += 1
            try:
                s.submit(make(rng, rid))
                waiting.add(rid)
                yield "submit", rid
            except ValueError as e:
                yield "refused", rid, str(e)
            continue
        if x < 0.65:
            limit = None if bench else rng.choice([None, None, None, 0, 1, 2])
            for p in s.schedule(limit):
                placed.append(p.request.id)
                waiting.discard(p.request.id)
                yield p.request.id, _slots(p)
        elif x < 0.85 and placed:
            v = placed.pop(rng.randrange(len(placed)))
            s.release(v)
            yield "release", v
        elif x < 0.9 and waiting:
            v = rng.choice(sorted(waiting))
            waiting.discard(v)
            yield "withdraw", v, s.withdraw(v)
            if rng.random() < 0.5:  # submitted again, as a retry is: same id, queued behind the others
                try:
                    s.submit(make(rng, v))
                    waiting.add(v)
                except ValueError as e:
                    yield "refused", v, str(e)
        elif x < 0.95:
            s.set_quota(rng.choice("abc"), rng.choice([None, 0, 2, 5, 10]), rng.choice([None, 0, 1, 3]))
        elif x < 0.97 and len(alloc.nodes) > 1:
            offline ^= {rng.randrange(len(alloc.nodes))}
            s.update_nodes(alloc, frozenset(offline))
        yield _state(s, waiting, placed, pools, step % 10 == 0)


def digest(seed: int) -> str:
    h = hashlib.sha256()
    for item in trace(seed):
        h.update(repr(item).encode())
    return h.hexdigest()[:10]


# digest(seed) for seeds 0..199. Computed with the scheduler of 7de9d0c, then again in session 6 (2026-11-28-f) for
# one change of policy: a request needing more than its pool's quota outright no longer reserves its pool (it
# starved the whole pool). With that rule switched off, session 6's scheduler gave 7de9d0c's 200 digests again;
# with it, the 80 sequences with such a request changed. And once more for a second change of policy: a one-rank
# request reserving on several nodes drains one node, not all of them (Scheduler._fence). With that switched off the
# digests above were given again; with it, 54 sequences changed.
GOLDEN = """
3540b0d294 ad0f36f5d0 29331a9d42 0090291251 db6720ba15 f88074ef90 c2f994c6b1 e246fb6418 3b6412946b d6490ea799
e73d31b658 4bbf738f86 f490a85d62 d0c894376e 5fa4832281 6e8b3965b8 18b30d7a6a 8ca7cd9881 4f9bfd5ef5 018890fe1a
dccaa364aa 051efa84b0 271e60c43f a583bf9c17 2e5a3c26c4 721331a4b9 c748cfd757 42f44595b7 aad966879c 4e9b8c95a9
976e29b839 b50fda6d0f e4f5051943 e2715bfde6 b27e7dbfa4 dea023747c e3c82bb473 41543d017e f95dec3aea 3dce7fe0f8
4628d7c6ad 7a7c65b218 d1ee5b6736 796a977e4c ca7b148ed5 94e341d68c e454ac0538 aa4748f471 a729bded1a baad9bab68
039cdbfad2 66f645ef41 11a2918dbe 5596e580d9 06ceefec9a 07f0c0e670 a4a387e68f 3a28154426 7b23147b6b 3e5b437c0c
02ced87dd8 048264b160 e842ec03cb 18e6aae937 58aa8ce581 763ddf3a67 044244786f 378baf97b7 d2db554fdb d6323f0947
32ecc00d1b dcea46a109 4a1025ba5c 2035f4b333 b97f6b8f39 a2583a9c3d 2c052018d4 5fd7cd011e e7448e80a6 1200a6cff5
3107d536e9 7c44ef412a 79dd63f63e 20363df963 d3542cca4b c823b86589 a5f9b600ea b200c44a09 8ca91b727f aecbbc1fcf
b8d4bef61e ae47642a0d 6b8e552cfc a64e5e56c7 1b9bf70664 9faf28c07f e76aa92af0 c14b2c1057 6e7f899b0d df076f0229
261ffbf1c5 619c1ebba0 13e33d375d d5a2cea42f f320b30465 d685cbcedf 59fd969b4b e4c36318d1 84816ef83c 26f95fb27a
b13d8c29d6 07b067c634 5652996db6 c0d31b5772 bb2d4b3c46 680ee0f87b 2ed6fb58af 4adb58fcda 4d2acddee6 ab9c51673c
7c4577b9a7 67774c0db3 673ff8bf2f 9be9576b31 e669888258 f5a72eb0c3 81ca8cf1c7 15c070fb8b 64971a16a3 17daf35e73
42e3f562f9 88c0011ecd 31f1f51d31 22661b8cb9 f0498847b8 2646c0391f 02be197ed8 b8ee37259e 8d2f1706dc 50bf9d9f7e
8e91c18837 d7ebb80e52 5d30333066 d354862df3 a0eca7012d c8f7d820fc 91e552476e 658c24c5f4 ce31249130 b78c309cbf
babe1986f4 41ce7053e9 8dce3497be 23406a8f46 7071505937 7a4c2399db 8ebf393251 87448e0ede 8acd806af9 a050b99115
55ba9cb226 5d1b1c6b0e 260ead33d3 4bf3c8f054 675dde0dc3 5f961aed8d b1a83c281f e7bc76b7f8 21bfc53b14 bf1484bd33
326ef54076 f46e4af0bc 54bec6aab2 e14728041d 34b7c1391c 8e1a16751b 338c7cf9d8 b2917030fc 6fee7bcea5 6251b65940
823df63053 36e8c4f03a 6ec1542cc2 1169e269dc 7a8b8fba0f 6e9e9c3406 8ec0658fff 032ee82ab5 0b3e99b051 b88dea7ec6
ebfe70b52e 4f7cca3853 6e490fca51 9fd455ec50 b36f4c2b0d e61f8a4f6b c6f2e9fa3c 9d08969708 04d9e0fedc 938d8d5e36
"""


@pytest.mark.parametrize("block", range(4))
def test_decisions_are_those_of_the_scheduler_before_the_rewrite(block):
    golden = GOLDEN.split()
    assert len(golden) == 200
    seeds = range(block * 50, (block + 1) * 50)
    differ = [seed for seed in seeds if digest(seed) != golden[seed]]
    assert not differ, f"sequences {differ} now place differently (compare trace(seed) with 7de9d0c's)"
