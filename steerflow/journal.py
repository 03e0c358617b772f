"""The campaign journal: every task, state change, result and steering event, in SQLite (WAL).

Writes are queued by the runtime and steering threads and committed by one writer thread in
batches (one transaction per batch), so the journal costs microseconds per task. What is
committed survives SIGKILL of the driver. Order matters for resume: a task's result is
queued before the steering event that delivers it, and a steering event before the
submissions its handlers make; one FIFO queue and one writer keep that order on disk.

Readers (``steerflow status``, resume) open the database read-only; WAL lets them read
while the driver writes.
"""

from __future__ import annotations

import json
import os
import queue
import sqlite3
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import serialize
from .errors import describe_error
from .journal_files import readonly_uri
from .task import storable

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS tasks (
    key INTEGER PRIMARY KEY, name TEXT, kind TEXT, pool TEXT, tags TEXT, priority INTEGER,
    fingerprint TEXT, submitted REAL, state TEXT, nodes TEXT, attempts INTEGER DEFAULT 0, spec BLOB,
    cores INTEGER, gpus INTEGER);
CREATE TABLE IF NOT EXISTS states (key INTEGER, state TEXT, ts REAL, attempt INTEGER, nodes TEXT, since REAL);
CREATE TABLE IF NOT EXISTS results (
    key INTEGER PRIMARY KEY, ok INTEGER, value BLOB, path TEXT, error TEXT, started REAL, ended REAL, timing BLOB);
CREATE TABLE IF NOT EXISTS steering (seq INTEGER PRIMARY KEY, kind TEXT, key INTEGER, name TEXT, payload BLOB,
    ts REAL);
CREATE TABLE IF NOT EXISTS control (id INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT, arg TEXT, ts REAL,
    done INTEGER DEFAULT 0);
CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY AUTOINCREMENT, pid INTEGER, started REAL, ended REAL,
    cores INTEGER, gpus INTEGER);
