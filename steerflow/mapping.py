"""`Runtime.map`'s machinery: calls grouped into chunks, and the iterator of results in order."""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from .futures import TaskFuture


def chunks(items: Iterator[tuple], size: int) -> Iterator[list[tuple]]:
    while chunk := list(itertools.islice(items, size)):
        yield chunk


def run_chunk(fn: Callable[..., Any], chunk: list[tuple]) -> list[Any]:
    """Runs in the worker: one task for ``chunksize`` calls of ``map``."""
    return [fn(*args) for args in chunk]


def map_results(futures: deque[TaskFuture], more: Iterator[tuple] | None, launch: Callable[[tuple], TaskFuture],
                 end: float | None, chunked: bool) -> Iterator[Any]:
    """The results of `Runtime.map`, in order; releases each future once its value is yielded.

    No value is kept in a local while the caller holds it (a suspended generator's locals stay alive):
    a caller that drops a result frees it, as with the standard executors.
    """
    try:
        while futures:
            if more is not None:  # buffersize: one new task for each one consumed
                args = next(more, None)
                if args is not None:
                    futures.append(launch(args))
            if not chunked:
                yield _result(futures.popleft(), end)
                continue
            values = _result(futures.popleft(), end)
            values.reverse()
            while values:
                yield values.pop()
    finally:
        for future in futures:
            future.cancel()


def _result(future: TaskFuture, end: float | None) -> Any:
    try:
        return future.result(None if end is None else end - time.monotonic())
    finally:
        future.cancel()  # no-op once done; cancels it on a timeout or an interrupt
