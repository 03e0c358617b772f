"""Read-only questions about a scheduler's state: what runs where, what waits, what pools hold, how
many more tasks would fit now, and whether a request could ever run on the allocation.

Pure logic, like :mod:`steerflow.scheduler` and :mod:`steerflow.placement`: :class:`SchedulerQueries`
is a base of :class:`~steerflow.scheduler.Scheduler` and reads the state that it and
:class:`~steerflow.placement.NodeIndex` keep (the ``_`` names below are theirs); nothing here
changes it, and nothing here is on the path of a placement decision, so these questions may take
the time they need (``usage`` of a pool without a quota adds up its placed requests).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from .placement import Placement, Slot, _first_run, slots_of

if TYPE_CHECKING:
    from .scheduler import Request, _Class


class SchedulerQueries:
    """The read-only half of :class:`~steerflow.scheduler.Scheduler`; see the module docstring."""

    __slots__ = ()

    # state kept by Scheduler and NodeIndex (declared for type checkers; set by their __init__)
    _placed: dict[int, tuple]
    _waiting: dict[int, tuple[int, _Class, Request]]
    _quota: dict[str, tuple[int | None, int | None]]
    _usage: dict[str, list[int]]
    _offline: dict[int, list[int]]
    _free_c: int
    _free_g: int
    _n: int
    _types: dict[tuple[int, int, int], int]
    _count_fits: Callable[[int, int], int]  # NodeIndex's
    _eligible_mask: Callable[[int, int, int, int, int], int]  # NodeIndex's

    # ---- what runs and what waits ----------------------------------------------------------------
    @property
    def n_waiting(self) -> int:
        return len(self._waiting)

    @property
    def n_placed(self) -> int:
        return len(self._placed)

    def placed(self, req_id: int) -> Placement | None:
        """Where a placed request runs (rebuilt from what the scheduler holds: an equal `Request`), or None."""
        placed = self._placed.get(req_id)
        if placed is None:
            return None
        if len(placed) == 7:  # one node
            held = placed
            pool, ranks, k, g, m, nodes, priority = placed[6]
        else:
            held = placed[3]
            pool, ranks, k, g, m, nodes, priority = placed[0]
        from .scheduler import Request  # (defined there; imported here when asked, the other way round)

        req = Request(req_id, ranks, k, g, m, nodes, priority, pool)
        if nodes is not None:  # whole nodes: the slots list what each rank uses, as placed
            slots: list[Slot] = []
            share = [(j + 1) * ranks // len(held) - j * ranks // len(held) for j in range(len(held))]
            for h, t in zip(held, share):
                i = h[0]
                slots.extend(slots_of((i, (1 << t * k) - 1, (1 << t * g) - 1, t * k, t * g, t * m), k, g, m))
            return Placement(req, tuple(slots), held)
        return Placement(req, None, held)

    def is_waiting(self, req_id: int) -> bool:
        return req_id in self._waiting

    def bypasses(self, req_id: int) -> int:
        """How many placements have bypassed this waiting request while it was blocked at its class's head."""
        item = self._waiting.get(req_id)
        if item is None:
            raise KeyError(f"Request {req_id} is not waiting.")
        cls = item[1]
        return cls.bypass if cls.queue[0] is item else 0

    def free_cores(self) -> int:
        return self._free_c

    def free_gpus(self) -> int:
        return self._free_g

    # ---- pools ------------------------------------------------------------------------------------
    def quota(self, pool: str) -> tuple[int | None, int | None]:
        return self._quota.get(pool, (None, None))

    def usage(self, pool: str) -> tuple[int, int]:
        """Cores and GPUs held now by the pool's placed requests.

        Counted as they are placed and released only while the pool has a quota (the only use placing
        makes of it, so the common placement and release skip it); otherwise added up here, O(placed).
        """
        u = self._usage.get(pool)
        if pool in self._quota and u is not None:
            return (u[0], u[1])
        return self._held_by(pool)

    def _held_by(self, pool: str) -> tuple[int, int]:
        cores = gpus = 0
        for record in self._placed.values():
            if len(record) == 7:  # one node: (node, core mask, GPU mask, cores, GPUs, MB, class key)
                if record[6][0] == pool:
                    cores += record[3]
                    gpus += record[4]
            elif record[0][0] == pool:  # several: (class key, cores, GPUs, held tuples)
                cores += record[1]
                gpus += record[2]
        return cores, gpus

    def free_slots(self, pool: str, cores_per_task: int = 1, gpus_per_task: int = 0) -> int:
        """How many more one-rank tasks of this shape could start now in ``pool``.

        Counts free cores/GPUs node by node and caps by the pool's quota; it does not subtract
        requests already waiting.
        """
        c, g = cores_per_task, gpus_per_task
        if c < 0 or g < 0 or (c == 0 and g == 0):
            raise ValueError(f"free_slots needs a task shape with cores >= 0, gpus >= 0 and not both 0; "
                             f"got cores_per_task={c}, gpus_per_task={g}.")
        total = self._count_fits(c, g)
        qc, qg = self.quota(pool)
        if qc is None and qg is None:
            return total
        uc, ug = self.usage(pool)
        if qc is not None and c:
            total = min(total, max(0, qc - uc) // c)
        if qg is not None and g:
            total = min(total, max(0, qg - ug) // g)
        return total

    # ---- room ------------------------------------------------------------------------------------
    @property
    def offline_nodes(self) -> frozenset[int]:
        return frozenset(self._offline)

    def never_fits(self, req: Request) -> str | None:
        """None if ``req`` could run on an EMPTY allocation (quotas aside); else the reason, as a sentence."""
        ranks, k, g, m, n = req.ranks, req.cores_per_rank, req.gpus_per_rank, req.memory_mb_per_rank, req.nodes
        for name, value, low in (("ranks", ranks, 1), ("cores_per_rank", k, 1), ("gpus_per_rank", g, 0),
                                 ("memory_mb_per_rank", m, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                return f"{name}={value!r} must be an integer of at least {low}."
        types = self._types
        total_cores = sum(c * count for (c, _, _), count in types.items())
        total_gpus = sum(g_ * count for (_, g_, _), count in types.items())
        max_c, max_g, max_m = (max(t[j] for t in types) for j in range(3))
        if k > max_c:
            return f"cores_per_rank={k} exceeds the largest node's {max_c} cores."
        if g > max_g:
            return f"gpus_per_rank={g} exceeds the largest node's {max_g} GPUs."
        if m > max_m:
            return f"memory_mb_per_rank={m} exceeds the largest node's {max_m} MB of memory."
        if not any(c >= k and g_ >= g and m_ >= m for c, g_, m_ in types):
            return (f"no node has cores_per_rank={k} cores, gpus_per_rank={g} GPUs and "
                    f"memory_mb_per_rank={m} MB at once.")
        if n is not None:
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                return f"nodes={n!r} must be an integer of at least 1."
            if n > ranks:
                return f"nodes={n} is more than ranks={ranks}; every node needs a rank."
            if n > self._n:
                return f"nodes={n} exceeds the {self._n} nodes of the allocation."
            share = -(-ranks // n)
            if share * k > max_c:
                return (f"ranks={ranks} over nodes={n} puts up to {share} ranks on a node, needing {share * k} "
                        f"cores (cores_per_rank={k}); the largest node has {max_c}.")
            if share * g > max_g:
                return (f"ranks={ranks} over nodes={n} puts up to {share} ranks on a node, needing {share * g} "
                        f"GPUs (gpus_per_rank={g}); the largest node has {max_g}.")
            if share * m > max_m:
                return (f"ranks={ranks} over nodes={n} puts up to {share} ranks on a node, needing {share * m} "
                        f"MB (memory_mb_per_rank={m}); the largest node has {max_m} MB.")
            if _first_run(self._eligible_mask(ranks, k, g, m, n), n) < 0:
                return (f"nodes={n}: the allocation has no {n} consecutive nodes that can each hold {share} "
                        f"ranks of {k} cores, {g} GPUs and {m} MB.")
            return None
        if ranks * k > total_cores:
            return (f"ranks={ranks} x cores_per_rank={k} needs {ranks * k} cores; the whole allocation has "
                    f"{total_cores} cores.")
        if ranks * g > total_gpus:
            return (f"ranks={ranks} x gpus_per_rank={g} needs {ranks * g} GPUs; the whole allocation has "
                    f"{total_gpus} GPUs.")
        room = 0
        for (c, g_, m_), count in types.items():
            t = c // k
            if g:
                t = min(t, g_ // g)
            if m:
                t = min(t, m_ // m)
            room += t * count
        if room < ranks:
            return (f"ranks={ranks} ranks of {k} cores, {g} GPUs and {m} MB each do not fit: the whole "
                    f"allocation holds at most {room} such ranks (a rank lies on one node).")
        return None
