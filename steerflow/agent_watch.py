"""A watch on the steering thread: say so when an agent's handler has been running for long.

Agents run one at a time in the steering thread, so a handler that blocks (a network call with no
timeout, a lock, a long computation) holds everything behind it: other agents, and the campaign's stop
conditions, ``stop.wall`` included, which cannot interrupt it. Before, such a campaign just hung past its
wall time without a word. The watch samples the steering thread's stack from another thread (nothing is
added to the steering loop's own path) and prints once per stuck call where the handler is.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from types import CodeType, FrameType

AFTER_S = 30.0  # a handler running this long gets one message


class AgentWatch:
    """Started by `Campaign.run` for the steering thread ``ident``; ``call_code`` is the code of the handler call."""

    def __init__(self, ident: int, call_code: CodeType, after_s: float | None = None) -> None:
        self._ident, self._code = ident, call_code
        self._after = AFTER_S if after_s is None else after_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="steerflow-agent-watch", daemon=True)

    def __enter__(self) -> AgentWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        seen: FrameType | None = None
        since = 0.0
        told = False
        while not self._stop.wait(min(5.0, self._after / 4)):
            call = self._handler_call()
            if call is None or call is not seen:
                seen, since, told = call, time.monotonic(), False
                continue
            running = time.monotonic() - since
            if not told and running >= self._after:
                told = True
                print(self._message(call, running), file=sys.stderr, flush=True)
            del call

    def _handler_call(self) -> FrameType | None:
        """The steering thread's frame of the handler call it is in now, if any."""
        frame = sys._current_frames().get(self._ident)
        while frame is not None:
            if frame.f_code is self._code:
                return frame
            frame = frame.f_back
        return None

    def _message(self, call: FrameType, running: float) -> str:
        handler = call.f_locals.get("handler")
        label = getattr(handler, "label", "?")
        where = ""
        top = sys._current_frames().get(self._ident)
        if top is not None:
            last = traceback.extract_stack(top)[-1]
            where = f" (now at {last.filename}:{last.lineno} in {last.name})"
        return (f"steerflow: agent handler {label} has been running for {running:.0f} s{where}. The campaign waits "
                "for it: no other agent runs, and stop conditions (a wall time too) are not checked until it "
                "returns. Long work belongs in a task (ctx.submit); Ctrl-C or SIGTERM stops the campaign cleanly.")
