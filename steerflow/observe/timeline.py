"""A campaign's history read back from its journal: who held which resources when, and who waited.

Everything in steerflow/observe/ is computed from this, so it works for a running campaign (read
while the driver writes: WAL), a finished one, and one whose driver crashed. Reading is read-only.

What the journal says and how it is read:
- a ``running`` state row opens an attempt's hold on its cores/GPUs (its ``nodes`` text says which);
  the next ``waiting``/``done``/``failed``/``cancelled``/``interrupted`` row of that task closes it
  (``paused`` keeps the resources held, so it does not close it);
- a ``waiting`` row opens a wait: ``nodes='deps'`` means its dependencies are not done, else it is
  queued for placement (``nodes`` then says why an earlier attempt ended: failed, preempted, lost);
  a dependency wait turns into a queue wait at ``results.timing``'s ready time where it is known;
- a driver start (``runs``) closes whatever the previous driver left open at the last moment it wrote;
- spans still open end at ``now`` while a driver runs, else at the journal's last timestamp.
"""

from __future__ import annotations

import json
import math
import pickle
import sqlite3
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import journal as journal_mod
from ..journal import TIMING, state_rows
from ..journal_files import readonly_uri

CLOSES_RUN = frozenset({"waiting", "done", "failed", "cancelled", "interrupted"})
FINISHED = frozenset({"done", "failed", "cancelled"})
LEARNING_META = ("model:", "effective_performance", "surrogate")  # meta keys the learning layer writes
LEARNING_WORDS = ("learn", "surrogate", "effective", "model", "discover", "acquisition", "train")


@dataclass(slots=True)
class Hold:
    """One attempt holding resources: placed at ``start``, released at ``end``."""

    key: int
    attempt: int
    pool: str
    start: float
    end: float
    outcome: str  # done, failed, cancelled, interrupted, preempted, lost, requeued, or running (still open)
    where: str | None  # "node0[c0,1 g0];node1[c2]" as journaled
    cores: int
    gpus: int


@dataclass(slots=True)
class Wait:
    """A task not yet placed: ``deps`` (dependencies not done) or ``queue`` (ready, waiting for room)."""

    key: int
    pool: str
    kind: str
    start: float
    end: float
    cores: int
    gpus: int


@dataclass
class Timeline:
    directory: Path
    now: float  # where open spans end
    live: bool  # a driver is running the campaign now
    nodes: list[tuple[str, int, int]]  # (name, cores, gpus) per node, as the allocation declared them
    cores: int
    gpus: int
    quotas: list[tuple[float, str, int | None, int | None]]  # (since, pool, cores, gpus); since=0: at start
    tasks: dict[int, tuple]  # key -> (name, pool, tags, submitted, state, cores, gpus, attempts, where)
    results: dict[int, tuple]  # key -> (ok, error, placed, ended, timing 5-tuple or None)
    holds: list[Hold] = field(default_factory=list)
    waits: list[Wait] = field(default_factory=list)
    events: list[tuple[float, str, Any]] = field(default_factory=list)  # learning-layer events
    series: dict[str, list[tuple[float, tuple[float, ...]]]] = field(default_factory=dict)  # name -> (ts, values)
    meta: dict[str, Any] = field(default_factory=dict)
    first: float = 0.0  # first submission
    last: float = 0.0  # last thing that happened (or now, while live)
    gaps: list[tuple[float, float]] = field(default_factory=list)  # (from, to): no driver ran (a resume came later)


def open_journal(directory: str | Path, any_thread: bool = False) -> sqlite3.Connection:
    """A read-only connection (``any_thread``: usable from any thread, one at a time, e.g. under a lock)."""
    db = Path(directory) / "journal.db"
    if not db.exists():
        raise FileNotFoundError(f"{directory} holds no campaign journal (no journal.db); "
                                "give the directory a campaign ran in.")
    return sqlite3.connect(readonly_uri(db), uri=True, timeout=10, check_same_thread=not any_thread)


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def read(directory: str | Path, now: float | None = None, events: bool = True) -> Timeline:
    """Read a campaign's journal into holds and waits (see the module docstring for the rules)."""
    follower = Follower(directory, events=events)
    try:
        return follower.read(now, share=True)
    finally:
        follower.close()


