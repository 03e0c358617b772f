"""Placement on nodes: the free cores, GPUs and memory of every node, and where a rank fits.

It also keeps nodes that join (the allocation grows) and leave (offline nodes hold their own free
room). Questions about this state that change nothing (how many tasks would fit, whether a request
could ever run) are in :mod:`steerflow.scheduler_queries`.

Pure logic (no I/O, no threads, standard library only). :class:`NodeIndex` keeps, per node
of an allocation, bitmasks of its free core and GPU indices, its free counts and its free
memory, and finds room for ranks; the scheduler (:mod:`steerflow.scheduler`) decides which
request to place and builds on it. :class:`Placement` (where a request runs) is defined here and
exported by the scheduler.

Finding room
    Best fit: the node with the fewest free cores, then the fewest free GPUs, that holds
    what is asked (all ranks of a request on one node). Spread: ranks over the nodes with
    the most free room first, as many ranks per node as fit. Whole nodes: the lowest run of
    N consecutive fully free nodes (:func:`_first_run` over a bitmask of free nodes), among
    the nodes able to hold their share. Within a node the lowest free core and GPU indices
    are taken.

Memory
    A node declared with ``memory_mb=0`` has unknown memory, which is not limited.

Cost
    Nodes sit in buckets keyed by (free cores, free GPUs), numbered ``cores * stride + GPUs``, with
    one bitmask of the non-empty ones, so a best-fit node is the lowest set bit of that mask above
    the request's row (a few big-int operations whatever the node count); a node with no free core is in no bucket (only counted by free GPUs), so on a full
    machine a node that fills up or gets a core back costs one bucket operation, not two. The
    common request (one rank, no memory) has its own short path, written out in the scheduler's
    ``schedule()`` and ``release()`` (the same bucket steps as :meth:`NodeIndex._take` and
    :meth:`NodeIndex._give`, with no call). Contiguous whole-node runs are found with shifts over
    a bitmask of fully free nodes. Memory-limited requests scan the nodes of a bucket for one with enough memory.
    Taking room records masks only (a *held* tuple of ints, which the garbage collector stops
    tracking); :func:`slots_of` turns one into :class:`Slot` objects when they are read.

The scheduler subclasses :class:`NodeIndex` so that its hot path reaches this state as plain
attributes and methods of one object, with no extra lookups or calls; the ``_`` names below
are shared with it on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .resources import Node

if TYPE_CHECKING:
    from .scheduler import Request

_UNTRACKED_MEMORY = 1 << 62  # free memory of a node whose memory is unknown (memory_mb=0)


@dataclass(slots=True, frozen=True)
class Slot:
    """What one rank got: core and GPU indices on one node (index into ``allocation.nodes``)."""

    node: int
    cores: tuple[int, ...]
    gpus: tuple[int, ...]
    memory_mb: int


def _bits(mask: int) -> tuple[int, ...]:
    """Indices of the set bits of ``mask``, lowest first."""
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return tuple(out)


def _first_run(mask: int, n: int) -> int:
    """Lowest i such that bits i..i+n-1 of ``mask`` are all set, or -1."""
    have = 1
    while have < n and mask:
        step = have if have < n - have else n - have
        mask &= mask >> step
        have += step
    if not mask:
        return -1
    return (mask & -mask).bit_length() - 1


#: the slots of a one-node record (the scheduler's flat record, whose class key holds the rank shape): a runtime
#: places on the same few cores again and again, so the `Slot` objects (~3 us to build) are built once per place;
#: bounded, and cleared when full (only a cache: a miss builds them again). Slots are frozen, shared safely.
_SLOTS: dict[tuple, tuple[Slot, ...]] = {}
_SLOTS_MAX = 4096


class Placement:
    """Where a request runs: ``slots``, one per rank, in rank order.

    The scheduler records what it took as masks (``_held``) and builds the `Slot` objects
    only when ``slots`` is first read (from a bounded cache of recent places, ``_SLOTS``), so a
    placement decision allocates one small object. ``Placement(request, slots)`` makes one with
    its slots given.
    """

    __slots__ = ("request", "_slots", "_held")

    def __init__(self, request: Request, slots: tuple[Slot, ...] | None = None, held: tuple = ()) -> None:
        # (Scheduler.schedule sets these three fields itself on its common path: keep the two in step)
        self.request = request
        self._slots = slots
        self._held = held  # (node, core mask, GPU mask, cores, GPUs, MB), or a tuple of them (several nodes)

    @property
    def slots(self) -> tuple[Slot, ...]:
        slots = self._slots
        if slots is None:
            held = self._held
            if held[0].__class__ is int and len(held) == 7:  # one node, the scheduler's record: cached
                slots = _SLOTS.get(held)
                if slots is None:
                    req = self.request
                    slots = tuple(slots_of(held, req.cores_per_rank, req.gpus_per_rank, req.memory_mb_per_rank))
                    if len(_SLOTS) >= _SLOTS_MAX:
                        _SLOTS.clear()
                    _SLOTS[held] = slots
                self._slots = slots
                return slots
            req = self.request
            k, g, m = req.cores_per_rank, req.gpus_per_rank, req.memory_mb_per_rank
            if held[0].__class__ is int:
                slots = tuple(slots_of(held, k, g, m))
            else:
                slots = tuple(slot for part in held for slot in slots_of(part, k, g, m))
            self._slots = slots
        return slots

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not Placement:
            return NotImplemented
        return self.request == other.request and self.slots == other.slots  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Placement(request={self.request!r}, slots={self.slots!r})"


def slots_of(held: tuple, k: int, g: int, m: int) -> list[Slot]:
    """The slots of the ranks one held tuple ``(node, core mask, GPU mask, cores, GPUs, MB, ...)`` gave.

    Ranks took the lowest free indices in turn, so rank ``r`` has the ``r``-th group of ``k``
    set bits of the core mask (lowest first) and the ``r``-th group of ``g`` of the GPU mask.
    """
    node, cm, gmask, c = held[0], held[1], held[2], held[3]  # (the scheduler's record adds its class key)
    t = c // k
    cores = _bits(cm)
    gpus = _bits(gmask)
    if t == 1:
        return [Slot(node, cores, gpus, m)]
    return [Slot(node, cores[r * k:(r + 1) * k], gpus[r * g:(r + 1) * g], m) for r in range(t)]


class NodeIndex:
    """Free cores, GPUs and memory of each node, indexed by free room; see the module docstring.

    What was taken is described by a *held* tuple per node, ``(node, core mask, GPU mask,
    cores, GPUs, MB)``, which :meth:`_give` takes back.
    """

    # attributes in slots, not in an instance dict: the hot paths read and write ~60 of them per decision, and the
    # scheduler's ~40 are too many for CPython's shared-key instance dicts (measured: 4.7 % fewer machine
    # instructions per decision, cachegrind). Scheduler adds its own; SchedulerQueries has none.
    __slots__ = ("_n", "_cores", "_gpus", "_mem", "_fc", "_fg", "_nc", "_ng", "_fm", "_min_c", "_min_g", "_types",
                 "_gs", "_buckets", "_gcount", "_pos", "_bm", "_cols", "_isfree", "_free_c", "_free_g", "_offline",
                 "_lists", "_wf", "_eligible")

    def __init__(self, nodes: tuple[Node, ...]) -> None:
        n = len(nodes)
        self._n = n
        self._cores = [nd.cores for nd in nodes]
        self._gpus = [nd.gpus for nd in nodes]
        self._mem = [nd.memory_mb if nd.memory_mb > 0 else _UNTRACKED_MEMORY for nd in nodes]
        self._fc = [(1 << nd.cores) - 1 for nd in nodes]      # free core masks
        self._fg = [(1 << nd.gpus) - 1 for nd in nodes]       # free GPU masks
        self._nc = list(self._cores)                           # free core counts
        self._ng = list(self._gpus)                            # free GPU counts
        self._fm = list(self._mem)                             # free memory
        self._min_c = min(self._cores)
        self._min_g = min(self._gpus)
        # node types (cores, GPUs, MB) -> how many: what never_fits needs, in a few entries whatever the node count
        self._types: dict[tuple[int, int, int], int] = {}
        for t in zip(self._cores, self._gpus, self._mem):
            self._types[t] = self._types.get(t, 0) + 1
        self._gs = gs = max(self._gpus) + 1                    # bucket stride
        # nodes by (free cores r, free GPUs g), bucket r * gs + g; _pos: each node's index in its bucket (removal
        # swaps in the last). Nodes with no free core are in no bucket: no request (each rank needs a core) is
        # placed on them, so on a full machine a node that fills up or gets its first core back costs nothing
        # here. Only GPU-only counts (_count_fits) ask for them: _gcount counts all nodes by free GPUs, the
        # buckets' nodes subtracted.
        rows = max(self._cores) + 1
        self._buckets: list[list[int]] = [[] for _ in range(rows * gs)]
        self._gcount = [0] * gs
        self._pos = [0] * n
        # bit r * gs + g set: bucket (r, g) holds a node. In bucket order, bits run by free cores, then free GPUs:
        # the lowest set bit at or above a request's row is its best fit. _cols[g]: the bits of the buckets with
        # at least g free GPUs, in every row (a request for g GPUs looks only there).
        self._bm = 0
        self._cols = [sum(((1 << gs) - (1 << g)) << r * gs for r in range(rows)) for g in range(gs)]
        for i in range(n):
            self._bucket(i)
        self._isfree = [True] * n
        self._free_c = sum(self._cores)                        # free cores and GPUs of all nodes
        self._free_g = sum(self._gpus)
        self._offline: dict[int, list[int]] = {}               # node -> what it holds while gone: [core mask,
        #                                                        GPU mask, cores, GPUs, MB]
        # the lists the scheduler's hot path reads, as one tuple (one attribute load instead of ten)
        self._lists = (self._cols, self._buckets, gs, self._pos, self._gcount, self._fc, self._fg, self._nc,
                       self._ng, self._isfree, self._min_c)
        self._wf = (1 << n) - 1                                # fully free nodes
        self._eligible: dict[tuple, int] = {}                  # whole-node shape -> nodes able to hold its share

    # ---- node buckets --------------------------------------------------------------------------
    def _bucket(self, i: int) -> None:
        r = self._nc[i]
        g = self._ng[i]
        self._gcount[g] += 1
        if not r:
            return
        j = r * self._gs + g
        b = self._buckets[j]
        self._pos[i] = len(b)
        b.append(i)
        if len(b) == 1:
            self._bm |= 1 << j

    def _unbucket(self, i: int) -> None:
        r = self._nc[i]
        g = self._ng[i]
        self._gcount[g] -= 1
        if r:
            self._drop(i, r, g)

    def _drop(self, i: int, r: int, g: int) -> None:
        """Take node i out of the bucket of (r > 0 free cores, g free GPUs)."""
        j = r * self._gs + g
        b = self._buckets[j]
        last = b.pop()
        if last != i:
            p = self._pos[i]
            b[p] = last
            self._pos[last] = p
        elif not b:
            self._bm ^= 1 << j

    def _move(self, i: int, r0: int, g0: int, r: int, g: int) -> None:
        """Node i's free (cores, GPUs) went from (r0, g0) to (r, g): move it to its new bucket."""
        if g0 != g:
            gcount = self._gcount
            gcount[g0] -= 1
            gcount[g] += 1
        if r0:
            self._drop(i, r0, g0)
        if r:
            j = r * self._gs + g
            b = self._buckets[j]
            self._pos[i] = len(b)
            b.append(i)
            if len(b) == 1:
                self._bm |= 1 << j

    # ---- finding room ------------------------------------------------------------------------------
    def _best_node(self, c: int, g: int, m: int) -> int:
        """The node with the fewest free cores (then GPUs) holding c cores, g GPUs and m MB, or -1."""
        if g >= self._gs:
            return -1  # more GPUs than any node has
        base = c * self._gs
        bits = (self._bm & self._cols[g]) >> base  # buckets with >= c free cores and >= g free GPUs, best fit first
        buckets = self._buckets
        while bits:
            low = bits & -bits
            bits ^= low
            b = buckets[base + low.bit_length() - 1]
            if not m:
                return b[-1]
            fm = self._fm
            for j in range(len(b) - 1, -1, -1):
                if fm[b[j]] >= m:
                    return b[j]
        return -1

    def _spread(self, ranks: int, k: int, g: int, m: int) -> list[tuple[int, int]] | None:
        """(node, ranks on it) covering ``ranks`` ranks, roomiest nodes first, or None."""
        buckets, gs, fm = self._buckets, self._gs, self._fm
        if g >= gs:
            return None  # more GPUs than any node has
        base = k * gs
        bits = (self._bm & self._cols[g]) >> base << base  # buckets with >= k free cores and >= g free GPUs
        left = ranks
        out: list[tuple[int, int]] = []
        while bits:  # roomiest first: by free cores, then free GPUs, both from the most down
            j = bits.bit_length() - 1
            bits ^= 1 << j
            r, gg = divmod(j, gs)
            fit = r // k
            if g and gg // g < fit:
                fit = gg // g
            for node in buckets[j]:
                t = fit
                if m and fm[node] // m < t:
                    t = fm[node] // m
                    if not t:
                        continue
                if t >= left:
                    out.append((node, left))
                    return out
                out.append((node, t))
                left -= t
        return None

    def _eligible_mask(self, ranks: int, k: int, g: int, m: int, nodes: int) -> int:
        """Bits of the nodes that can each hold ``ceil(ranks / nodes)`` ranks of (k, g, m); cached."""
        key = (ranks, k, g, m, nodes)
        mask = self._eligible.get(key)
        if mask is None:
            share = -(-ranks // nodes)
            mask = 0
            for i in range(self._n):
                if (self._cores[i] >= share * k and self._gpus[i] >= share * g
                        and self._mem[i] >= share * m):
                    mask |= 1 << i
            self._eligible[key] = mask
        return mask

    # ---- taking and giving back resources -----------------------------------------------------
    def _take(self, i: int, t: int, k: int, g: int, m: int, slots: list[Slot] | None = None) -> tuple:
        """Give t ranks of (k cores, g GPUs, m MB) on node i, lowest indices first.

        Returns what was taken: (node, core mask, GPU mask, cores, GPUs, MB). Rank ``r`` has the
        ``r``-th group of ``k`` lowest cores of that mask (and of ``g`` GPUs): :func:`slots_of`
        builds the slots from it. They are built here only when ``slots`` is given (appended to
        it): the scheduler's hot path builds none (its `Placement` builds them when read).
        """
        c = t * k
        gg = t * g
        fc = self._fc[i]
        if c == 1:
            rest = fc & (fc - 1)  # without its lowest free core
        else:
            rest = fc
            for _ in range(c):
                rest &= rest - 1
        cm = fc ^ rest
        self._fc[i] = rest
        gmask = 0
        if gg:
            fg = self._fg[i]
            restg = fg
            for _ in range(gg):
                restg &= restg - 1
            gmask = fg ^ restg
            self._fg[i] = restg
        nc = self._nc
        ng = self._ng
        r0 = nc[i]
        g0 = ng[i]
        r = nc[i] = r0 - c
        g1 = ng[i] = g0 - gg
        if m:
            self._fm[i] -= t * m
        self._move(i, r0, g0, r, g1)
        if self._isfree[i]:
            self._isfree[i] = False
            self._wf ^= 1 << i
        held = (i, cm, gmask, c, gg, t * m)
        if slots is not None:
            slots.extend(slots_of(held, k, g, m))
        return held

    def _take_whole(self, start: int, n: int, ranks: int, k: int, g: int, m: int, slots: list[Slot]) -> list[tuple]:
        """Give ALL of nodes start..start+n-1 to ``ranks`` ranks, block-wise; append the slots.

        Node ``start + j`` gets ranks ``j * ranks // n`` up to ``(j + 1) * ranks // n - 1``;
        each slot lists what its rank uses, but every core, GPU and MB of those nodes is
        taken. Returns one held tuple a node.
        """
        held = []
        for j, i in enumerate(range(start, start + n)):
            self._take(i, (j + 1) * ranks // n - j * ranks // n, k, g, m, slots)
            # the task holds the whole node: take what its ranks left too
            self._unbucket(i)
            self._fc[i] = self._fg[i] = self._nc[i] = self._ng[i] = self._fm[i] = 0
            self._bucket(i)
            held.append((i, (1 << self._cores[i]) - 1, (1 << self._gpus[i]) - 1,
                         self._cores[i], self._gpus[i], self._mem[i]))
        return held

    def _give(self, held: tuple) -> None:
        """Take back what one held tuple ``(node, core mask, GPU mask, cores, GPUs, MB)`` describes."""
        i, cm, gmask, c, g, m = held
        self._fc[i] |= cm
        if gmask:
            self._fg[i] |= gmask
        nc = self._nc
        ng = self._ng
        r0 = nc[i]
        g0 = ng[i]
        r = nc[i] = r0 + c
        gg = ng[i] = g0 + g
        fm = self._fm[i] = self._fm[i] + m
        self._move(i, r0, g0, r, gg)
        if r == self._cores[i] and gg == self._gpus[i] and fm == self._mem[i]:
            self._isfree[i] = True
            self._wf |= 1 << i

    # ---- nodes that join and leave (the scheduler's update_nodes) --------------------------------
    def _grow(self, nodes: tuple[Node, ...]) -> None:
        """Index a grown list of nodes (the first ones unchanged, new ones appended), keeping what is taken."""
        old = self._n
        if len(nodes) == old:
            return
        state = [(self._fc[i], self._fg[i], self._nc[i], self._ng[i], self._fm[i], self._isfree[i])
                 for i in range(old)]
        free_c, free_g, offline = self._free_c, self._free_g, self._offline
        NodeIndex.__init__(self, nodes)
        for i, (fc, fg, nc, ng, fm, isfree) in enumerate(state):
            self._unbucket(i)
            self._fc[i], self._fg[i], self._nc[i], self._ng[i], self._fm[i] = fc, fg, nc, ng, fm
            self._bucket(i)
            if not isfree:
                self._isfree[i] = False
                self._wf &= ~(1 << i)
        self._free_c = free_c + sum(self._cores[old:])
        self._free_g = free_g + sum(self._gpus[old:])
        self._offline = offline

    def _set_offline(self, offline: frozenset[int] | set[int]) -> None:
        """Nodes now gone (``offline``) get nothing new; a node back from that gets its room again."""
        for i in list(self._offline):
            if i not in offline:
                held = self._offline.pop(i)
                self._give((i, *held))
                self._free_c += held[2]
                self._free_g += held[3]
        for i in offline:
            if i not in self._offline:
                self._offline[i] = [0, 0, 0, 0, 0]
            self._absorb(i)

    def _absorb(self, i: int) -> None:
        """An offline node's free room is held by the node itself, so nothing is placed there."""
        c, g = self._nc[i], self._ng[i]
        if not c and not g and not self._fm[i] and not self._isfree[i]:
            return
        held = self._offline[i]
        self._unbucket(i)
        held[0] |= self._fc[i]
        held[1] |= self._fg[i]
        held[2] += c
        held[3] += g
        held[4] += self._fm[i]
        self._fc[i] = self._fg[i] = self._nc[i] = self._ng[i] = self._fm[i] = 0
        self._bucket(i)
        if self._isfree[i]:
            self._isfree[i] = False
            self._wf &= ~(1 << i)
        self._free_c -= c
        self._free_g -= g

    # ---- read-only introspection ---------------------------------------------------------------
    def _count_fits(self, c: int, g: int) -> int:
        """How many (c cores, g GPUs) pieces the free room of all nodes holds, node by node."""
        total = 0
        gs = self._gs
        if g >= gs:
            return 0  # more GPUs than any node has
        if not c and g:  # nodes with no free core: all nodes with gg >= g free GPUs, less those in buckets
            for gg in range(g, gs):
                in_buckets = sum(len(self._buckets[j]) for j in range(gs + gg, len(self._buckets), gs))
                total += gg // g * (self._gcount[gg] - in_buckets)
        bits = (self._bm & self._cols[g]) >> c * gs << c * gs  # buckets with >= c free cores, >= g free GPUs
        while bits:
            j = bits.bit_length() - 1
            bits ^= 1 << j
            r, gg = divmod(j, gs)
            fit = r // c if c else 1 << 62
            if g and gg // g < fit:
                fit = gg // g
            total += fit * len(self._buckets[j])
        return total

    def free_memory_mb(self, node: int) -> int | None:
        """Free memory of one node; None where the node's memory is unknown (not limited)."""
        return None if self._mem[node] == _UNTRACKED_MEMORY else self._fm[node]
