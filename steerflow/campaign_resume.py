"""`Campaign`'s resume side: what a resume says about tasks it cannot replay, and how it journals them anew.

Split from campaign.py (near its ~600 lines) by concern; `Campaign` inherits it and defines the state it uses
(``_changed``, ``_unreadable``, ``_resume``, ``journal``, ``_blobs``, ``directory``).
"""

from __future__ import annotations

import warnings
from typing import Any

from . import blobs
from . import journal as journal_mod
from .task import TaskSpec


class ResumeSide:
    """Warnings about tasks a resume runs again, and the journal rows that describe them anew."""

    _changed: int
    _unreadable: int
    _resume: Any
    journal: Any
    _blobs: Any
    directory: Any

    def _say_changed(self, key: int, known: str, fingerprint: str) -> None:
        """Warn that a task with a journaled result changed in the script (the first few; then once for the rest)."""
        self._changed += 1
        if self._changed <= 3:
            warnings.warn(f"Task {key} was {known!r} in the journal but is {fingerprint!r} now: the campaign is not "
                          "deterministic; running it again. The journal now describes it as it is now, so a later "
                          "resume replays this new result instead of running it once more.", stacklevel=3)
        elif self._changed == 4:
            warnings.warn(f"More tasks differ from the journal (task {key} and later ones): each runs again and is "
                          "journaled anew, without a warning each.", stacklevel=3)

    def _say_unreadable(self, key: int, stored: journal_mod.StoredResult) -> None:
        """Warn that a journaled result cannot be read (the first few; then once for the rest)."""
        self._unreadable += 1
        if self._unreadable <= 3:
            try:
                stored.load()
                why = "it could not be read"
            except Exception as exc:  # noqa: BLE001 - what went wrong, for the warning
                why = f"{type(exc).__name__}: {exc}"
            where = (f"from {journal_mod.result_file(self.directory, stored.path)}" if stored.path
                     else "from the journal")
            warnings.warn(f"Task {key}'s journaled result cannot be read {where} ({why:.300}): running it again. "
                          "(A file in results/ missing or damaged: copy a campaign directory whole. A class the "
                          "script no longer defines: keep result classes importable.)", stacklevel=3)
        elif self._unreadable == 4:
            warnings.warn(f"More journaled results cannot be read (task {key} and later ones): each runs again.",
                          stacklevel=3)

    def _journal_again(self, key: int, spec: TaskSpec, fingerprint: str) -> None:
        """Journal a resumed task whose description changed as it is now: its row, no old result, and its old
        deliveries void (`journal.replay_outline`), so that the next resume finds nothing changed."""
        cores, gpus = spec.ranks * spec.cores_per_rank, spec.ranks * spec.gpus_per_rank  # type: ignore[attr-defined]
        rows = [("task_again", (spec.label(), type(spec).__name__, spec.pool, journal_mod.join_tags(spec.tags),  # type: ignore
                                spec.priority, fingerprint, blobs.spec_blob(self._blobs, spec), cores, gpus, key)),
                ("result_dropped", (key,))]
        self._replace_deliveries(key, rows)  # (one queue item: one transaction, whenever the driver is killed)

    def _replace_deliveries(self, key: int, rows: list[tuple[str, tuple]] | None = None) -> None:
        """The journaled deliveries of ``key`` before this driver no longer count: a resume replays later ones."""
        replay = self._resume
        rows = list(rows or [])
        if replay is not None and replay.replaced.get(key) != replay.last_seq:
            replay.replaced[key] = replay.last_seq
            rows.append(("replaced", (key, replay.last_seq)))
        self.journal.put_many(rows)