class Follower:
    """A campaign's timeline, kept up to date by reading only what the journal gained since the last `read`.

    The first `read` reads every row; each later one reads, in one read transaction, the rows past
    high-water marks (states and series by rowid, steering by seq, tasks by key, plus the tasks and
    results the new state rows name) and folds them into the cached replay, so a dashboard's refresh
    of a 100,000-task journal reads milliseconds of new rows instead of the whole journal. `read` of
    one `Follower` gives the same timeline as a fresh `read()` of the same journal state (tested).
    """

    def __init__(self, directory: str | Path, events: bool = True) -> None:
        self.directory = Path(directory)
        self.events = events
        self._conn: sqlite3.Connection | None = None
        self.tasks: dict[int, tuple] = {}
        self.results: dict[int, tuple] = {}
        self.learning: list[tuple[float, str, Any]] = []
        self.series: dict[str, list[tuple[float, tuple[float, ...]]]] = {}
        self.quotas: list[tuple[float, str, int | None, int | None]] = []  # journaled changes (not the layout's)
        self.replay = _Replay([], [], {}, {}, 0.0)
        self._unsplit: dict[int, list[Wait]] = {}  # dependency waits closed before their ready time was journaled
        self._unresulted: set[int] = set()  # finished tasks whose result row was not committed yet
        self._runs_applied = 0  # driver starts (after the first) the replay has passed
        self._states_at = self._steering_at = self._series_at = self._task_key = 0
        self._last_end = 0.0  # the latest result's end
        self._first = math.inf  # the first submission
        self.cost_s = 0.0  # seconds the last read took

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def read(self, now: float | None = None, share: bool = False) -> Timeline:
        """The timeline as the journal says now (open spans end at ``now`` while a driver runs).

        ``share``: the timeline shares the follower's tables instead of copies (for a last read: later
        reads would change them under it)."""
        from ..dirlock import holder

        started = time.perf_counter()
        if self._conn is None:
            self._conn = open_journal(self.directory, any_thread=True)  # e.g. a web server's worker threads
            self._conn.isolation_level = None  # explicit read transactions below
        conn = self._conn
        conn.execute("BEGIN")  # one snapshot of the journal for every table
        try:
            meta, runs = self._fold(conn)
        finally:
            conn.execute("COMMIT")
        live = holder(self.directory) is not None
        replay = self.replay
        last = max([replay.last, self._last_end] + [r[1] or 0.0 for r in runs])
        end = (now if now is not None else time.time()) if live else last
        holds, waits = _closed_at(replay, end, live)
        quotas = [(0.0, pool, q[0], q[1]) for pool, q in (meta.get("layout") or {}).get("quotas", {}).items()]
        nodes = [tuple(n) for n in (meta.get("layout") or {}).get("nodes", [])]
        cores = max([r[2] or 0 for r in runs] + [sum(n[1] for n in nodes), 1])
        gpus = max([r[3] or 0 for r in runs] + [sum(n[2] for n in nodes), 0])
        if not nodes:  # a journal from before the layout was recorded: one node with every core
            nodes = [("node", cores, gpus)]
        first = self._first if self._first < math.inf else end
        if share:  # a last read: nothing changes these afterwards, no need to copy them
            tasks, results, learning, series = self.tasks, self.results, self.learning, self.series
        else:
            tasks, results, learning = dict(self.tasks), dict(self.results), list(self.learning)
            series = {k: list(v) for k, v in self.series.items()}
        tl = Timeline(self.directory, end, live, nodes, cores, gpus, quotas + self.quotas, tasks, results, holds, waits,
                      learning, series, meta, first, end, _gaps(runs, replay.gaps))
        self.cost_s = time.perf_counter() - started
        return tl

    def _fold(self, conn: sqlite3.Connection) -> tuple[dict[str, Any], list[tuple]]:
        """Read what is new since the last read and fold it in; return the meta rows and the runs (small: re-read)."""
        meta = {}
        for k, v in conn.execute("SELECT key, value FROM meta"):
            if k in ("allocation", "layout", "created", "stop", "ended") or k.startswith(LEARNING_META + ("series:",)):
                try:
                    meta[k] = json.loads(v)
                except ValueError:
                    pass
        runs = conn.execute("SELECT started, ended, cores, gpus FROM runs ORDER BY id").fetchall()
        first_read = not self._states_at and not self.tasks
        columns = "key, name, pool, tags, submitted, state, cores, gpus, attempts, nodes"
        self._add_tasks(conn.execute(f"SELECT {columns} FROM tasks WHERE key > ?", (self._task_key,)))
        timing_col = "timing" if "timing" in _columns(conn, "results") else "NULL"
        result_sql = f"SELECT key, ok, error, started, ended, {timing_col} FROM results"
        if first_read:
            self._add_results(conn.execute(result_sql))
        states_top = _max_rowid(conn, "states")
        states_sql = journal_mod.states_sql(conn, "WHERE rowid > ? AND rowid <= ?")  # rows for state_rows
        run_starts = [r[0] for r in runs[1:] if r[0]][self._runs_applied:]
        wanted = set(self._unresulted)  # finished tasks whose result is not read yet
        if first_read:  # every task is known already: stream the rows (no list of a million rows in memory)
            self.replay.feed(state_rows(conn.execute(states_sql, (self._states_at, states_top))), self.tasks, self.results,
                             run_starts, self._unsplit)
            wanted |= {k for k, t in self.tasks.items() if t[4] in FINISHED and k not in self.results}
        else:
            states = list(state_rows(conn.execute(states_sql, (self._states_at, states_top))))
            unknown = {row[1] for row in states if row[1] not in self.tasks}
            if unknown:  # tasks committed out of key order: fetch them by key
                self._add_tasks(rows_by_keys(conn, f"SELECT {columns} FROM tasks WHERE key IN ", unknown))
            if len(self.tasks) != conn.execute("SELECT count(*) FROM tasks").fetchone()[0]:
                known = self.tasks.keys()  # still missing some (no state row yet): find them (rare)
                self._add_tasks(row for row in conn.execute(f"SELECT {columns} FROM tasks") if row[0] not in known)
            for _, key, state, ts, attempt, where in states:  # each journaled task_state update has its state row
                t = self.tasks.get(key)
                if t is not None:
                    self.tasks[key] = (*t[:4], state, t[5], t[6], attempt, where if state == "running" else None)
                if state in FINISHED and key not in self.results:
                    wanted.add(key)
            self.replay.feed(states, self.tasks, self.results, run_starts, self._unsplit)
        self._states_at = states_top
        self._runs_applied += len(run_starts) - len(self.replay.pending_runs)
        steering_top = conn.execute("SELECT max(seq) FROM steering").fetchone()[0] or 0
        self._fold_steering(conn.execute(
            "SELECT kind, name, payload, ts FROM steering WHERE seq > ? AND seq <= ? AND kind IN ('quota', 'event') "
            "ORDER BY seq", (self._steering_at, steering_top)))
        self._steering_at = steering_top
        if self.events:
            series_top = _max_rowid(conn, "series")
            read_series(conn, self._series_at, self.series, series_top)
            self._series_at = series_top
        if wanted:  # results of the tasks that finished since (a result may commit a batch after its state row)
            self._add_results(rows_by_keys(conn, result_sql + " WHERE key IN ", wanted))
        self._unresulted = {k for k in wanted if k not in self.results}
        self._split_waits()
        return meta, runs

    def _add_tasks(self, rows: Any) -> None:
        new = {row[0]: row[1:] for row in rows}
        if new:
            self.tasks.update(new)
            self._task_key = max(self._task_key, max(new))
            self._first = min([self._first] + [t[3] for t in new.values() if t[3]])

    def _add_results(self, rows: Any) -> None:
        new = {key: (bool(ok), error, placed, ended, TIMING.unpack(timing) if timing else None)
               for key, ok, error, placed, ended, timing in rows}
        if new:
            self.results.update(new)
            self._last_end = max([self._last_end] + [r[3] for r in new.values() if r[3]])

    def _fold_steering(self, rows: Any) -> None:
        for kind, name, payload, ts in rows:
            if kind == "quota" and payload is not None:
                try:
                    c, g = pickle.loads(payload)
                    self.quotas.append((ts or 0.0, name, c, g))
                except Exception:  # noqa: BLE001 - a row we cannot read is skipped, not fatal
                    pass
            elif self.events and name and payload is not None and any(w in name.lower() for w in LEARNING_WORDS):
                try:
                    self.learning.append((ts or 0.0, name, pickle.loads(payload)))
                except Exception:  # noqa: BLE001 - e.g. a class this process cannot import
                    pass

    def _split_waits(self) -> None:
        """Dependency waits closed before their task's result came: split them now that it has."""
        for key in [k for k in self._unsplit if k in self.results]:
            result = self.results[key]
            ready = result[4][0] if result[4] else math.nan
            for wait in self._unsplit.pop(key):
                if wait.start <= ready <= wait.end:
                    self.replay.waits.append(Wait(wait.key, wait.pool, "queue", ready, wait.end, wait.cores,
                                                  wait.gpus))
                    wait.end = ready


