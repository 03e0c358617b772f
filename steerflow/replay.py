"""The read side of a resume: the journal of the run being continued.

Resume is replay (see `steerflow.campaign`): the script runs again, its submissions get the
same keys, and a key whose result the journal holds resolves from it instead of running.
The journal is read as the script submits (by key) and as the replay goes (by seq), never
loaded whole, so a million-task journal resumes in bounded memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from . import journal as journal_mod
from .errors import TaskFailed
from .futures import TaskFuture


class JournalReplay:
    """What a resumed campaign reads from its journal: the outline, each key's stored result, the steering events."""

    def __init__(self, path: Path) -> None:
        self.conn = journal_mod.connect(path, readonly=True)
        #: the last steering seq; the keys committed but never delivered (the crash window); whether it had started
        self.last_seq, self.undelivered, self.started_before = journal_mod.replay_outline(self.conn)
        #: results of keys submitted again but not yet delivered to the agents
        self.stored: dict[int, journal_mod.StoredResult] = {}

    def lookup(self, key: int) -> tuple[str | None, journal_mod.StoredResult | None]:
        """The key's fingerprint in the journal (None: not there) and its stored result (None: it has none)."""
        return journal_mod.lookup_task(self.conn, key)

    def steering(self) -> Iterator[tuple[int, str, int | None, str | None, bytes | None]]:
        """The journaled steering events, in their original order."""
        return journal_mod.read_steering(self.conn)

    def close(self) -> None:
        self.conn.close()


def resolved_future(key: int, stored: journal_mod.StoredResult) -> TaskFuture:
    """A future already holding the journaled outcome of task ``key`` (a result it cannot read is a failure)."""
    future: TaskFuture = TaskFuture(None, key)
    try:
        value = stored.load()
    except Exception as exc:  # noqa: BLE001
        value = TaskFailed(f"Task {key}'s stored result could not be read: {exc}")
        stored.ok = False
    if stored.ok:
        future.set_result(value)
    elif isinstance(value, BaseException):
        future.set_exception(value)
    else:
        future.set_exception(TaskFailed(stored.error or f"Task {key} failed."))
    return future
