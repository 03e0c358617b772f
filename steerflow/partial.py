"""Streamed partial results: a running task sends intermediate values to the campaign's agents.

Inside a function task::

    from steerflow import partial
    for step in range(1000):
        ...
        partial.emit({"step": step, "energy": e})      # reaches @on_partial agents now

Inside a program (any language): write one JSON value per line to the named pipe whose path
is in ``$STEERFLOW_PARTIAL`` (``echo '{"step": 10}' > "$STEERFLOW_PARTIAL"``); from Python,
``partial.emit`` does that too. Each line up to 4 KiB arrives whole. Agents get them in order,
while the task still runs, and may preempt or kill it; the campaign journals each one up to 256 KiB
(pickled) as a steering event, so a resumed campaign replays them to its agents like results. A larger
one reaches the agents but is not journaled, so a resume does not replay it: stream progress, and
return large data as the task's result.

Outside a task, ``emit`` does nothing and returns False, so the same code runs in a test.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

ENV = "STEERFLOW_PARTIAL"

_sink: Callable[[Any], None] | None = None  # set by the warm worker while it runs a task


def set_sink(sink: Callable[[Any], None] | None) -> None:
    """Where `emit` sends values in this process (the warm worker sets it; None: nowhere)."""
    global _sink
    _sink = sink


def emit(value: Any) -> bool:
    """Send ``value`` to the campaign while this task runs; False when not inside a task."""
    if _sink is not None:
        _sink(value)
        return True
    path = os.environ.get(ENV)
    if not path:
        return False
    line = (json.dumps(value, default=str) + "\n").encode()
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return True


def decode(data: bytes) -> Any:
    """One line a program wrote: its JSON value, or the text when it is not JSON."""
    text = data.decode(errors="replace").strip()
    try:
        return json.loads(text)
    except ValueError:
        return text
