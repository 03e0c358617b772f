"""The steering thread: events delivered to the agents one at a time, in journal order.

`Campaign.run` calls `_steer`, which first replays a resumed journal's steering events to the
handlers (so agents rebuild their state by doing what they did before), then delivers new
results, partial values, timers, named events and `steerflow cancel` requests until the
campaign stops. Every delivery is journaled before the submissions its handlers make.
This is a part of `Campaign` (a mixin over its state), kept apart so each file has one concern.
"""

from __future__ import annotations

import json
import pickle
import queue
import sys
import threading
import time
import warnings
from typing import Any

from . import journal as journal_mod
from . import launch
from .agents import Handler, Partial, Result, SteeringError
from .errors import TaskFailed, describe_error, first_line
from .futures import SettledFuture, TaskFuture
from .stall import StallWatch
from .stop import Condition
from .task import Function, TaskSpec


TICKS_PENDING_S = 1.0  # the longest a run of timer ticks waits to be journaled (one row for the run, see `Campaign._ticks`)
DRAIN = 255  # queue items (a round of the runtime counts as one) delivered per wake-up beyond the first, before timers and control


#: while more tasks are submitted than there are cores, the steering thread lets results gather this long after
#: each burst it delivered, instead of waking (and taking the GIL from the runtime's loop) once per round: it
#: still reacts within a millisecond, and no core waits on it, since queued tasks start without the agents.
#: 1 ms instead of 0.5: the steering thread's wake-ups per no-op task 0.45 -> 0.2, its CPU per task -3 us (#13c)
GATHER_S = 0.001
# A partial result larger than this is delivered but not journaled (nor replayed): before, 50 tasks each streaming
# ten 1 MiB arrays made a 500 MB journal. Results, not partials, are the place for large data.
PARTIAL_KEPT_BYTES = 256 * 1024
# ... and a task's partial results are journaled up to this many bytes in all (per driver): before, one task streaming
# 200 KB progress values forever grew the journal without a bound. Later ones reach the agents but are not replayed.
PARTIAL_TASK_BYTES = 4 * 1024 * 1024
# ... counting each partial's row (its numbers, ~70 bytes in SQLite) as this many bytes: before, a task streaming 200,000
# small values (a progress counter) journaled 15 MB, every row kept after the payloads' bound was reached.
PARTIAL_ROW_BYTES = 64
# Event payloads are journaled up to this many bytes per event name, and EVENT_BYTES in all (per driver): before, an
# agent emitting a 250 KB event per result journaled 250 KB a result without a bound. Past it, like a payload over
# PARTIAL_KEPT_BYTES, an event is journaled as NOT_KEPT: on resume its replayed emitter gives its payload again.
EVENT_NAME_BYTES = 4 * 1024 * 1024
EVENT_BYTES = 16 * 1024 * 1024
# An agent's error is said (and journaled) with at most this many characters of its message, and a driver journals
# its first AGENT_ERRORS_KEPT errors (then their count): before, an agent with on_agent_error="log" raising a 1 MB
# message on each of 100 results made a 96 MB journal and printed 100 MB.
AGENT_ERROR_CHARS = 4000
AGENT_ERRORS_KEPT = 100
# An event payload larger than that is journaled as this marker: on resume, the replayed agent that emitted it emits it
# again (replay rebuilds it from the same results), and that payload is delivered in its place.
NOT_KEPT = b"steerflow:payload-not-kept"


def _text_of(exc: BaseException) -> str:
    """``": message"`` of an agent's exception, clipped; "" when it has none (a MemoryError); a sentence when its
    ``str()`` itself raises (before, that escaped the steering thread: a traceback instead of the agent's error)."""
    try:
        text = str(exc)
    except Exception as inner:  # noqa: BLE001 - the agent's own exception class
        text = f"(its message cannot be shown: str() raised {type(inner).__name__})"
    if len(text) > AGENT_ERROR_CHARS:
        text = f"{text[:AGENT_ERROR_CHARS]}... ({len(text) - AGENT_ERROR_CHARS:,} more characters)"
    return f": {text}" if text else ""


