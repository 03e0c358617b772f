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
    """The results of `Runtime.map`, in order; releases each future once its value is yielded."""
    try:
        while futures:
            future = futures.popleft()
            if more is not None:  # buffersize: one new task for each one consumed
                args = next(more, None)
                if args is not None:
                    futures.append(launch(args))
            try:
                value = future.result(None if end is None else end - time.monotonic())
            finally:
                future.cancel()  # no-op once done; cancels it on a timeout or an interrupt
            del future
            if chunked:
                yield from value
            else:
                yield value
    finally:
        for future in futures:
            future.cancel()
