"""Admission: can a task ever run on this allocation? Checked at submit, so a bad task fails at once."""

from __future__ import annotations

from .errors import TaskSpecError
from .resources import Allocation
from .scheduler import Request, Scheduler
from .task import Function, TaskSpec


def check_fits(spec: TaskSpec, alloc: Allocation, scheduler: Scheduler) -> None:
    """Raise `TaskSpecError` naming the field if ``spec`` could never run on ``alloc`` (quotas aside)."""
    if isinstance(spec, Function):
        if spec.cores > alloc.max_cores_per_node:
            raise TaskSpecError("cores", spec.cores, f"exceeds the {alloc.max_cores_per_node} cores of the "
                                "largest node; a function task runs on one node.", alloc.max_cores_per_node)
        if spec.gpus > alloc.max_gpus_per_node:
            raise TaskSpecError("gpus", spec.gpus, f"exceeds the {alloc.max_gpus_per_node} GPUs of the "
                                "largest node.", alloc.max_gpus_per_node)
    else:
        if spec.cores_per_rank > alloc.max_cores_per_node:
            raise TaskSpecError("cores_per_rank", spec.cores_per_rank, "exceeds the "
                                f"{alloc.max_cores_per_node} cores of the largest node.",
                                alloc.max_cores_per_node)
        if spec.gpus_per_rank > alloc.max_gpus_per_node:
            raise TaskSpecError("gpus_per_rank", spec.gpus_per_rank, "exceeds the "
                                f"{alloc.max_gpus_per_node} GPUs of the largest node.", alloc.max_gpus_per_node)
        if spec.ranks * spec.cores_per_rank > alloc.total_cores:
            raise TaskSpecError("ranks", spec.ranks, f"x cores_per_rank={spec.cores_per_rank} needs "
                                f"{spec.ranks * spec.cores_per_rank} cores; the whole allocation has "
                                f"{alloc.total_cores}.", alloc.total_cores)
        if spec.nodes is not None and spec.nodes > len(alloc.nodes):
            raise TaskSpecError("nodes", spec.nodes, f"exceeds the {len(alloc.nodes)} nodes of the allocation.",
                                len(alloc.nodes))
    if spec.memory_mb and alloc.max_memory_mb_per_node and spec.memory_mb > alloc.max_memory_mb_per_node * (
            spec.nodes or spec.ranks):
        raise TaskSpecError("memory_mb", spec.memory_mb, "exceeds the memory of the nodes it could use "
                            f"({alloc.max_memory_mb_per_node} MB per node).", alloc.max_memory_mb_per_node)
    request = Request(0, spec.ranks, spec.cores_per_rank, spec.gpus_per_rank,
                      -(-spec.memory_mb // spec.ranks), spec.nodes, spec.priority, spec.pool)
    reason = scheduler.never_fits(request)
    if reason:
        raise TaskSpecError("resources", request, reason)
