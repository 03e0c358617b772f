"""A request's room taken and given back: a part of `steerflow.scheduler`.

`SchedulerRoom` holds the general way to place one request (`_try`: on one node by best fit, or
spread over nodes; `_try_whole`: whole consecutive nodes) and the way back (`release`, with its short
path for a request on one node written out; `rename`). The pass that decides which request is tried
(`Scheduler.schedule`, with its own short path for the common request) stays in the scheduler. The
decisions are pinned by ``tests/test_scheduler_decisions.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from .placement import Placement, Slot, _first_run
from .scheduler_shadow import _NO_QUOTA, _NO_ROOM

if TYPE_CHECKING:
    from .scheduler import Request, _Class


class SchedulerRoom:
    """A base of :class:`~steerflow.scheduler.Scheduler` (see the module docstring).

    It reads and changes the state the scheduler and :class:`~steerflow.placement.NodeIndex` keep (the
    ``_`` names, theirs).
    """

    __slots__ = ()

    _placed: dict[int, tuple]
    _waiting: dict
    _quota: dict[str, tuple[int | None, int | None]]
    _usage: dict[str, list[int]]
    _fails: dict[tuple, int]
    _free_c: int
    _free_g: int
    _offline: dict[int, list[int]]
    _lists: tuple
    _wf: int
    _bm: int
    _fm: list[int]
    _cores: list[int]
    _gpus: list[int]
    _mem: list[int]
    _min_c: int
    _min_g: int
    _best_node: Callable[[int, int, int], int]  # NodeIndex's
    _spread: Callable[[int, int, int, int], list[tuple[int, int]] | None]
    _take: Callable[..., tuple]
    _take_whole: Callable[..., list[tuple]]
    _eligible_mask: Callable[[int, int, int, int, int], int]
    _give: Callable[[tuple], None]
    _absorb: Callable[[int], None]

    # ---- trying one request ---------------------------------------------------------------------
    def _try(self, cls: _Class, req: Request) -> Placement | int:
        """Place ``req`` now, or say why not. ``_fails``: per rank shape, the fewest ranks that
        failed for want of room in this pass (room only shrinks during a pass)."""
        usage = cls.usage
        fails = self._fails
        quota = self._quota.get(cls.pool) if self._quota else None
        if cls.nodes is not None:
            return self._try_whole(cls, req, quota, usage)
        need_c = cls.need_c
        need_g = cls.need_g
        if quota is not None:
            qc, qg = quota
            if (qc is not None and usage[0] + need_c > qc) or (qg is not None and usage[1] + need_g > qg):
                return _NO_QUOTA
        if need_c > self._free_c or need_g > self._free_g:
            return _NO_ROOM
        ranks, k, g, m = cls.ranks, cls.k, cls.g, cls.m
        if fails and fails.get(cls.shape, 1 << 62) <= ranks:
            return _NO_ROOM
        i = self._best_node(need_c, need_g, ranks * m)
        if i >= 0:
            held: tuple = (*self._take(i, ranks, k, g, m), cls.ckey)  # one node: the record is flat
        else:
            spread = self._spread(ranks, k, g, m) if ranks > 1 else None
            if spread is None:
                if fails.get(cls.shape, 1 << 62) > ranks:
                    fails[cls.shape] = ranks
                return _NO_ROOM
            spread.sort()
            held = tuple([self._take(node, t, k, g, m) for node, t in spread])
            self._placed[req.id] = (cls.ckey, need_c, need_g, held)
        self._free_c -= need_c
        self._free_g -= need_g
        if quota is not None:
            usage[0] += need_c
            usage[1] += need_g
        if i >= 0:
            self._placed[req.id] = held
        return Placement(req, None, held)

    def _try_whole(self, cls: _Class, req: Request, quota: tuple | None, usage: list[int]) -> Placement | int:
        n = cls.nodes
        assert n is not None
        start = _first_run(self._wf & self._eligible_mask(cls.ranks, cls.k, cls.g, cls.m, n), n)
        if start < 0:
            if quota is not None:  # report the quota when it would block even the smallest nodes
                qc, qg = quota
                uc, ug = usage
                if (qc is not None and uc + n * self._min_c > qc) or (qg is not None and ug + n * self._min_g > qg):
                    return _NO_QUOTA
            return _NO_ROOM
        window = range(start, start + n)
        need_c = sum(self._cores[i] for i in window)
        need_g = sum(self._gpus[i] for i in window)
        if quota is not None:
            qc, qg = quota
            uc, ug = usage
            if (qc is not None and uc + need_c > qc) or (qg is not None and ug + need_g > qg):
                return _NO_QUOTA
        slots: list[Slot] = []
        held = self._take_whole(start, n, cls.ranks, cls.k, cls.g, cls.m, slots)
        self._free_c -= need_c
        self._free_g -= need_g
        if quota is not None:
            usage[0] += need_c
            usage[1] += need_g
        held_t = tuple(held)
        self._placed[req.id] = (cls.ckey, need_c, need_g, held_t)
        return Placement(req, tuple(slots), held_t)


    # ---- giving back -------------------------------------------------------------------------------
    def release(self, req_id: int) -> None:
        """A placed request ended: free its resources. KeyError if it is not placed."""
        try:
            record = self._placed.pop(req_id)
        except KeyError:
            raise KeyError(f"Request {req_id} is not placed; release() takes the id of a placed request "
                           "whose task has ended.") from None
        try:  # one node, stored flat
            i, cm, gm, c, g, mm, ckey = record
        except ValueError:  # several nodes: (class key, cores, GPUs, one held tuple a node)
            self._release_nodes(record)
            return
        # NodeIndex._give for a record on one node, written out (no call; see schedule()'s short path)
        _, buckets, gs, pos, gcount, fcl, fgl, nc, ng, isfree, min_c = self._lists
        fcl[i] |= cm
        r0 = nc[i]
        r = nc[i] = r0 + c
        g0 = ng[i]
        if g:
            fgl[i] |= gm
            g1 = ng[i] = g0 + g
            gcount[g0] -= 1
            gcount[g1] += 1
            self._free_g += g
        else:
            g1 = g0
        if mm:
            self._fm[i] += mm
        if r0:  # it leaves its bucket (a node with no free core is in none)
            j = r0 * gs + g0
            b = buckets[j]
            last = b.pop()
            if last != i:
                p = pos[i]
                b[p] = last
                pos[last] = p
            elif not b:
                self._bm ^= 1 << j
        j = r * gs + g1
        b = buckets[j]
        n = pos[i] = len(b)
        b.append(i)
        if not n:
            self._bm |= 1 << j
        if r >= min_c and r == self._cores[i] and g1 == self._gpus[i] and self._fm[i] == self._mem[i]:
            isfree[i] = True
            self._wf |= 1 << i
        self._free_c += c
        quotas = self._quota
        if quotas and ckey[0] in quotas:
            usage = self._usage[ckey[0]]
            usage[0] -= c
            usage[1] -= g
        if self._offline:
            for i in self._offline:
                self._absorb(i)

    def _release_nodes(self, record: tuple) -> None:
        ckey, c, g, held = record
        for h in held:
            self._give(h)
        self._free_c += c
        self._free_g += g
        if ckey[0] in self._quota:
            usage = self._usage[ckey[0]]
            usage[0] -= c
            usage[1] -= g
        for i in self._offline:
            self._absorb(i)

    def rename(self, req_id: int, new_id: int) -> None:
        """What placed request ``req_id`` holds is held from now on under ``new_id`` (released by that id).

        The runtime uses it when it takes back a task queued behind a running one: the cores that
        task was placed on stay held for the running task until it ends (see `steerflow.runloop`).
        """
        if new_id in self._placed or new_id in self._waiting:
            raise KeyError(f"Request {new_id} is already known; rename() needs an unused id.")
        self._placed[new_id] = self._placed.pop(req_id)