def rows_by_keys(conn: sqlite3.Connection, sql: str, keys: set[int]) -> list[tuple]:
    """``sql`` (ending in ``... IN ``) for the given keys, 500 at a time (SQLite's bound on parameters)."""
    out: list[tuple] = []
    ordered = sorted(keys)
    for i in range(0, len(ordered), 500):
        chunk = ordered[i:i + 500]
        out += conn.execute(sql + f"({','.join('?' * len(chunk))})", chunk).fetchall()
    return out


def _max_rowid(conn: sqlite3.Connection, table: str) -> int:
    try:
        return conn.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0] or 0
    except sqlite3.OperationalError:  # a journal from before that table
        return 0


def read_series(conn: sqlite3.Connection, after: int = 0,
                into: dict[str, list[tuple[float, tuple[float, ...]]]] | None = None, upto: int | None = None
                ) -> dict[str, list[tuple[float, tuple[float, ...]]]]:
    """The ``series`` rows (journal.pack_series) with rowid in (``after``, ``upto``], by name; none in an
    older journal."""
    out = into if into is not None else {}
    try:
        rows = conn.execute("SELECT name, ts, value FROM series WHERE rowid > ? AND rowid <= ? ORDER BY rowid",
                            (after, upto if upto is not None else 2**62))
        for name, ts, value in rows:
            if value and len(value) % 8 == 0:
                out.setdefault(name, []).append((ts or 0.0, struct.unpack(f"<{len(value) // 8}d", value)))
    except sqlite3.OperationalError:  # a journal from before the series table
        pass
    return out