CREATE TABLE IF NOT EXISTS series (name TEXT, ts REAL, value BLOB);
CREATE INDEX IF NOT EXISTS states_key ON states(key);
CREATE TABLE IF NOT EXISTS replaced (key INTEGER PRIMARY KEY, upto INTEGER);
"""
# ``replaced``: a task whose journaled deliveries up to steering seq ``upto`` no longer count. A resume writes it for
# a task whose description changed in the script (it runs again: its old result is dropped, its row describes it
# anew) and for a task whose journaled delivery came before this run submitted it (delivered when submitted).
# The deliveries that count are the later ones, so the next resume replays what this driver did (`replay_outline`).

# Columns added since the first release: a journal written before them gets them on open (NULL in old rows).
# states.nodes says where a 'running' row runs, and on a 'waiting' row why the task waits: an earlier attempt
# 'failed', was 'preempted' or 'lost', or 'deps' (its dependencies are not done); NULL: first queued. (The
# same column: a separate one cost the writer ~1 us per task.) results.timing: TIMING-packed (ready, w_recv, w_start, w_end,
# w_sent), NaN where unknown: dependencies met and queued, then the final attempt on the executing side's
# clock: message received, function started, function returned, result serialised. One packed column
# costs the writer less than five (the journal's CPU per task is a budget: `steerflow bench steering`).
# states.since (schema 2): a row that stands for two, the attempt's 'running' row (at ``since``, on ``nodes``)
# and its end (``state`` at ``ts``), written so when both fell in one commit (see `_Batch`); NULL: one row.
# Readers expand it with `state_rows`. Older journals get the column on open (`add_missing_columns`), and
# keep their rows as they were: each is one row.
ADDED_COLUMNS = {"results": ("timing BLOB",), "states": ("since REAL",)}
TIMING = struct.Struct("<5d")
#: the journal's layout version, in meta ``schema``: 1 (no meta row) before states.since and ``results``
#: steering rows; 2 since; 3: ``timers`` steering rows (a run of one timer's ticks, the count in ``key``).
#: A journal of any resumes; an older steerflow does not read a newer version.
SCHEMA_VERSION = 3
FINAL = frozenset(("done", "failed", "cancelled"))  # the states that end an attempt with a result

INLINE_LIMIT = 64 * 1024  # results larger than this go to a file in results/, referenced by path
FAILURE_TEXT_LIMIT = 64 * 1024  # characters of a failure's text (message, traceback) that the journal keeps

_STATEMENTS = {
    # a task's row with its state as of the end of the batch it was submitted in (see `_Batch`)
    "task": "INSERT INTO tasks (key, name, kind, pool, tags, priority, fingerprint, submitted, spec, cores, gpus, state,"
            " nodes, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET"
            " state = excluded.state, nodes = excluded.nodes, attempts = excluded.attempts WHERE excluded.state != 'new'",
    # a task described anew on resume (its description changed in the script): the row, its old result, its
    # old deliveries (see ``replaced``); before "result", which may hold its new result in the same batch
    "task_again": "UPDATE tasks SET name = ?, kind = ?, pool = ?, tags = ?, priority = ?, fingerprint = ?, spec = ?,"
                  " cores = ?, gpus = ? WHERE key = ?",
    "result_dropped": "DELETE FROM results WHERE key = ?",
    "replaced": "INSERT OR REPLACE INTO replaced (key, upto) VALUES (?, ?)",
    "state": "INSERT INTO states (key, state, ts, attempt, nodes, since) VALUES (?, ?, ?, ?, ?, ?)",
    "task_state": "UPDATE tasks SET state = ?, nodes = ?, attempts = ? WHERE key = ?",
    "result": "INSERT OR REPLACE INTO results (key, ok, value, path, error, started, ended, timing)"
              " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    "steer": "INSERT INTO steering (seq, kind, key, name, payload, ts) VALUES (?, ?, ?, ?, ?, ?)",
    "meta": "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
    "control_done": "UPDATE control SET done = 1 WHERE id = ?",
    "run_end": "UPDATE runs SET ended = ? WHERE id = ?",
    "series": "INSERT INTO series (name, ts, value) VALUES (?, ?, ?)",  # see pack_series
}


GATHER_S = 0.02  # how long the writer gathers rows for one transaction once the first arrives (see _writer)
PROMPT_AFTER_S = 0.05  # a result of a task that ran this long is committed without gathering (see commit_soon)
_FLUSH = ("flush", ())  # queued by `Journal.flush`: commit now
RESULT = "result_obj"  # a `put_result` in `put_many`'s pairs
_MANY = "many"  # a `put_many` item: its pairs, in order


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(readonly_uri(path), uri=True, timeout=10, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, timeout=10, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # survives a crash of the process (not of the OS)
    return conn


def add_missing_columns(conn: sqlite3.Connection) -> None:
    """Bring a journal written by an older steerflow up to the current schema (resume across versions)."""
    for table, columns in ADDED_COLUMNS.items():
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for column in columns:
            if column.split()[0] not in have:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column}")


class Journal:
    """Append-only record of a campaign, written by a background thread in batches."""

    def __init__(self, directory: Path, meta: dict[str, str] | None = None) -> None:
        """``meta``: rows committed with the schema, in one transaction: a driver killed at any moment leaves
        either no schema or a schema with them (a new campaign's launch record: what `steerflow resume` runs)."""
        self.directory = Path(directory)
        self.path = self.directory / "journal.db"
        old_umask = os.umask(0o077)  # the database, its WAL and SHM files: private to the user
        try:
            self._conn = connect(self.path)
            self._conn.executescript("BEGIN IMMEDIATE;" + SCHEMA)  # the transaction stays open until COMMIT
            try:
                add_missing_columns(self._conn)
                rows = [("schema", str(SCHEMA_VERSION)), *(meta or {}).items()]
                self._conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", rows)
                self._conn.execute("COMMIT")
            except BaseException:
                try:
                    self._conn.execute("ROLLBACK")
                except sqlite3.Error:  # the COMMIT had happened (a Ctrl-C just after it): keep the real cause
                    pass
                raise
        finally:
            os.umask(old_umask)
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(f"{self.path}{suffix}"):
                os.chmod(f"{self.path}{suffix}", 0o600)
        self._queue: queue.SimpleQueue[tuple | None] = queue.SimpleQueue()
        self._flushed = threading.Condition()
        self._hurry = threading.Event()  # set by flush/close: the writer stops gathering and commits
        self._queued = 0
        self._written = 0
        self.busy_s = 0.0  # CPU time the writer spent committing: the journal's cost
        self.rows = 0
        self.error: Exception | None = None  # the last write that failed, if any
        self._thread = threading.Thread(target=self._writer, name="steerflow-journal", daemon=True)
        self._thread.start()

    # ---- writes (any thread; cheap: a queue put) ---------------------------------------
    def put(self, kind: str, *row: Any) -> None:
        self._queued += 1
        self._queue.put((kind, row))

    def put_result(self, key: int, ok: bool, value: Any, blob: bytes | None, error: str | None,
                   started: float, ended: float, timing: bytes | None = None,
                   load: Callable[[], Any] | None = None) -> None:
        """Queue a task's result; the writer stores it inline, or in results/KEY.pkl when large.

        ``timing``: TIMING-packed (ready, w_recv, w_start, w_end, w_sent), see ADDED_COLUMNS. ``load``
        gives the value when ``value`` is not given: the writer calls it only if it cannot store ``blob``
        as it is (a small plain pickle is stored as it came, and its value is never loaded for the journal).
        """
        self._queued += 1
        self._queue.put((RESULT, (key, ok, value, blob, error, started, ended, timing, load)))

    def put_many(self, items: list[tuple[str, tuple]]) -> None:
        """Queue ``(kind, row)`` pairs as one item, in order: each as ``put(kind, *row)`` would (``RESULT`` with
        `put_result`'s arguments as its row). For a thread that gathers its rows: one queue operation per batch."""
        if items:
            self._queued += len(items)
            self._queue.put((_MANY, items))

    def commit_soon(self) -> None:
        """Commit what is queued without waiting out the gathering window, but without blocking the caller.

        For the results of tasks that ran long enough (`PROMPT_AFTER_S`) that running them again
        would cost more than a commit: a driver killed just after such a task ended reruns it
        only if the kill lands within the commit itself, not within the next GATHER_S.
        """
        self._hurry.set()

    def flush(self, timeout: float = 30.0) -> None:
        """Block until everything queued so far is committed."""
        target = self._queued
        self._queue.put(_FLUSH)  # the writer commits what it gathered at once instead of waiting for more
        self._hurry.set()
        with self._flushed:
            self._flushed.wait_for(lambda: self._written >= target, timeout=timeout)

    def close(self) -> None:
        self._queue.put(None)
        self._hurry.set()
        self._thread.join()
        self._conn.close()

    def _writer(self) -> None:
        """Commit what is queued in batches: one transaction per GATHER_S (group commit), or sooner when asked.

        A transaction and each wake-up of this thread cost a fixed amount whatever the batch's size,
        so once a row arrives the writer waits GATHER_S (a timed wait no producer touches: no
        wake-up per row), then takes everything queued by then in one transaction. `flush` and
        `close` cut the wait short. Each commit writes every page it touched again (~18 pages for
        a few tasks), so 20 ms batches cost ~7 us less per task than 5 ms ones at a few thousand
        tasks/s; the price is that a driver killed in those 20 ms runs their finished tasks again,
        which is why the results of tasks that ran `PROMPT_AFTER_S` or longer cut the wait short
        (`commit_soon`): short tasks are cheap to run again, long simulations are not.
        """
        conn, q = self._conn, self._queue
        get, get_nowait, Empty = q.get, q.get_nowait, queue.Empty
        hurry = self._hurry
        stop = False
        full = False
        while not stop:
            item = get()
            if not full and item is not None and item is not _FLUSH:
                hurry.wait(GATHER_S)  # let the rows of the next few ms come: one commit for all of them
            hurry.clear()
            batch = _Batch()
            add = batch.add
            n = 0
            failure: BaseException | None = None
            full = False
            while True:
                if item is None:
                    stop = True
                    break
                if item is _FLUSH:
                    break
                for kind, row in (item[1] if item[0] is _MANY else (item,)):
                    n += 1
                    if self.error is not None or failure is not None:  # after a failure, nothing more is written
                        continue
                    try:
                        if kind == RESULT:
                            batch.results.append(self._result_row(*row))
                        else:
                            add(kind, row)
                    except Exception as exc:  # noqa: BLE001 - e.g. ENOSPC writing results/KEY.pkl
                        failure = exc
                if n >= 20000:
                    full = True  # more is waiting: no gathering pause before the next batch
                    break
                try:
                    item = get_nowait()
                except Empty:
                    break
            if n and self.error is None:
                if failure is None:
                    try:
                        self._commit(conn, batch)
                    except Exception as exc:  # noqa: BLE001
                        failure = exc
                if failure is None:
                    self.rows += n
                    if "result_dropped" in batch.other:
                        self._drop_result_files(batch)
                else:
                    self._fail(failure)
            self.busy_s = time.thread_time()  # all CPU this thread used (waiting on the queue uses none)
            with self._flushed:
                self._written += n
                self._flushed.notify_all()

    def _drop_result_files(self, batch: _Batch) -> None:
        """After the commit that dropped results (a task described anew on resume): their files in results/ go too,
        unless the same commit stored the task's new result there (before, an old large result stayed on disk
        whenever the new one was small). A driver killed before this leaves a file nothing references."""
        kept = {row[0] for row in batch.results if row[3] is not None}
        for (key,) in batch.other["result_dropped"]:
            if key not in kept:
                try:
                    (self.directory / "results" / f"{key}.pkl").unlink(missing_ok=True)
                except OSError:  # a read-only results/: the file stays, referenced by nothing
                    pass

    def _fail(self, exc: BaseException) -> None:
        """A write failed (a full disk, say): keep the journal a consistent prefix, say why, let the campaign stop.

        The failed batch was rolled back and nothing after it is written, so a resume sees the
        campaign as it was just before; the campaign stops taking new work (see `Campaign.run`).
        """
        self.error = exc  # type: ignore[assignment]
        import sys

        print(f"steerflow: the journal {self.path} could not be written: {describe_error(exc)}. The campaign stops; "
              "what was committed before is intact. Free space (or fix the cause), then `steerflow resume "
              f"{self.directory}`.", file=sys.stderr)

    def _result_row(self, key: int, ok: bool, value: Any, blob: bytes | None, error: str | None,
                    started: float, ended: float, timing: bytes | None = None,
                    load: Callable[[], Any] | None = None) -> tuple:
        if not ok:  # a failure is kept bounded: an exception may carry megabytes (an array in its message)
            error = storable(clip(error)) if error else error  # (an error may quote any file name)
            if isinstance(value, BaseException):
                try:
                    blob = serialize.dumps_inband(value)
                except Exception:  # noqa: BLE001 - an exception with an unpicklable attribute
                    blob = None
                if blob is None or len(blob) > 4 * FAILURE_TEXT_LIMIT:
                    value = bounded_failure(value)
                    blob = serialize.dumps_inband(value)
        if (blob is None or len(blob) > INLINE_LIMIT or serialize.shm_paths(blob)
                or isinstance(blob, serialize.Elsewhere)):  # a reference to data kept on a node: store the value
            try:
                blob = serialize.dumps_inband(load() if load is not None else value)
            except Exception as exc:  # noqa: BLE001 - an unpicklable result is kept as text, as a failure: a
                # replay cannot give its value (and the live agents got it as a failure too, see SteeringLoop._result)
                return (key, False, None, None, storable(f"{error or ''}\n(result not stored: {exc})".strip()),
                        started, ended, timing)
        if len(blob) <= INLINE_LIMIT:
            return (key, ok, blob, None, error, started, ended, timing)
        results = self.directory / "results"
        results.mkdir(mode=0o700, exist_ok=True)
        path = results / f"{key}.pkl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
        except BaseException:
            path.unlink(missing_ok=True)  # a partial file is never referenced: give its space back
            raise
        return (key, ok, None, str(path), error, started, ended, timing)

    @staticmethod
    def _commit(conn: sqlite3.Connection, batch: _Batch) -> None:
        # One transaction per batch, kinds in a fixed order (_STATEMENTS' order: task rows before
        # the updates of their state); rows of one kind keep their queue order.
        conn.execute("BEGIN")
        try:
            for kind, sql in _STATEMENTS.items():
                rows = batch.rows(kind)
                if rows:
                    conn.executemany(sql, rows)
            conn.execute("COMMIT")
        except BaseException:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # SQLite already ended the transaction (it does on SQLITE_FULL): keep the real cause
            raise

    # ---- direct, synchronous operations (driver start-up) --------------------------------
    def start_run(self, cores: int, gpus: int) -> int:
        """Record a driver start and return its id (called before other threads write)."""
        self.flush()  # the writer is idle afterwards: its connection is not used by two threads at once
        cur = self._conn.execute("INSERT INTO runs (pid, started, cores, gpus) VALUES (?, ?, ?, ?)",
                                 (os.getpid(), time.time(), cores, gpus))
        return int(cur.lastrowid or 0)


class _Batch:
    """One transaction's rows, with a task's rows folded where one row can say what several would.

    Schema 2 writes fewer rows per task than the rows put (the writer's SQLite work is most of
    the journal's cost per task, `steerflow bench steering`), without losing anything a reader
    or a resume needs:
    - a task submitted in this batch is inserted with its state as of the batch's end, instead
      of inserted as 'new' and updated once per change (``task_state``);
    - of a task's state updates in one batch only the last is written (each sets every column);
    - a 'running' row followed in the same batch by the attempt's end (done, failed, cancelled)
      becomes one row: the end's, with ``since`` = the running row's time and its ``nodes``
      (`state_rows` gives readers both rows back).
    The states history of every task is unchanged for a reader; only its rowids are fewer.
    """

    __slots__ = ("tasks", "states", "updates", "running", "results", "other")

    def __init__(self) -> None:
        self.tasks: dict[int, list[Any]] = {}  # key -> its task row (as "task" writes it), for tasks new here
        self.states: list[tuple] = []  # (key, state, ts, attempt, nodes, since)
        self.updates: dict[int, tuple] = {}  # key -> (state, nodes, attempts, key): its last update
        self.running: dict[int, int] = {}  # key -> index in states of its 'running' row, while that is its last
        self.results: list[tuple] = []
        self.other: dict[str, list[tuple]] = {}

    def add(self, kind: str, row: tuple) -> None:
        if kind == "state_change":  # (key, state, ts, attempt, why, nodes): the history row and the task's state
            key, state = row[0], row[1]
            self._state(key, state, row[2], row[3], row[4])
            self._update(key, (state, row[5], row[3], key))
        elif kind == "state":
            self._state(row[0], row[1], row[2], row[3], row[4])
        elif kind == "task_state":
            self._update(row[3], row)
        elif kind == "task":  # (key, name, kind, pool, tags, priority, fingerprint, submitted, spec, cores, gpus)
            self.tasks[row[0]] = [*row, "new", None, 0]
        else:
            rows = self.other.get(kind)
            if rows is None:
                rows = self.other[kind] = []
            rows.append(row)

    def _state(self, key: int, state: str, ts: float, attempt: int, nodes: str | None) -> None:
        states = self.states
        at = self.running.pop(key, None)
        if at is not None and state in FINAL and states[at][3] == attempt:
            ran = states[at]  # the attempt started in this batch: one row says both
            states[at] = (key, state, ts, attempt, ran[4], ran[2])
            return
        if state == "running":
            self.running[key] = len(states)
        states.append((key, state, ts, attempt, nodes, None))

    def _update(self, key: int, row: tuple) -> None:
        task = self.tasks.get(key)
        if task is not None:  # inserted in this batch: insert it as it is now
            task[11], task[12], task[13] = row[0], row[1], row[2]
        else:
            self.updates[key] = row

    def rows(self, kind: str) -> Any:
        if kind == "task":
            return self.tasks.values()
        if kind == "state":
            return self.states
        if kind == "task_state":
            return self.updates.values()
        if kind == "result":
            return self.results
        return self.other.get(kind)


def state_rows(rows: Iterator[tuple]) -> Iterator[tuple]:
    """``(rowid, key, state, ts, attempt, nodes)`` per state change, from rows that add ``since`` (`states_sql`).

    A row with ``since`` stands for two (see `_Batch`): the attempt's 'running' at ``since`` on ``nodes``,
    then its end at ``ts``, both with the row's rowid."""
    for row in rows:
        since = row[6]
        if since is None:
            yield row[:6]
        else:
            yield (row[0], row[1], "running", since, row[4], row[5])
            yield (row[0], row[1], row[2], row[3], row[4], None)


def states_sql(conn: sqlite3.Connection, where: str = "") -> str:
    """``SELECT rowid, key, state, ts, attempt, nodes, since FROM states [where] ORDER BY rowid`` for `state_rows`,
    on a journal of any version (one opened read-only before it got the ``since`` column reads NULL)."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(states)")}
    since = "since" if "since" in have else "NULL"
    return f"SELECT rowid, key, state, ts, attempt, nodes, {since} FROM states {where} ORDER BY rowid"


def pack_timing(ready: float, times: tuple[float, ...]) -> bytes:
    """results.timing from the ready time and an engine's (received, started, returned, serialised)."""
    nan = float("nan")
    if len(times) == 4:
        return TIMING.pack(ready or nan, *times)
    return TIMING.pack(ready or nan, nan, nan, nan, nan)


def pack_series(values: tuple[float | None, ...]) -> bytes:
    """A ``series`` row's value: float64s (NaN for None), named once by meta ``series:NAME`` (a JSON list).

    Append-only time series of a learning-layer statistic, e.g. a surrogate's audited error
    against its bound; whoever writes them keeps them thin (see learn/surrogates.py).
    """
    nan = float("nan")
    return struct.pack(f"<{len(values)}d", *(nan if v is None else float(v) for v in values))


def clip(text: str, limit: int = FAILURE_TEXT_LIMIT) -> str:
    """``text`` whole when short; else its first and last ``limit // 2`` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return (f"{text[:half]}\n... ({len(text) - 2 * half:,} characters cut: the journal keeps a failure's first "
            f"and last {half:,}) ...\n{text[-half:]}")


def bounded_failure(exc: BaseException) -> BaseException:
    """What the journal keeps of a failure too large (or unpicklable) to store: the same type with its message and
    notes clipped where that type can be made from a message, else a `TaskFailed` saying what it was."""
    from .errors import TaskFailed

    text = clip(str(exc))
    notes = [clip(str(n)) for n in getattr(exc, "__notes__", ())[:4]]
    try:
        kept: BaseException = type(exc)(text)
        for note in notes:
            kept.add_note(note)
        if len(serialize.dumps_inband(kept)) <= 8 * FAILURE_TEXT_LIMIT:
            return kept
    except Exception:  # noqa: BLE001 - its constructor wants other arguments, or it does not pickle
        pass
    return TaskFailed(clip(f"{type(exc).__name__}: {text}" + "".join(f"\n{n}" for n in notes)))


# ---- reading (resume, status, reports): journal_read.py, re-exported here -----------------------
from .journal_read import (StoredResult, delivered_keys, join_tags, lookup_task, pack_keys,  # noqa: E402,F401
                           read_known_tasks, read_meta, read_results, read_steering, replay_outline, result_file,
                           split_tags, unpack_keys)