class SteeringLoop:
    """The steering-thread half of `Campaign`: it uses the campaign's state and defines none."""

    def _steer(self, stop: Condition | None, display: Any, stop_when_idle: bool) -> None:
        self._steering_ident = threading.get_ident()
        now = time.monotonic()
        for handler in self._handlers:
            handler.next_due = now + handler.seconds
        self._replay()
        if self._resume is None or not self._resume.started_before:
            self._deliver(("start",))
        next_control = 0.0
        timers = any(h.kind == "timer" for h in self._handlers)  # a timer's handler could still raise a quota
        stall = StallWatch()
        while self._stop_reason is None:
            if self._runtime.failure is not None:
                failure = self._runtime.failure
                self._stop_reason = f"the runtime's loop failed ({type(failure).__name__}: {failure})"
                break
            if self.journal.error is not None:  # never run on unjournaled: stop taking new work
                self._stop_reason = f"the journal could not be written ({describe_error(self.journal.error)})"
                break
            if stop is not None and stop.met(self.ctx):
                self._stop_reason = "stop condition met"
                break
            if stop_when_idle and self._active == 0 and self._events.empty():
                self._stop_reason = "idle: every task has finished"
                break
            now = time.monotonic()
            wake = min([h.next_due for h in self._handlers if h.kind == "timer"] + [now + 0.25])
            try:
                item = self._events.get(timeout=max(0.0, wake - now))
            except queue.Empty:
                item = None
            if item is not None:
                self._deliver_queued(item, stop)
                if self._stop_reason is None and self._active > self._cores():
                    # more tasks than cores: the runtime refills freed cores from its queue without the agents,
                    # so the next results may gather for a moment (one wake-up, not one per round of the loop)
                    time.sleep(GATHER_S)
            now = time.monotonic()
            for handler in self._handlers:
                if handler.kind == "timer" and handler.next_due <= now and self._stop_reason is None:
                    handler.next_due = now + handler.seconds
                    self._deliver(("timer", handler.label))
            if self._ticks is not None and now - self._ticks[2] >= TICKS_PENDING_S:
                self._journal_delivered()
            if now >= next_control:
                next_control = now + 0.25
                self._poll_control()
                if stop_when_idle and self._active and self._events.empty() and not timers:
                    stalled = stall.observe(self._runtime)
                    if stalled is not None:
                        self._stop_reason = f"stalled: {stalled}"
                        warnings.warn(f"The campaign in {self.directory} stopped: {stalled}", stacklevel=3)
                if display is not None:
                    display.update()

    def _deliver_queued(self, item: tuple, stop: Condition | None) -> None:
        """Deliver ``item`` and what else is queued now: one thread wake-up per burst of events, not per event.

        A round of the runtime's loop comes as one item (its results and partials, in order); the stop
        condition is still asked before every delivery, and what a stop leaves is never delivered.
        """
        get_nowait = self._events.get_nowait
        deliver = self._deliver
        items = 0
        try:
            while True:
                for each in (item[1] if item[0] == "round" else (item,)):
                    if self._stop_reason is not None or (stop is not None and stop.met(self.ctx)):
                        return
                    deliver(each)
                items += 1
                if items > DRAIN:  # timers and control requests get their turn
                    return
                try:
                    item = get_nowait()
                except queue.Empty:
                    return
        finally:
            if self._delivered:  # the burst's deliveries: one journal row (see `Campaign._journal_delivered`)
                self._journal_delivered()  # (timer ticks stay pending: a run of them is one row, see `_ticks`)

    def _cores(self) -> int:
        """The allocation's cores, counted again only when the runtime's allocation changes (Dask nodes)."""
        allocation = self._runtime.allocation
        if allocation is not self._counted[0]:
            self._counted = (allocation, allocation.total_cores)
        return self._counted[1]

    def _replay(self) -> None:
        if self._resume is None:
            return
        self._replaying = True
        replaced = self._resume.replaced  # key -> the seq up to which its journaled deliveries do not count
        try:
            for seq, kind, key, name, payload in self._resume.steering():
                if self._stop_reason is not None:
                    break
                if kind == "result" or kind == "results":
                    for key in ((key,) if kind == "result" else journal_mod.unpack_keys(payload)):
                        if self._stop_reason is not None:
                            break
                        if replaced and seq <= replaced.get(key, -1):
                            continue  # (an earlier driver's delivery: this task's later one counts)
                        if key not in self._futures:
                            self._not_submitted += 1  # said for the first few, then once (before: once a task, a
                            if self._not_submitted <= 3:  # script submitting 3 of 200 tasks printed 197 warnings)
                                warnings.warn(f"The journal delivered task {key}'s result, but this run has not "
                                              "submitted it at that point: the campaign is not deterministic. It is "
                                              "delivered when this run submits it.", stacklevel=1)
                            elif self._not_submitted == 4:
                                warnings.warn(f"More journaled deliveries come before this run submits their tasks "
                                              f"(task {key} and later ones): each is delivered when this run submits "
                                              "it, without a warning each.", stacklevel=1)
                            self._resume.undelivered.add(key)  # (before: never delivered, the campaign hung)
                            self._replace_deliveries(key)
                            continue
                        if not self._futures[key].done():  # changed since (submit warned): it runs again, and
                            continue                        # its new result reaches the agents when it ends
                        self._deliver(("result", key), log=False)
                elif kind == "partial" and key in self._futures:
                    attempt, index, stamp = json.loads(name)
                    self._partials[key] = max(self._partials.get(key, 0), index + 1)
                    if payload is not None:  # (None: too large to keep, see PARTIAL_KEPT_BYTES; not replayed)
                        self._deliver(("partial", key, attempt, index, pickle.loads(payload), stamp), log=False)
                elif kind == "event":
                    again = None  # the payload the replayed emitter gave this event again, if it did
                    for i, (pending, *rest) in enumerate(self._pending_emits):
                        if pending == name:
                            again = rest
                            del self._pending_emits[i]
                            break
                    if payload == NOT_KEPT:  # too large to keep: the replayed emitter's own payload stands in
                        if again is None:
                            continue  # (its emitter did not emit it again: nothing to deliver)
                        value = again[0]
                    else:
                        value = pickle.loads(payload) if payload else None
                    self._deliver(("event", name, value), log=False)
                elif kind in ("timer", "start"):
                    self._deliver((kind, name), log=False)
                elif kind == "timers":  # a run of ticks of one timer, journaled as one row
                    for _ in range(key or 0):
                        if self._stop_reason is not None:
                            break
                        self._deliver(("timer", name), log=False)
        finally:
            self._replaying = False
        for name, payload, blob in self._pending_emits:  # raised before the crash, never delivered
            self._events.put(("event", name, payload, blob))
        self._pending_emits.clear()

    def _deliver(self, item: tuple, log: bool = True) -> None:
        kind = item[0]
        if kind == "result":
            key = item[1]
            future = self._futures.pop(key, None)
            if future is None:
                return  # delivered already
            spec = self._specs.pop(key)
            result = self._result(key, future, spec)
            # the state the journal says (the future's own state, read from its outcome without asking the runtime)
            state = ("interrupted" if key in self._interrupted else "cancelled" if result.cancelled
                     else "done" if result.ok else "failed")
            self._final_counts[state] = self._final_counts.get(state, 0) + 1
            if future.__class__ is SettledFuture:  # resolved from the journal: no runtime record keeps it (`futures`)
                self._done_futures[key] = future
            if log:
                if self._ticks is not None:  # the ticks before it, in order
                    self._journal_delivered()
                self._delivered.append(key)  # journaled with the rest of this burst, before anything else
            self._active -= 1
            self._results_seen += 1
            if self._partial_bytes:
                self._partial_bytes.pop(key, None)
            handled = result.ok
            for handler in self._handlers:
                if handler.kind == "result" and handler.matches(result):
                    handled = handled or getattr(getattr(handler.fn, "__self__", None), "handles_failures", True)
                    if handler.every == 1:
                        self._call(handler, result, self.ctx)
                    else:
                        handler.buffer.append(result)
                        if len(handler.buffer) >= handler.every:
                            batch, handler.buffer = handler.buffer, []
                            self._call(handler, batch, self.ctx)
            if not (handled or result.handled or result.cancelled):
                self.unhandled[key] = self.failures.get(key) or first_line(result.error)
        elif kind == "partial":
            _, key, attempt, index, value, stamp = item
            spec = self._specs.get(key)  # type: ignore[assignment]
            if spec is None:
                return  # its result was delivered already
            if log:
                blob: bytes | None = pickle.dumps(value, 5)
                kept = self._partial_bytes.get(key, 0)
                cost = len(blob) + PARTIAL_ROW_BYTES  # type: ignore[arg-type]
                if len(blob) > PARTIAL_KEPT_BYTES or kept + cost > PARTIAL_TASK_BYTES:  # type: ignore[arg-type]
                    self._partial_not_kept(key, len(blob), kept)  # type: ignore[arg-type]
                    blob, cost = None, PARTIAL_ROW_BYTES
                if kept + cost <= PARTIAL_TASK_BYTES:  # past the task's bound, not even its row (not replayed)
                    self._partial_bytes[key] = kept + cost
                    self.journal.put("steer", self._next_seq(), "partial", key, json.dumps([attempt, index, stamp]),
                                     blob, time.time())
            partial = Partial(key, spec.label(), spec.pool, spec.tags, index, value, attempt, stamp,  # type: ignore
                              replayed=not log)
            for handler in self._handlers:
                if handler.kind == "partial" and handler.matches(partial):
                    self._call(handler, partial, self.ctx)
        elif kind == "event":
            name, payload = item[1], item[2]
            if log:  # (the payload as `emit` pickled it, when it came from there)
                blob = item[3] if len(item) > 3 else _pickle_or_none(payload)
                if blob is not None and (len(blob) > PARTIAL_KEPT_BYTES  # a model, say: a resume's emitter re-emits it
                                         or not self._event_kept(name, len(blob))):
                    blob = NOT_KEPT
                self.journal.put("steer", self._next_seq(), "event", None, name, blob, time.time())
            for handler in self._handlers:
                if handler.kind == "event" and handler.name == name:
                    self._call(handler, payload, self.ctx)
        elif kind == "timer":
            if log:  # one more tick of a pending run of this timer, or the start of a run (see `Campaign._ticks`)
                ticks = self._ticks
                if ticks is not None and ticks[0] == item[1] and time.monotonic() - ticks[2] < TICKS_PENDING_S:
                    ticks[1] += 1
                else:
                    if self._delivered or ticks is not None:
                        self._journal_delivered()
                    self._ticks = [item[1], 1, time.monotonic()]
            for handler in self._handlers:
                if handler.kind == "timer" and handler.label == item[1]:
                    self._call(handler, self.ctx)
        elif kind == "start":
            if log:
                self.journal.put("steer", self._next_seq(), "start", None, None, None, time.time())
            for handler in self._handlers:
                if handler.kind == "start":
                    self._call(handler, self.ctx)

    def _event_kept(self, name: str, size: int) -> bool:
        """Whether an event payload of ``size`` bytes fits the journal's budget for events (and count it if so)."""
        kept = self._event_bytes
        by_name = kept.get(name, 0)
        if by_name + size <= EVENT_NAME_BYTES and kept[None] + size <= EVENT_BYTES:  # type: ignore[index]
            kept[name] = by_name + size
            kept[None] += size  # type: ignore[index]
            return True
        if not self._told_events:
            self._told_events = True
            print(f"steerflow: the agents emitted more than {EVENT_NAME_BYTES // 2**20} MiB of {name!r} events (or "
                  f"{EVENT_BYTES // 2**20} MiB of events in all). The journal keeps no more of their payloads; on "
                  "resume the replayed agent that emits them gives them again. Emit small values (a model's file "
                  "path or version, not the model) so a resume does not depend on it.", file=sys.stderr, flush=True)
        return False

    def _partial_not_kept(self, key: int, size: int, kept: int) -> None:
        if self._told_partials:
            return
        self._told_partials = True
        what = (f"a partial result of {size / 2**20:.1f} MB" if size > PARTIAL_KEPT_BYTES else
                f"partial results past {PARTIAL_TASK_BYTES // 2**20} MiB in all ({kept / 2**20:.1f} MiB kept)")
        print(f"steerflow: task {key} streamed {what}. The journal keeps partial results up to "
              f"{PARTIAL_KEPT_BYTES // 1024} KiB each and {PARTIAL_TASK_BYTES // 2**20} MiB a task (they are replayed "
              "on resume); the others reach the agents now but a resume does not replay them. Stream small progress "
              "values; return large data as the task's result, or write it to a file and stream its path.",
              file=sys.stderr, flush=True)

    def _call(self, handler: Handler, *args: Any) -> None:
        try:
            handler.fn(*args)
        except Exception as exc:  # noqa: BLE001 - an agent's bug must not corrupt the campaign
            message = f"Agent handler {handler.label} raised {type(exc).__name__}" + _text_of(exc)
            if self._delivered or self._ticks is not None:
                self._journal_delivered()
            self._agent_errors += 1  # journaled: the first AGENT_ERRORS_KEPT of a driver, then their count
            if self._agent_errors <= AGENT_ERRORS_KEPT:
                self.journal.put("meta", f"agent_error_{time.time():.6f}", json.dumps(message))
            else:
                self.journal.put("meta", "agent_errors_not_kept", json.dumps(self._agent_errors - AGENT_ERRORS_KEPT))
            if self.on_agent_error == "stop":
                self._agent_error = exc
                self._request_stop(message)
            else:
                print(f"steerflow: {message}", file=sys.stderr)

    def _result(self, key: int, future: TaskFuture, spec: TaskSpec) -> Result:
        stored = self._resume.stored.pop(key, None) if self._resume is not None else None
        record = self._runtime.record(key) if stored is None else None  # a stored result never ran in this driver
        try:
            cancelled, value, error = future.outcome()
        except TaskFailed as exc:  # its value cannot be rebuilt here (a class the driver cannot import): its failure
            cancelled, value, error = False, None, exc  # for the agents, not the end of the campaign
        if cancelled:
            error = TaskFailed(f"Task {key} was cancelled.")
        if record is not None:
            submitted, started, ended = record.submitted, record.started, record.ended
        else:
            submitted, started, ended = 0.0, (stored.started if stored else 0.0), (stored.ended if stored else 0.0)
        function = spec.__class__ is Function or isinstance(spec, Function)
        return Result(key, spec.label(), spec.pool, spec.tags, error is None, value, error,  # type: ignore[attr-defined]
                      spec.args if function else tuple(spec.argv),  # type: ignore[attr-defined]
                      spec.kwargs if function else {}, submitted, started, ended,  # type: ignore[attr-defined]
                      cancelled, record is None)

    def _poll_control(self) -> None:
        """Requests from `steerflow cancel` (another process); see `steerflow.control`."""
        if self._delivered or self._ticks is not None:
            self._journal_delivered()
        for row_id, op, arg in self._control.new():
            if op == "cancel":
                try:
                    self.cancel(int(arg))
                except (SteeringError, KeyError, ValueError) as exc:
                    print(f"steerflow: cannot cancel {arg}: {exc}", file=sys.stderr)
            elif op == "stop":
                reason = "stopped from the command line (steerflow cancel --stop)"
                self._request_stop(reason)
                if arg == "script":  # the whole script stops: its later campaigns refuse to start
                    launch.stop_script(f"The campaign in {self.directory} was {reason}")
            self.journal.put("control_done", row_id)

    def _deliver_end(self) -> None:
        for handler in self._handlers:
            if handler.kind == "end":
                self._call(handler, self.ctx)


def _pickle_or_none(payload: Any) -> bytes | None:
    return None if payload is None else pickle.dumps(payload, 5)