@dataclass
class _Replay:
    """The state machine of the module docstring, fed state rows in journal order, any number of times."""

    holds: list[Hold]
    waits: list[Wait]
    open_holds: dict[int, Hold]
    open_waits: dict[int, Wait]
    last: float
    pending_runs: list[float] = field(default_factory=list)  # later driver starts not yet passed
    gaps: list[tuple[float, float]] = field(default_factory=list)  # (a driver's last write, the next one's start)

    def feed(self, states: Any, tasks: dict[int, tuple], results: dict[int, tuple], run_starts: list[float],
             unsplit: dict[int, list[Wait]]) -> None:
        holds, waits, open_holds, open_waits = self.holds, self.waits, self.open_holds, self.open_waits
        self.pending_runs = list(run_starts)  # a later driver start closes what an earlier one left open
        next_run = self.pending_runs.pop(0) if self.pending_runs else math.inf
        last = self.last
        for _, key, state, ts, attempt, where in states:  # (rowid, key, state, ts, attempt, nodes)
            while ts >= next_run:
                _interrupt(open_holds, open_waits, holds, waits, last)
                if last and next_run > last:
                    self.gaps.append((last, next_run))
                next_run = self.pending_runs.pop(0) if self.pending_runs else math.inf
            last = ts if ts > last else last
            if state == "running":
                wait = open_waits.pop(key, None)
                if wait is not None:
                    _end_wait(wait, ts, results, waits, unsplit)
                if key not in open_holds:
                    info = tasks.get(key) or ("?", "?", "", 0.0, "", 1, 0)
                    open_holds[key] = Hold(key, attempt or 1, info[1], ts, ts, "running", where, info[5] or 1,
                                           info[6] or 0)
                continue
            if state in CLOSES_RUN:
                hold = open_holds.pop(key, None)
                if hold is not None:
                    hold.end = ts
                    hold.outcome = (where or "requeued") if state == "waiting" else state
                    holds.append(hold)
                wait = open_waits.pop(key, None)
                if wait is not None:
                    _end_wait(wait, ts, results, waits, unsplit)
                if state == "waiting":
                    info = tasks.get(key) or ("?", "?", "", 0.0, "", 1, 0)
                    open_waits[key] = Wait(key, info[1], "deps" if where == "deps" else "queue", ts, ts,
                                           info[5] or 1, info[6] or 0)
        if next_run < math.inf:
            self.pending_runs.insert(0, next_run)
        self.last = last


