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
from . import journal_files
from .errors import TaskFailed
from .futures import SettledFuture, TaskFuture


#: journaled tasks read per query, in key order: one query serves this many submissions (inline results are at
#: most 64 KB each, so a chunk holds at most 16 MB, and usually a few KB)
CHUNK = 256

_TASKS_FROM = ("SELECT t.key, t.fingerprint, r.key, r.ok, r.value, r.path, r.error, r.started, r.ended "
               "FROM tasks t LEFT JOIN results r ON r.key = t.key WHERE t.key >= ? ORDER BY t.key LIMIT ?")


class JournalReplay:
    """What a resumed campaign reads from its journal: the outline, each key's stored result, the steering events.

    Keys are looked up in the order the script submits them, which is the order they were given,
    so they are read a chunk at a time in key order (one query per `CHUNK` keys instead of one per
    key); a key out of that order (a script that changed) starts a new chunk there.
    """

    def __init__(self, path: Path, before_run: int | None = None) -> None:
        """``before_run``: this driver's run id (the drivers before it are the earlier ones)."""
        self.conn = journal_mod.connect(path, readonly=True)
        self.directory = str(Path(path).parent)  # where results/ is now (the journal's paths may name an old place)
        #: the last steering seq; the keys committed but never delivered (the crash window); whether it had started;
        #: keys whose journaled deliveries up to a seq do not count (journal ``replaced``: key -> that seq)
        self.last_seq, self.undelivered, self.started_before, self.replaced = journal_mod.replay_outline(self.conn)
        #: results of keys submitted again but not yet delivered to the agents
        self.stored: dict[int, journal_mod.StoredResult] = {}
        self.last_key = self.conn.execute("SELECT MAX(key) FROM tasks").fetchone()[0] or 0
        #: the drivers that ran the campaign before this one, and their wall time summed (`journal_files.drivers_wall`)
        self.earlier_drivers, self.earlier_wall_s = journal_files.drivers_wall(self.conn, before_run=before_run)
        self._chunk: dict[int, tuple] = {}
        self._low = self._high = 0  # the keys [low, high) the chunk covers (a key in it but absent: not journaled)

    def lookup(self, key: int) -> tuple[str | None, journal_mod.StoredResult | None]:
        """The key's fingerprint in the journal (None: not there) and its stored result (None: it has none)."""
        if key > self.last_key:
            return None, None  # past the journal: new work
        if not self._low <= key < self._high:
            self._read_chunk(key)
        row = self._chunk.pop(key, None)
        if row is None:
            return None, None
        if row[2] is None:
            return row[1], None
        return row[1], journal_mod.StoredResult(row[2], bool(row[3]), row[4], row[5], row[6], row[7], row[8],
                                                self.directory)

    def _read_chunk(self, key: int) -> None:
        rows = self.conn.execute(_TASKS_FROM, (key, CHUNK)).fetchall()
        self._chunk = {row[0]: row for row in rows}
        self._low = key
        self._high = rows[-1][0] + 1 if len(rows) == CHUNK else self.last_key + 1

    def steering(self) -> Iterator[tuple[int, str, int | None, str | None, bytes | None]]:
        """The journaled steering events, in their original order."""
        return journal_mod.read_steering(self.conn)

    def close(self) -> None:
        self.conn.close()


def resolved_future(key: int, stored: journal_mod.StoredResult) -> TaskFuture | None:
    """A future already holding the journaled outcome of task ``key``; None when it succeeded but its stored value
    cannot be read (its file in results/ is missing or damaged): the caller runs it again (before, it became a
    failed task on every resume). A failure it cannot read stays a failure."""
    try:
        value = stored.load()
    except Exception as exc:  # noqa: BLE001
        if stored.ok:
            return None
        value = TaskFailed(f"Task {key}'s stored result could not be read: {exc}")
    if stored.ok:
        return SettledFuture(key, value)
    if isinstance(value, BaseException):
        return SettledFuture(key, error=value)
    return SettledFuture(key, error=TaskFailed(stored.error or f"Task {key} failed."))
