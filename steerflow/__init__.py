"""steerflow: run learning-enhanced computational campaigns on exact cores and GPUs.

The public surface is small and imported lazily, so worker processes (which import
``steerflow.engines.worker``) start fast.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # (not typing's: `typing` costs 2 ms, and the command catches Ctrl-C only after this import)

__version__ = "0.1.0"

_EXPORTS = {
    "Allocation": "resources", "Node": "resources",
    "Function": "task", "Executable": "task", "TaskState": "task",
    "Runtime": "runtime", "TaskRecord": "runtime",
    "TaskFuture": "futures", "ExecResult": "futures",
    "LocalEngine": "engines.local",
    "Scheduler": "scheduler", "Request": "scheduler", "Placement": "scheduler",
    "SteerflowError": "errors", "TaskSpecError": "errors", "TaskFailed": "errors", "TaskTimeout": "errors",
    "WorkerLost": "errors", "DependencyFailed": "errors", "AllocationError": "errors",
    "RuntimeClosed": "errors", "RuntimeBroken": "errors", "JournalError": "errors",
    "Preempted": "errors", "TimedOut": "errors", "CampaignLocked": "errors", "SpecError": "errors",
    "Campaign": "campaign", "task": "campaign", "AgentError": "campaign",
    "Agent": "agents", "Context": "agents", "Result": "agents", "SteeringError": "agents",
    "on_result": "agents", "on_timer": "agents", "on_event": "agents", "on_start": "agents", "on_end": "agents",
    "on_partial": "agents", "Partial": "agents",
    "as_completed": "concurrent.futures", "wait": "concurrent.futures",
}
_MODULES = {"stop", "checkpoint", "engines", "pipelines", "partial", "learn"}

__all__ = sorted([*_EXPORTS, *_MODULES])


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f"steerflow.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'steerflow' has no attribute {name!r}")
    target = importlib.import_module(module if module.startswith("concurrent") else f"steerflow.{module}")
    value = getattr(target, name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from concurrent.futures import as_completed, wait
    from typing import Any

    from . import checkpoint, engines, learn, partial, pipelines, stop
    from .agents import (Agent, Context, Partial, Result, SteeringError, on_end, on_event, on_partial, on_result,
                         on_start, on_timer)
    from .campaign import AgentError, Campaign, task
    from .engines.local import LocalEngine
    from .errors import (AllocationError, CampaignLocked, DependencyFailed, JournalError, Preempted, RuntimeBroken,
                         RuntimeClosed, SpecError, SteerflowError, TaskFailed, TaskSpecError, TaskTimeout, TimedOut,
                         WorkerLost)
    from .futures import ExecResult, TaskFuture
    from .resources import Allocation, Node
    from .runtime import Runtime, TaskRecord
    from .scheduler import Placement, Request, Scheduler
    from .task import Executable, Function, TaskState