def _gaps(runs: list[tuple], killed: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(from, to) in which no driver ran: a driver's end (a killed one: its last state change, ``killed``) to the
    next driver's start."""
    last_write = {start: at for at, start in killed}
    gaps = []
    for before, run in zip(runs, runs[1:]):
        end = before[1] if before[1] is not None else last_write.get(run[0])
        if run[0] and end is not None and run[0] > end:
            gaps.append((end, run[0]))
    return gaps


def _end_wait(wait: Wait, end: float, results: dict[int, tuple], waits: list[Wait],
              unsplit: dict[int, list[Wait]]) -> None:
    """Close a wait; a dependency wait splits at the task's ready time where the journal has it (``unsplit``:
    where its result is not journaled yet, so that a later read can split it)."""
    wait.end = end
    if wait.kind == "deps":
        result = results.get(wait.key)
        if result is None:
            unsplit.setdefault(wait.key, []).append(wait)
        ready = result[4][0] if result and result[4] else math.nan
        if wait.start <= ready <= end:
            waits.append(Wait(wait.key, wait.pool, "queue", ready, end, wait.cores, wait.gpus))
            wait.end = ready
    waits.append(wait)


def _interrupt(open_holds: dict[int, Hold], open_waits: dict[int, Wait], holds: list[Hold], waits: list[Wait],
               at: float) -> None:
    for hold in open_holds.values():
        hold.end, hold.outcome = max(at, hold.start), "interrupted"
        holds.append(hold)
    for wait in open_waits.values():
        wait.end = max(at, wait.start)
        waits.append(wait)
    open_holds.clear()
    open_waits.clear()


def _closed_at(replay: _Replay, end: float, live: bool) -> tuple[list[Hold], list[Wait]]:
    """Every hold and wait, the open ones closed at ``end`` (copies: the replay keeps them open for later rows)."""
    holds = list(replay.holds)
    for hold in replay.open_holds.values():
        holds.append(Hold(hold.key, hold.attempt, hold.pool, hold.start, max(end, hold.start),
                          "running" if live else "interrupted", hold.where, hold.cores, hold.gpus))
    waits = list(replay.waits)
    for wait in replay.open_waits.values():
        waits.append(Wait(wait.key, wait.pool, wait.kind, wait.start, max(end, wait.start), wait.cores, wait.gpus))
    return holds, waits
