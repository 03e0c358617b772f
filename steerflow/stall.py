"""A campaign that can never make progress says so, instead of waiting forever.

The one stall a campaign can prove: nothing runs, no event or timer is pending, and every task
that waits needs more cores or GPUs than its pool's quota allows (``pools={"train": 0}``, or a
2-core task in a 1-core pool). Nothing but the agents could raise the quota, and without a
result, event or timer no agent will run again. Tasks that wait for nodes to join (a Dask
pilot still queued) or for dependencies are not stuck by this rule, so they never trigger it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .task import TaskState

if TYPE_CHECKING:
    from .runtime import Runtime

_ACTIVE = frozenset({TaskState.PLACED, TaskState.RUNNING, TaskState.PAUSED})

#: the same stall seen this long apart is no transient (a task on its way between two threads)
CONFIRM_S = 1.0


def quota_stall(runtime: Runtime) -> str | None:
    """Why every unfinished task is stuck behind a pool quota it can never fit under, or None."""
    if runtime.scheduler.n_placed:  # the common case, answered without a look at the tasks
        return None
    try:
        records = runtime.tasks()  # (the loop thread may change the table meanwhile: then ask again later)
    except RuntimeError:
        return None
    blocked: dict[str, list[int]] = {}
    behind = 0
    for record in records:
        state = record.state
        if state in _ACTIVE:
            return None
        if record.waiting_on or state is not TaskState.WAITING:
            behind += not state.finished  # waits for a dependency (itself stuck), or is on its way in
            continue
        req = record.request
        cores, gpus = req.ranks * req.cores_per_rank, req.ranks * req.gpus_per_rank
        quota_cores, quota_gpus = runtime.scheduler.quota(req.pool)
        if not ((quota_cores is not None and cores > quota_cores) or (quota_gpus is not None and gpus > quota_gpus)):
            return None  # it fits its quota: it waits for free resources or nodes, which may come
        blocked.setdefault(req.pool, []).append(record.id)
    if not blocked:
        return None
    parts = []
    for pool, ids in sorted(blocked.items()):
        quota_cores, quota_gpus = runtime.scheduler.quota(pool)
        limits = " and ".join(f"{q} {what}" for q, what in ((quota_cores, "cores"), (quota_gpus, "GPUs"))
                              if q is not None)
        parts.append(f"{len(ids)} task(s) of pool {pool!r} (e.g. task {min(ids)}) need more than its quota of {limits}")
    waiting = f", and {behind} task(s) wait for them" if behind else ""
    return (f"{'; '.join(parts)}{waiting}. Nothing runs and no agent will run again to raise the quota: "
            "give the pool a larger quota (Campaign(pools=...) or ctx.set_quota from a handler), or submit the "
            "task with fewer cores/GPUs.")


class StallWatch:
    """Confirms a stall only when the same one is seen twice, at least `CONFIRM_S` apart."""

    def __init__(self) -> None:
        self._seen: tuple[str, float] | None = None

    def observe(self, runtime: Runtime) -> str | None:
        reason = quota_stall(runtime)
        now = time.monotonic()
        if reason is None or self._seen is None or self._seen[0] != reason:
            self._seen = (reason, now) if reason is not None else None
            return None
        return reason if now - self._seen[1] >= CONFIRM_S else None
