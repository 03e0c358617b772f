"""Run-time estimates for the scheduler's backfill into a reservation's shadow (`steerflow.scheduler.Estimator`).

The scheduler asks only while a wide request holds a reservation: how long a waiting task will run,
and when a running one will end. A task's ``timeout`` is the estimate when it has one: a bound, as a
batch system's time limit, so what starts in the shadow truly cannot delay the reserved task. Else a
function's smoothed run time on its worker (the one pipelining keeps, by `pipelining.run_time_key`):
an estimate, so a reserved task may start late by what such a task overran. A program without a
timeout, or a function not seen end yet, is unknown: it never starts in a reservation's shadow.
"""

from __future__ import annotations

import math
import time
import weakref
from typing import Any

from .pipelining import run_time_key
from .scheduler import Request
from .task import Function, TaskState


class RunTimeEstimates:
    """A runtime's estimates; the runtime is held weakly (the scheduler it feeds belongs to it)."""

    __slots__ = ("_runtime",)

    def __init__(self, runtime: Any) -> None:
        self._runtime = weakref.ref(runtime)

    def now(self) -> float:
        return time.time()  # (the clock of TaskRecord.started)

    def _of(self, record: Any) -> float:
        spec = record.spec
        if spec.timeout is not None:
            return float(spec.timeout)
        if isinstance(spec, Function):
            run_times = getattr(self._runtime(), "_run_times", None)
            if run_times:
                return run_times.get(run_time_key(spec.fn), math.inf)
        return math.inf

    def run_time(self, req: Request) -> float:
        runtime = self._runtime()
        record = runtime._records.get(req.id) if runtime is not None else None
        return math.inf if record is None else self._of(record)

    def end(self, req_id: int) -> float:
        runtime = self._runtime()
        record = runtime._records.get(req_id) if runtime is not None else None
        if record is None or record.state is not TaskState.RUNNING or not record.started:
            return math.inf  # (placed on cores a running task still holds, or held under another id: unknown)
        return record.started + self._of(record)
