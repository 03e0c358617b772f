"""Backfill into a reservation's shadow (EASY backfill), the part of `steerflow.scheduler` that needs run times.

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


class ShadowBackfill:
    """A base of :class:`~steerflow.scheduler.Scheduler`: its passes' backfill into a reservation's shadow.

    It reads and changes the state the scheduler and :class:`~steerflow.placement.NodeIndex` keep (the
    ``_`` names, theirs) and places through the scheduler's ``_try`` and ``_advance``.
    """

    __slots__ = ()

    estimator: Estimator | None
    max_bypass: int
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
    _try: Callable[[_Class, Request], Placement | int]  # the scheduler's
    _advance: Callable[[_Class, int], None]
    _blocked_by_quota: Callable[[_Class, int], None]

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
                    left = self.max_bypass - cls.bypass
                    if left > 0:  # (over its budget too: it reserves once this pass's reservation is placed)
                        cls.at = placed
                        blocked.append(cls)
                        if placed + left < stop:
                            stop = placed + left
                else:
                    self._blocked_by_quota(cls, self.max_bypass - cls.bypass)
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
