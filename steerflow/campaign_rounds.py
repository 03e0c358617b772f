"""A campaign's side of the runtime's loop thread: each task's state changes become journal rows, and each
round's results and partials go to the steering thread, in one hand-over per round (see `LoopSide`).

Runs on the loop thread, on every task's path: keep it short.
"""

from __future__ import annotations

import time
from typing import Any

from . import journal as journal_mod
from .errors import TaskFailed, first_line
from .runtime import TaskRecord
from .task import TaskState


class LoopSide:
    """`Campaign`'s runtime listeners (loop thread): journal rows per round, results handed to steering."""

    def _on_state(self, record: TaskRecord, state: TaskState) -> None:
        key = record.id
        put = self._rows.append  # journal rows, handed to the journal once per round (see _end_round)
        if self._closing and state is TaskState.CANCELLED:
            # cancelled because the driver stops, not by anyone's choice: no result, so a resume runs it again
            put(("state", (key, "interrupted", time.time(), len(record.attempts), None)))
            put(("task_state", ("interrupted", None, len(record.attempts), key)))
            self._interrupted.add(key)
            return
        now = time.time()
        attempts = record.attempts
        if state is TaskState.RUNNING:
            nodes = self.placement_text(record)
            put(("state_change", (key, "running", now, len(attempts), nodes, nodes)))  # history row + tasks row
        elif state is TaskState.WAITING:
            # a waiting row says why it waits (in its nodes column): an attempt's outcome, or 'deps'
            why = attempts[-1].outcome if attempts else ("deps" if record.waiting_on else None)
            put(("state_change", (key, "waiting", now, len(attempts), why, None)))
            if key not in self._waiting_keys:
                self._waiting_keys.add(key)
                pool = record.spec.pool
                self._waiting_by_pool[pool] = self._waiting_by_pool.get(pool, 0) + 1
            return
        else:
            put(("state_change", (key, state.value, now, len(attempts), None, None)))
        if key in self._waiting_keys:
            self._waiting_keys.discard(key)
            self._waiting_by_pool[record.spec.pool] -= 1
        if state.finished:
            future = record.future
            started = attempts[-1].started if attempts else 0.0
            timing = journal_mod.pack_timing(record.ready, attempts[-1].times if attempts else ())
            if state is TaskState.DONE:
                # the value is loaded only if the journal cannot store the pickle it came as (the writer asks)
                put((journal_mod.RESULT, (key, True, None, record.result_blob, None, started, now, timing,
                                          future.result)))
            elif state is TaskState.FAILED:
                error = future.exception()
                put((journal_mod.RESULT, (key, False, error, None, f"{type(error).__name__}: {error}", started, now,
                                          timing, None)))
                self.failures[key] = first_line(error)
            else:
                put((journal_mod.RESULT, (key, False, TaskFailed(f"Task {key} was cancelled."), None, "cancelled",
                                          started, now, timing, None)))
            record.result_blob = None
            self._round.append(("result", key))
            if now - started >= journal_mod.PROMPT_AFTER_S:
                self._prompt = True

    def _on_partial(self, record: TaskRecord, attempt: int, value: Any) -> None:
        index = self._partials.get(record.id, 0)
        self._partials[record.id] = index + 1
        self._round.append(("partial", record.id, attempt, index, value, time.time()))

    def _end_round(self) -> None:
        """Loop thread, once per round: this round's journal rows go to the journal, then its results and partials
        to the steering thread, each in one go (a result's row is queued before the steering row that delivers it)."""
        if self._rows:
            self.journal.put_many(self._rows)
            self._rows = []
            if self._prompt:
                self._prompt = False
                self.journal.commit_soon()
        if self._round:
            self._events.put(("round", self._round))
            self._round = []

    def placement_text(self, record: TaskRecord) -> str:
        """Where an attempt runs, for the journal: ``node0[c0,1 g0];node1[c0,1 g1]`` (one part per rank)."""
        placement = record.placement
        if placement is None:
            return ",".join(record.attempts[-1].nodes)
        slots = placement.slots
        where = tuple((s.node, s.cores, s.gpus) for s in slots) if len(slots) > 1 else \
            (slots[0].node, slots[0].cores, slots[0].gpus)
        text = self._placement_texts.get(where)
        if text is None:  # the same few places come back all the time: format each once
            names = self.allocation.nodes
            text = ";".join(f"{names[s.node].name}[c{','.join(map(str, s.cores))}"
                            + (f" g{','.join(map(str, s.gpus))}]" if s.gpus else "]") for s in slots)
            if len(self._placement_texts) >= 4096:
                self._placement_texts.clear()
            self._placement_texts[where] = text
        return text
