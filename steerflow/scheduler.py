"""The scheduler: which waiting request runs next, and on exactly which cores and GPUs.

Pure logic (no I/O, no threads): the runtime's loop thread submits ready requests, calls
:meth:`Scheduler.schedule` for placements and :meth:`Scheduler.release` when a task ends.
The free room of each node, and finding cores and GPUs for ranks, live in
:mod:`steerflow.placement` (:class:`~steerflow.placement.NodeIndex`, which ``Scheduler``
extends); this module keeps the queue, priorities, backfill and reservations, pools and quotas.

Order
    Higher ``priority`` first; FIFO (submission order) among equal priority. A request
    submitted again (a retry) queues as a new submission.

Placement
    *Without* ``nodes``: each rank lies wholly on one node (its cores, GPUs and memory).
    All ranks go on ONE node when some node holds them all, choosing the best fit (the node
    with the fewest free cores, then the fewest free GPUs, that still holds them); otherwise
    ranks spread greedily over the nodes with the most free room first, as many ranks per
    node as fit. Ranks are numbered block-wise by node index. Within a node the lowest free
    core and GPU indices are taken.
    *With* ``nodes=N``: the lowest-indexed run of N consecutive, fully free nodes, each able
    to hold its share; node ``j`` of the run gets ranks ``j * ranks // N`` up to
    ``(j + 1) * ranks // N - 1`` (block-wise, at most ``ceil(ranks / N)`` ranks a node). The
    task holds ALL cores, GPUs and memory of those nodes (and they count against its pool's
    quota); each slot lists what its rank uses.

Memory
    A node declared with ``memory_mb=0`` has unknown memory, which is not limited.

Backfill and anti-starvation
    A pass of :meth:`schedule` walks waiting requests in order. When one does not fit, the
    ones after it that do fit start ahead of it (backfill). Each placement made while an
    earlier request is blocked *bypasses* it and adds 1 to its bypass counter; **once a
    blocked request has been bypassed ``max_bypass`` times it holds a reservation: nothing
    after it in order starts until it is placed.** ``max_bypass=None`` never reserves: the greedy
    backfilling policy of a plain list scheduler (and of ``ProcessPoolExecutor``), which wastes no
    core on a drain but lets a wide request starve for as long as narrower work keeps arriving.
    A request blocked by its own pool's quota (not by free resources) only counts bypasses by,
    and only reserves against, requests of its own pool: other pools cannot help or hurt its quota. One that needs more than the quota
    even with nothing of its pool placed waits for a new quota, and neither reserves nor counts.
    Since running tasks always end, a reserving request eventually finds its resources, so every
    request that fits an empty allocation (and its pool's quota) eventually runs (with a
    ``max_bypass``; with None, only once no narrower request is waiting).

    **Backfill into the reservation's shadow** (EASY backfill, as SLURM and Flux do with job time
    limits): given an `Estimator` (the runtime gives one: a task's timeout, else its function's
    smoothed run time), what is estimated to end before a reserved one-rank request could start
    still starts meanwhile; see :mod:`steerflow.scheduler_shadow`. Without an estimator (the
    default) the decisions are exactly those without this rule.

    Requests of the same *shape* (pool, ranks, cores/GPUs/memory per rank, nodes) form a
    class; only the head of a class (its first request in order) is tried and counts
    bypasses: the ones behind it wait for it, not for others (identical shapes fail alike),
    and each becomes head, with its own counter, in turn.

Quotas
    ``set_quota(pool, cores, gpus)`` bounds what the pool's placed requests may hold at
    once; ``None`` is unlimited. It gates new placements only: running tasks are never
    evicted when it is lowered.

Cost
    Waiting requests queue per shape and priority (first in, first out); a pass walks a short
    sorted list of queue heads (one per shape and priority, not per request) and skips a shape
    for the rest of the pass once its head fails. Finding a node costs a few big-int operations
    whatever the node count (see :mod:`steerflow.placement`). A placed request is kept as a
    tuple of ints and strings (which the garbage collector stops tracking), and its `Placement`
    builds its `Slot` objects only when they are read. The common request (one rank, no memory,
    no whole nodes, no quota on its pool) takes a short path, written out in ``schedule()``, and a
    request on one node is given back by another, written out in ``release()`` (in
    :mod:`steerflow.scheduler_room`, with the general path ``_try``): at ~10^5 decisions a
    second each step counts. The decisions are exactly those of the general path
    (``tests/test_scheduler_decisions.py`` pins them). What a pool holds is counted only while
    the pool has a quota (the only reader when placing); ``usage()`` adds it up otherwise.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from dataclasses import dataclass

# Slot and Placement are defined with the node bookkeeping but are part of this module's API too
from .placement import NodeIndex, Placement, Slot, slots_of  # noqa: F401 (Slot, slots_of: API)
from .resources import Allocation
from .scheduler_queries import SchedulerQueries
from .scheduler_room import SchedulerRoom
from .scheduler_shadow import _NO_QUOTA, _NO_ROOM, Estimator, ShadowBackfill, check_max_bypass

_new = object.__new__


@dataclass(slots=True)
class Request:
    """What one task asks for. ``memory_mb_per_rank`` is per rank; ``nodes`` asks for whole nodes."""

    id: int
    ranks: int = 1
    cores_per_rank: int = 1
    gpus_per_rank: int = 0
    memory_mb_per_rank: int = 0
    #: exactly this many whole, consecutive, fully free nodes (see the module docstring)
    nodes: int | None = None
    #: higher runs first
    priority: int = 0
    pool: str = "default"


class _Class:
    """Waiting requests of one shape and one priority, first in first out.

    ``key`` is the shape without the priority: requests of one key form what the module
    docstring calls a class, and the queue of its highest priority holds its head. Only the
    head of a queue is tried, and ``bypass`` is that head's counter (0 for a new head).
    """

    __slots__ = ("key", "ckey", "pool", "ranks", "k", "g", "m", "nodes", "need_c", "need_g", "shape", "queue",
                 "base", "bypass", "usage", "simple", "fast", "checked", "mark", "at", "fence")

    def __init__(self, key: tuple, priority: int, mark: list[int]) -> None:
        self.key = key
        self.ckey = (*key, priority)
        self.pool, self.ranks, self.k, self.g, self.m, self.nodes = key
        self.need_c = self.ranks * self.k
        self.need_g = self.ranks * self.g
        self.shape = (self.k, self.g, self.m)
        #: one rank, no memory, no whole nodes: placed by schedule()'s short path unless under a quota
        self.simple = self.ranks == 1 and not self.m and self.nodes is None
        self.fast = self.checked = False  # set by the scheduler: see Scheduler._set_kind
        #: the order of its items: higher priority first, then submission order, as ONE int (an item's first
        #: field is base + its submission number; < 2**48 submissions keep the priorities apart)
        self.base = -priority << 48
        # (order, this queue, request): an item is its own entry in the heads' order
        self.queue: deque[tuple[int, _Class, Request]] = deque()
        self.bypass = 0
        self.usage: list[int] = [0, 0]  # its pool's (cores, GPUs) held, kept only while the pool has a quota
        #: shared by the queues of one key: the number of the last pass in which the key's head failed
        self.mark = mark
        #: while blocked in a pass: the placements made when it blocked (for want of room), or ~ its pool's count
        self.at = 0
        #: (request id, node): the node its head's reservation drains (see Scheduler._fence)
        self.fence = (-1, -1)


class Scheduler(NodeIndex, SchedulerRoom, SchedulerQueries, ShadowBackfill):
    """Places waiting requests on an allocation; see the module docstring for the rules.

    Its read-only questions (what runs where, what a pool holds, what would fit, what never can)
    come from its base :class:`~steerflow.scheduler_queries.SchedulerQueries`; backfill into a
    reservation's shadow from :class:`~steerflow.scheduler_shadow.ShadowBackfill`; taking a request's room
    (the general path) and giving it back (`release`, `rename`) from
    :class:`~steerflow.scheduler_room.SchedulerRoom`.

    ``max_bypass``: how many placements may bypass a blocked request before it reserves (64; 0 is
    strict priority); None never reserves (greedy backfill: a wide request can starve while narrower
    ones keep arriving).
    """

    # (in slots, as NodeIndex's: see there)
    __slots__ = ("allocation", "_max_bypass", "_budget", "_classes", "_heads", "_waiting", "_marks", "_pass", "_stale",
                 "_placed", "_usage", "_quota", "_seq", "_blocked", "_pool_stop", "_pool_count", "_closed", "_fails",
                 "estimator")

    def __init__(self, allocation: Allocation, quotas: dict[str, tuple[int | None, int | None]] | None = None,
                 max_bypass: int | None = 64, estimator: Estimator | None = None) -> None:
        self._budget = check_max_bypass(max_bypass)  # (what a pass compares bypasses with)
        self._max_bypass = max_bypass
        self.allocation = allocation
        #: run-time estimates for backfill into a reservation's shadow (None: a reservation stops the pass)
        self.estimator = estimator
        NodeIndex.__init__(self, allocation.nodes)
        self._classes: dict[tuple, _Class] = {}  # (shape key, priority) -> its queue
        # the head item of every non-empty queue, kept sorted: the order of a pass; a few entries (one per shape
        # and priority), so inserting is a short memmove
        self._heads: list[tuple[int, _Class, Request]] = []
        self._waiting: dict[int, tuple[int, _Class, Request]] = {}  # request id -> its item in its queue
        self._marks: dict[tuple, list[int]] = {}  # shape key -> the mark its queues share (see _Class)
        self._pass = 0  # passes of schedule() made
        self._stale = 0  # withdrawn items still in a queue (none: every queued item is waiting)
        # request id -> what each placed request holds: on one node, flat (node, core mask, GPU mask, cores, GPUs,
        # MB, class key with priority); on several, (class key with priority, cores, GPUs, one held tuple a node).
        # Only str/int tuples, which the garbage collector stops tracking: the scheduler keeps no object per
        # running task (a full machine holds ~10^5 of them), so it adds nothing to the collector's walks.
        self._placed: dict[int, tuple] = {}
        self._usage: dict[str, list[int]] = {}
        self._quota: dict[str, tuple[int | None, int | None]] = {}
        self._seq = 0
        self._blocked: list[_Class] = []
        self._pool_stop: dict[str, int] = {}
        self._pool_count: dict[str, int] = {}
        self._closed: set[str] = set()
        self._fails: dict[tuple, int] = {}
        for pool, (cores, gpus) in (quotas or {}).items():
            self.set_quota(pool, cores, gpus)

    @property
    def max_bypass(self) -> int | None:
        """Bypasses after which a blocked request reserves; None: it never does (set at construction)."""
        return self._max_bypass

    # ---- public API -------------------------------------------------------------------------------
    def submit(self, req: Request) -> None:
        """Queue a ready request. Raises ValueError for a duplicate id or a request that can never run."""
        rid = req.id
        waiting = self._waiting
        if rid in waiting or rid in self._placed:
            raise ValueError(f"Request id {rid} is already {'waiting' if rid in waiting else 'placed'}; "
                             "ids must be unique among waiting and placed requests.")
        ckey = (req.pool, req.ranks, req.cores_per_rank, req.gpus_per_rank, req.memory_mb_per_rank, req.nodes,
                req.priority)
        try:
            cls = self._classes[ckey]  # (a subscript, not .get(): no method call)
        except KeyError:
            cls = self._new_class(req, ckey)
        seq = self._seq = self._seq + 1
        item = waiting[rid] = (cls.base + seq, cls, req)
        queue = cls.queue
        if queue:
            queue.append(item)
        else:  # a new head
            queue.append(item)
            insort(self._heads, item)

    def _new_class(self, req: Request, ckey: tuple) -> _Class:
        reason = self.never_fits(req)
        if reason is not None:
            raise ValueError(f"Request {req.id} can never run here: {reason}")
        if len(self._classes) >= 4096:  # forget empty queues of shapes no longer used
            self._classes = {key_: c for key_, c in self._classes.items() if c.queue}
        key = ckey[:6]
        mark = self._marks.get(key)
        if mark is None:
            if len(self._marks) >= 4096:
                self._marks = {c.key: c.mark for c in self._classes.values()}
            mark = self._marks[key] = [0]
        cls = self._classes[ckey] = _Class(key, req.priority, mark)
        usage = self._usage.get(req.pool)
        if usage is None:
            usage = self._usage[req.pool] = [0, 0]
        cls.usage = usage  # cores and GPUs the pool holds now (one list per pool, shared by its classes)
        self._set_kind(cls)
        return cls

    def _set_kind(self, cls: _Class) -> None:
        """How schedule() tries the class's head: ``fast``, by its short path (one rank, no memory, no whole
        nodes, no quota on its pool); ``checked``, after a check of the free room that _try would make (no whole
        nodes, no quota); else by _try alone."""
        free = cls.pool not in self._quota
        cls.fast = cls.simple and free
        cls.checked = cls.nodes is None and free

    def _advance(self, cls: _Class, lo: int = 0) -> None:
        """The queue lost its head: drop withdrawn items off its front and list its new head (at ``lo`` or after)."""
        queue = cls.queue
        cls.bypass = 0
        waiting = self._waiting
        while queue and waiting.get(queue[0][2].id) is not queue[0]:
            queue.popleft()  # withdrawn while not at the head
            self._stale -= 1
        if queue:
            insort(self._heads, queue[0], lo)

    def withdraw(self, req_id: int) -> bool:
        """Remove a waiting request; False if it is not waiting."""
        item = self._waiting.pop(req_id, None)
        if item is None:
            return False
        cls = item[1]
        if cls.queue[0] is item:
            cls.queue.popleft()
            heads = self._heads
            del heads[bisect_left(heads, item[:1])]
            self._advance(cls)
        else:
            self._stale += 1  # left in its queue, dropped when it reaches the front
        return True

    def schedule(self, limit: int | None = None) -> list[Placement]:
        """Place as many waiting requests as fit now (at most ``limit``), in order, with backfill."""
        heads = self._heads
        if not heads or not self._free_c:
            return []
        if limit is None:
            stop = 1 << 62  # the pass ends when this many placements were made
        elif limit > 0:
            stop = limit
        else:
            return []
        out: list[Placement] = []
        pno = self._pass = self._pass + 1  # a key whose head fails is marked with it (see _Class.mark)
        waiting = self._waiting
        records = self._placed
        # scratch containers, reused from pass to pass, written only once a head is blocked (cleared at the end):
        # blocked: the queues whose head is blocked for want of room (or by a quota) in this pass
        # closed: pools reserved by a quota-blocked request
        # pool_stop: pool -> its placement count at which a quota-blocked request reserves it
        # (and self._pool_count: pool -> placements in it since the pass's first quota-blocked request;
        # self._fails: rank shape -> fewest ranks that found no room in this pass, written by _try)
        blocked = self._blocked
        closed = self._closed
        pool_stop = self._pool_stop
        # (NodeIndex's lists, for the short path)
        cols, buckets, gs, pos, gcount, fcl, fgl, nc, ng, isfree, min_c = self._lists
        fenced = -1  # the node a reservation drains in this pass, out of the buckets until the pass ends
        placed = 0
        i = 0
        n_heads = len(heads)  # (kept in step with heads below)
        while i < n_heads:
            item = heads[i]
            _, cls, req = item
            if cls.mark[0] == pno or (closed and cls.pool in closed):
                i += 1  # its key failed in this pass (identical shapes fail alike), or its pool is reserved
                continue
            if cls.fast:  # one rank, no memory, no quota: the common request, in a quicker way
                # NodeIndex._take for one rank without memory, written out (no call: -4.4 % machine instructions
                # a decision with the short path of release(), in scheduler_room). The best fit is the last node
                # of the first non-empty bucket with >= k free cores and >= g free GPUs (by free cores, then free
                # GPUs); it gives its k lowest free cores and g lowest free GPUs. tests/test_scheduler_invariants.py
                # checks the buckets and masks after every step, test_scheduler_decisions.py pins the decisions.
                k = cls.k
                g = cls.g
                base = k * gs
                bits = (self._bm & cols[g] if g else self._bm) >> base
                if bits:
                    j = base + (bits & -bits).bit_length() - 1  # the best fit's bucket
                    b = buckets[j]
                    node = b.pop()
                    if not b:
                        self._bm ^= 1 << j
                    fc = fcl[node]
                    if k == 1:
                        rest = fc & (fc - 1)  # without its lowest free core
                    else:
                        rest = fc
                        for _ in range(k):
                            rest &= rest - 1
                    fcl[node] = rest
                    r0 = nc[node]
                    r = nc[node] = r0 - k
                    if g:
                        g0 = ng[node]
                        fg = fgl[node]
                        restg = fg
                        for _ in range(g):
                            restg &= restg - 1
                        fgl[node] = restg
                        gmask = fg ^ restg
                        g1 = ng[node] = g0 - g
                        gcount[g0] -= 1
                        gcount[g1] += 1
                        self._free_g -= g
                    else:
                        gmask = 0
                    if r:  # (a node with no free core is in no bucket)
                        j = r * gs + ng[node]
                        b = buckets[j]
                        n = pos[node] = len(b)
                        b.append(node)
                        if not n:
                            self._bm |= 1 << j
                    if r0 >= min_c and isfree[node]:  # (a node with fewer free cores than the smallest is busy)
                        isfree[node] = False
                        self._wf ^= 1 << node
                    self._free_c -= k
                    rid = req.id
                    held = records[rid] = (node, fc ^ rest, gmask, k, g, 0, cls.ckey)
                    # Placement(req, None, held) without its __init__'s Python frame (~2 % of a decision's machine
                    # instructions; its three fields, as placement.Placement.__init__ sets them)
                    result = _new(Placement)
                    result.request = req
                    result._slots = None
                    result._held = held
                    # (what follows a placement, as below for the general path: written out here, so that this
                    # path asks no question of its result)
                    out.append(result)
                    placed += 1
                    del waiting[rid]
                    queue = cls.queue
                    queue.popleft()
                    cls.bypass = 0
                    if queue:  # its next request is tried in this pass too, in its turn
                        nxt = queue[0]
                        if not self._stale or waiting.get(nxt[2].id) is nxt:
                            if i + 1 == n_heads or heads[i + 1][0] > nxt[0]:  # (orders differ: no tie)
                                heads[i] = nxt  # still the first in order from here
                            else:
                                del heads[i]
                                insort(heads, nxt, i)
                        else:
                            del heads[i]
                            self._advance(cls, i)
                            n_heads = len(heads)
                    else:
                        del heads[i]
                        n_heads -= 1
                    if pool_stop:  # some request is blocked by its pool's quota: count the placements by pool
                        pool_count = self._pool_count
                        pool = cls.pool
                        c = pool_count[pool] = pool_count.get(pool, 0) + 1
                        if pool_stop.get(pool) == c:
                            closed.add(pool)
                    if placed == stop or not self._free_c:
                        break  # (every request needs a core: with none free nothing more can start)
                    continue
            elif cls.checked and (cls.need_c > self._free_c or cls.need_g > self._free_g or not self._bm >> cls.k * gs):
                pass  # no node has the cores for one of its ranks: what _try would say, said sooner
            else:
                result = self._try(cls, req)
                if result.__class__ is Placement:  # (as on the short path above)
                    out.append(result)  # type: ignore[arg-type]
                    placed += 1
                    del waiting[req.id]
                    queue = cls.queue
                    queue.popleft()
                    cls.bypass = 0
                    if queue:
                        nxt = queue[0]
                        if not self._stale or waiting.get(nxt[2].id) is nxt:
                            if i + 1 == n_heads or heads[i + 1][0] > nxt[0]:
                                heads[i] = nxt
                            else:
                                del heads[i]
                                insort(heads, nxt, i)
                        else:
                            del heads[i]
                            self._advance(cls, i)
                            n_heads = len(heads)
                    else:
                        del heads[i]
                        n_heads -= 1
                    if pool_stop:
                        pool_count = self._pool_count
                        pool = cls.pool
                        c = pool_count[pool] = pool_count.get(pool, 0) + 1
                        if pool_stop.get(pool) == c:
                            closed.add(pool)
                    if placed == stop or not self._free_c:
                        break
                    continue
                if result != _NO_ROOM:  # blocked by its pool's quota
                    i += 1
                    cls.mark[0] = pno
                    self._blocked_by_quota(cls, self._budget - cls.bypass)
                    continue
            # its head is blocked for want of room: the placements after it in this pass bypass it (counted at
            # the end)
            i += 1
            cls.mark[0] = pno
            left = self._budget - cls.bypass
            if left <= 0:  # reservation
                if cls.ranks == 1 and cls.nodes is None:
                    if self._n == 1:
                        if self.estimator is not None:  # what ends before it could start
                            placed = self._backfill_shadow(cls, i, out, placed, stop, pno, False)
                    elif fenced < 0:  # on one node: what comes after it runs on the others
                        fenced = self._fence(cls, req.id)
                        if fenced >= 0:
                            fenced_item = item
                            continue
                break  # nothing after it starts
            cls.at = placed
            blocked.append(cls)
            if placed + left < stop:
                stop = placed + left
        if fenced >= 0:
            self._bucket(fenced)
            if self.estimator is not None and placed < stop and self._free_c:  # and on it, what ends in time
                self._fails.clear()  # (what failed with the node out of the buckets may fit it)
                placed = self._backfill_shadow(fenced_item[1], bisect_left(heads, fenced_item[:1]) + 1, out, placed,
                                               stop, pno, True)
        if blocked:  # each blocked head was bypassed by the placements made after it blocked
            pool_count = self._pool_count
            for cls in blocked:
                at = cls.at
                cls.bypass += (placed - at) if at >= 0 else (pool_count.get(cls.pool, 0) - ~at)
            blocked.clear()
        if pool_stop:  # (pool_count is written only while pool_stop holds something)
            self._pool_count.clear()
            pool_stop.clear()
        if closed:
            closed.clear()
        if self._fails:  # (written only by a head that failed: blocked)
            self._fails.clear()
        return out

    # ---- nodes that join and leave (engines whose allocation changes while it runs) ----------------
    def update_nodes(self, allocation: Allocation, offline: frozenset[int] | set[int] = frozenset()) -> None:
        """Take a grown allocation (its first nodes unchanged, new ones appended) and the nodes now gone.

        A gone (``offline``) node keeps its index but gets no new placements; what runs there
        is the engine's to report lost. A node that comes back gets its room again.
        """
        old = self._n
        nodes = allocation.nodes
        if len(nodes) < old or nodes[:old] != self.allocation.nodes:
            raise ValueError("update_nodes() takes the same nodes in the same order, with new ones appended.")
        self.allocation = allocation
        self._grow(nodes)
        self._set_offline(offline)

    def set_quota(self, pool: str, cores: int | None, gpus: int | None) -> None:
        """Bound the cores and GPUs ``pool`` may hold at once (None: unlimited); gates new placements only."""
        for name, value in (("cores", cores), ("gpus", gpus)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"The {name} quota of pool '{pool}' must be a non-negative integer or None; "
                                 f"got {value!r}.")
        if cores is None and gpus is None:
            self._quota.pop(pool, None)
        else:
            if pool not in self._quota:  # what the pool holds is counted from now on (see usage())
                usage = self._usage.get(pool)
                if usage is None:
                    usage = self._usage[pool] = [0, 0]
                usage[:] = self._held_by(pool)
            self._quota[pool] = (cores, gpus)
        for cls in self._classes.values():
            if cls.pool == pool:
                self._set_kind(cls)
