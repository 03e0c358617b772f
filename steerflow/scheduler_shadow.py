"""How a reservation holds, and backfill into its shadow (EASY backfill): a part of `steerflow.scheduler`.

A request blocked by its pool's quota reserves its pool (`ShadowBackfill._blocked_by_quota`). A one-rank
request (no ``nodes``) reserving on several nodes drains one node, and what comes after it runs on the
others (`ShadowBackfill._fence`: EASY's "extra nodes"); on one node, or for other shapes, nothing after it
starts. The rest of this docstring is the shadow.

A request bypassed ``max_bypass`` times reserves: nothing after it in order starts until it is
placed (see `steerflow.scheduler`). Given an `Estimator`, what is estimated to end before the
reserved request could start still starts meanwhile, so the reservation idles only the cores it
must. Its *shadow* is the earliest time, by the estimated ends of what runs, at which some node
would have its room (one rank, no ``nodes``: other requests reserve as before). While it waits, a
later request (the first of its queue, up to `_SHADOW_DEPTH` deep, whose estimate ends in time)
starts if its run time ends before the shadow: then it cannot delay the reserved request, if the
estimates hold. An unknown run time, a running task whose end is unknown or overdue, a shadow not
in the future: no backfill. So the reserved request starts by the shadow computed when it reserved
plus what the estimates of the tasks started in it were short by (with timeouts as estimates, a
bound, by the shadow). SLURM, Flux (``queue-policy=easy``), LSF and PBS backfill the same way with
jobs' time limits.

Cost: nothing on a scheduler without an estimator, nor on a pass without a reservation. A pass
whose request reserves walks the placed requests once (the shadow: one `Estimator.end` call each,
~1 us in the runtime), and not at all when more than `_SHADOW_WALK` run at once: there the
reservation holds as without an estimator. (Measured at 10,000 nodes x 32 cores, where ~320,000
run: with the walk, 2,044 placements per CPU-second against ~137,000 without it.) So a pass costs
at most ~0.3 ms more; backfill into the shadow is for one node or a few, up to 256 running tasks,
and a bigger allocation reserves as before. An incremental shadow (per node, by estimated end) is
what scale would need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Protocol

from .placement import Placement

if TYPE_CHECKING:
    from .scheduler import Request, _Class

_NO_ROOM = 1  # why a request was not placed (the scheduler's _try)
_NO_QUOTA = 2
_SHADOW_DEPTH = 16  # requests of one queue looked at for one that ends in the shadow
_SHADOW_WALK = 256  # above this many placed requests no shadow is computed (a walk per pass, an estimator call each)


class Estimator(Protocol):
    """Run-time estimates, asked only while a reservation waits. Times are seconds on one clock; ``inf``
    means unknown. The scheduler stays pure: the runtime (`steerflow.estimates.RunTimeEstimates`), a test
    or a simulation (`steerflow.bench.floor.same_policy_makespan`) supplies the clock and the estimates."""

    def now(self) -> float:
        """The current time."""

    def run_time(self, req: Request) -> float:
        """How long a waiting request is expected to run once started (``inf``: unknown)."""

    def end(self, req_id: int) -> float:
        """When a placed request is expected to end (``inf``: unknown)."""


#: the bypass budget of ``max_bypass=None``: never reached, so a blocked request never reserves
_NEVER = 1 << 62


def check_max_bypass(max_bypass: object) -> int:
    """The bypass budget for a ``max_bypass`` argument: an int >= 0, or None (never reserve); else a clear error."""
    if max_bypass is None:
        return _NEVER
    if isinstance(max_bypass, bool) or not isinstance(max_bypass, int):
        raise TypeError(f"max_bypass={max_bypass!r} is not an integer; give the number of bypasses after which a "
                        "blocked request reserves (0: strict priority; default 64), or None never to reserve.")
    if max_bypass < 0:
        raise ValueError(f"max_bypass={max_bypass} is negative; give 0 (strict priority) or more, or None never to "
                         "reserve.")
    return max_bypass


class ShadowBackfill:
    """A base of :class:`~steerflow.scheduler.Scheduler`: how its reservations hold (a pool's, for a quota; one
    node's, on several nodes) and its passes' backfill into a reservation's shadow.

    It reads and changes the state the scheduler and :class:`~steerflow.placement.NodeIndex` keep (the
    ``_`` names, theirs) and places through the scheduler's ``_try`` and ``_advance``.
    """

    __slots__ = ()

    estimator: Estimator | None
    _budget: int  # (max_bypass as a number: see Scheduler)
    _placed: dict[int, tuple]
    _heads: list
    _waiting: dict
    _blocked: list
    _closed: set[str]
    _pool_stop: dict[str, int]
    _pool_count: dict[str, int]
    _free_c: int
    _offline: dict[int, list[int]]
    _nc: list[int]
    _ng: list[int]
    _fm: list[int]
    _n: int
    _bm: int
    _cols: list[int]
    _buckets: list[list[int]]
    _cores: list[int]
    _gpus: list[int]
    _mem: list[int]
    _quota: dict[str, tuple[int | None, int | None]]
    _min_c: int
    _min_g: int
    _unbucket: Callable[[int], None]  # NodeIndex's
    _try: Callable[[_Class, Request], Placement | int]  # the scheduler's
    _advance: Callable[[_Class, int], None]

    def _fence(self, cls: _Class, rid: int) -> int:
        """The node a reserving one-rank request drains: taken out of the buckets for the rest of the pass,
        so what comes after it in order runs on the other nodes (EASY's "extra nodes") and the rest of the
        machine does not idle while one node drains. It keeps its node while it stays at its queue's head
        (and the node stays online): the node estimated to have its room first (with an estimator:
        `_shadow`), else the one with the most free cores, then GPUs, that could hold it, when it first
        reserved. -1: none (every node that could hold it is offline)."""
        k, g, m = cls.k, cls.g, cls.m
        head, node = cls.fence
        offline = self._offline
        cores, gpus, mem = self._cores, self._gpus, self._mem
        if head != rid or node >= self._n or node in offline:
            node = -1
            if self.estimator is not None and len(self._placed) <= _SHADOW_WALK:  # the node estimated to free first
                node = self._shadow(cls, self.estimator.now())[1]
            bm = self._bm
            bits = bm & self._cols[g] or bm  # the fullest bucket: most free cores (with its GPUs, if any has them)
            if bits and node < 0:
                i = self._buckets[bits.bit_length() - 1][-1]
                if cores[i] >= k and gpus[i] >= g and mem[i] >= m:
                    node = i
            if node < 0:  # (no free core anywhere, or nodes of several sizes: the first that could hold it)
                node = next((i for i in range(self._n) if cores[i] >= k and gpus[i] >= g and mem[i] >= m
                             and i not in offline), -1)
                if node < 0:
                    return -1
            cls.fence = (rid, node)
        self._unbucket(node)
        return node

    def _blocked_by_quota(self, cls: _Class, left: int) -> None:
        """A head blocked by its pool's quota: only its own pool's placements bypass it, and it reserves
        only its own pool (once bypassed ``max_bypass`` times, no more placements in that pool this pass)."""
        blocked, pool_stop, pool_count, closed = self._blocked, self._pool_stop, self._pool_count, self._closed
        pool = cls.pool
        qc, qg = self._quota[pool]
        need_c, need_g = (cls.nodes * self._min_c, cls.nodes * self._min_g) if cls.nodes else (cls.need_c, cls.need_g)
        if (qc is not None and need_c > qc) or (qg is not None and need_g > qg):
            return  # more than the quota even with nothing of its pool placed: only a new quota helps, so it
            #         reserves nothing (it would starve its whole pool) and counts no bypass
        if left <= 0:
            closed.add(pool)
            return
        c = pool_count.get(pool, 0)
        cls.at = ~c  # (the pool's count when it blocked; pool_count counts from the first such block on)
        blocked.append(cls)
        if pool_stop.get(pool, 1 << 62) > c + left:
            pool_stop[pool] = c + left

    def _backfill_shadow(self, head: _Class, i: int, out: list[Placement], placed: int, stop: int, pno: int,
                         again: bool) -> int:
        """The rest of a pass (from heads[i]) whose request ``head`` reserves: only what is estimated to end
        before the reservation's shadow starts (see the module docstring). ``again``: the pass already went
        on without the node the reservation drains (see Scheduler._fence), so what failed then is tried
        again, there. Returns the pass's placement count."""
        estimator = self.estimator
        assert estimator is not None
        if len(self._placed) > _SHADOW_WALK:
            return placed  # (the walk would cost more than the backfill gains: the reservation holds as before)
        now = estimator.now()
        # (inf: unknown; <= 0: the reserved request is due.) When the pass went on without the node the
        # reservation drains, only that node's time counts: the others took new work meanwhile
        room = self._shadow(head, now, head.fence[1] if again else -1)[0] - now
        if not 0 < room < float("inf"):
            return placed
        heads, waiting, blocked, closed, pool_stop = self._heads, self._waiting, self._blocked, self._closed, \
            self._pool_stop
        while i < len(heads) and placed < stop and self._free_c:
            cls = heads[i][1]
            item = None
            if (again or cls.mark[0] != pno) and cls is not head and not (closed and cls.pool in closed):
                # the first of its queue (up to _SHADOW_DEPTH deep) estimated to end in time: requests of one
                # shape fit alike, so only their run times tell them apart here
                for n, candidate in enumerate(cls.queue):
                    if n == _SHADOW_DEPTH:
                        break
                    if waiting.get(candidate[2].id) is candidate and estimator.run_time(candidate[2]) <= room:
                        item = candidate
                        break
            if item is None:
                i += 1
                continue
            req = item[2]
            result = self._try(cls, req)
            if result.__class__ is not Placement:
                cls.mark[0] = pno
                if result == _NO_ROOM:
                    left = self._budget - cls.bypass
                    if left > 0:  # (over its budget too: it reserves once this pass's reservation is placed)
                        cls.at = placed
                        blocked.append(cls)
                        if placed + left < stop:
                            stop = placed + left
                else:
                    self._blocked_by_quota(cls, self._budget - cls.bypass)
                i += 1
                continue
            out.append(result)  # type: ignore[arg-type]
            placed += 1
            if again and cls in blocked:
                blocked.remove(cls)  # (placed after all: no bypasses to count)
            del waiting[req.id]
            queue = cls.queue
            if queue[0] is item:
                queue.popleft()
                del heads[i]
                self._advance(cls, i)  # (its next request, if any, is tried in its turn)
            else:
                queue.remove(item)  # ahead of its queue's head, which is estimated to run too long
            if pool_stop:
                pool_count = self._pool_count
                c = pool_count[cls.pool] = pool_count.get(cls.pool, 0) + 1
                if pool_stop.get(cls.pool) == c:
                    closed.add(cls.pool)
        return placed

    def _shadow(self, head: _Class, now: float, only: int = -1) -> tuple[float, int]:
        """The earliest estimated time at which some node (or node ``only``) has the room of one-rank request
        ``head`` if nothing more started there, and that node: what runs there ends in order of its
        estimated ends (an end unknown is never; an overdue one gives a time in the past, so no backfill).
        ``(inf, -1)``: not known. One walk over the placed requests: only while a reservation waits."""
        estimator = self.estimator
        assert estimator is not None
        k, g, m = head.k, head.g, head.m
        offline = self._offline
        by_node: dict[int, list[tuple[float, int, int, int]]] = {}
        for rid, record in self._placed.items():
            parts = (record,) if len(record) == 7 else record[3]
            end = -1.0
            for part in parts:
                node = part[0]
                if node not in offline and (only < 0 or node == only):
                    if end < 0:
                        end = estimator.end(rid)
                    by_node.setdefault(node, []).append((end, part[3], part[4], part[5]))
        best, where = float("inf"), -1
        nc, ng, fm = self._nc, self._ng, self._fm
        for node, ends in by_node.items():
            c, gg, mm = nc[node], ng[node], fm[node]
            ends.sort()
            for end, tc, tg, tm in ends:
                if end > best or (end == best and node > where):
                    break  # (ties go to the lower node: the same answer whatever the dict's order)
                c += tc
                gg += tg
                mm += tm
                if c >= k and gg >= g and mm >= m:
                    best, where = end, node
                    break
        return best, where
