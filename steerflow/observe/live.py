"""The live numbers every view shows: counts, busy cores/GPUs now, throughput, ETA with its basis.

The terminal view of `steerflow run`, `steerflow status DIR [--watch]` and the dashboard show the
same numbers because they come from one definition, `numbers()`. The dashboard feeds it from the
timeline it has already read (`metrics.snapshot_from`); the terminal views from a `Reader`, which
keeps each task's state and reads only the journal's new rows at each snapshot (no replay), so a
driver can afford one every second however large its journal.

Definitions (the driver's clock):
- busy: cores/GPUs of tasks running or paused now (a paused task keeps its resources); 0 with no driver;
- throughput: tasks whose result came in the last ``window_s`` (60 s) over that window (over the
  time since the first submission while that is shorter), counted back from the journal's last
  moment (now, while a driver runs);
- ETA: tasks left over the throughput; tasks left are the task budget (stop.tasks(N)) minus the
  finished ones where the campaign has one, else the submitted unfinished ones (an adaptive campaign
  that keeps submitting takes longer); a wall limit caps it. ``eta_basis`` says which. With no driver
  running and tasks left there is no ETA (basis "no driver running"): nothing advances until a resume.
"""

from __future__ import annotations

import bisect
import json
import math
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..journal import state_rows, states_sql
from .timeline import FINISHED, open_journal, rows_by_keys

WINDOW_S = 60.0
RUNNING = ("running", "paused")  # the states that hold resources (a hold opens at 'running')


def numbers(states: Mapping[str, int], busy_cores: int, busy_gpus: int, cores: int, gpus: int, recent: int,
            any_ends: bool, first: float, last: float, live: bool, stop: Mapping[str, Any] | None,
            window_s: float = WINDOW_S) -> dict[str, Any]:
    """The live numbers from their inputs (see the module docstring); JSON-ready."""
    stop = stop or {}
    submitted = sum(states.values())
    span = min(window_s, max(last - first, 1e-9))
    throughput = recent / span if any_ends else 0.0
    finished = sum(states.get(s, 0) for s in FINISHED)
    elapsed = last - first if submitted else 0.0
    if stop.get("tasks"):  # the campaign's task budget (stop.tasks(N)): its known size
        left, basis = max(0, int(stop["tasks"]) - finished), f"task budget of {int(stop['tasks']):,}"
    else:
        left, basis = submitted - finished - states.get("interrupted", 0), "tasks submitted so far"
    eta = left / throughput if throughput > 0 and left > 0 else (0.0 if left == 0 else None)
    if not live and left > 0:  # nothing advances without a driver: an ETA would promise what no process does
        eta, basis = None, "no driver running"
    if stop.get("wall_s") and live:
        wall_left = max(0.0, float(stop["wall_s"]) - elapsed)
        if eta is None or wall_left < eta:
            eta, basis = wall_left, "wall limit"
    return {"tasks": dict(states), "finished": finished, "submitted": submitted,
            "busy_cores": int(busy_cores if live else 0), "busy_gpus": int(busy_gpus if live else 0),
            "cores": cores, "gpus": gpus, "throughput_tasks_per_s": throughput, "eta_s": eta, "eta_basis": basis,
            "elapsed_s": elapsed, "live": live, "at": last}


def describe(snap: Mapping[str, Any]) -> str:
    """One line of the live numbers, worded alike in the terminal and on the dashboard."""
    eta = snap["eta_s"]
    if eta is None and snap.get("eta_basis") == "no driver running":
        tail = "no driver running (`steerflow resume` continues it)"
    else:
        tail = "unknown" if eta is None else f"{eta:,.0f} s ({snap['eta_basis']})"
    return (f"{snap['finished']:,} of {snap['submitted']:,} tasks finished; {snap['busy_cores']}/{snap['cores']} "
            f"cores and {snap['busy_gpus']}/{snap['gpus']} GPUs busy now; {snap['throughput_tasks_per_s']:.2f} "
            "tasks/s over the last minute; ETA " + tail)


class Reader:
    """Live numbers of one campaign, kept up to date from the rows the journal gained since the last snapshot.

    The first snapshot reads each task's state and each result's end once; later ones read only the
    state rows past a rowid high-water mark, the tasks past the highest key (and any a new state row
    names, or all of them in the rare case a count of the tasks says some are missing), and the results
    of the tasks that finished since: a snapshot of a 100,000-task journal costs what its new rows cost
    (plus counting the task rows), so a driver can take one every second.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one snapshot at a time; any thread may take one
        self.cost_s = 0.0  # wall seconds the last snapshot took
        self._tasks: dict[int, tuple[str, int, int]] = {}  # key -> (state, cores, gpus)
        self._counts: dict[str, int] = {}
        self._busy = [0, 0]  # cores, GPUs of the tasks in a RUNNING state
        self._ends: list[float] = []  # results' ends, sorted
        self._resulted: set[int] = set()
        self._unresulted: set[int] = set()  # finished, result not committed yet
        self._task_key = self._states_at = 0
        self._first = math.inf
        self._last_state = 0.0

    def snapshot(self, now: float | None = None, window_s: float = WINDOW_S) -> dict[str, Any]:
        from ..dirlock import holder

        with self._lock:
            started = time.perf_counter()
            if self._conn is None:
                self._conn = open_journal(self.directory, any_thread=True)
                self._conn.isolation_level = None  # explicit read transactions below
            live = holder(self.directory) is not None
            try:
                snap = self._read(self._conn, live, now, window_s)
            except sqlite3.OperationalError:  # the driver is still creating the journal
                snap = numbers({}, 0, 0, 1, 0, 0, False, 0.0, 0.0, live, None, window_s)
            self.cost_s = time.perf_counter() - started
            return snap

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _read(self, conn: sqlite3.Connection, live: bool, now: float | None, window_s: float) -> dict[str, Any]:
        conn.execute("BEGIN")  # one read transaction: every table as of one moment
        try:
            meta = {}
            for key, value in conn.execute("SELECT key, value FROM meta WHERE key IN ('layout', 'stop')"):
                try:
                    meta[key] = json.loads(value)
                except ValueError:
                    pass
            self._fold(conn)
            run_cores, run_gpus, runs_ended = conn.execute("SELECT max(cores), max(gpus), max(ended) FROM runs"
                                                           ).fetchone()
        finally:
            conn.execute("COMMIT")
        ends = self._ends
        if live:
            last = now if now is not None else time.time()
        else:  # the journal's last moment
            last = max(x for x in (self._last_state, runs_ended, ends[-1] if ends else None, 0.0) if x is not None)
        recent = len(ends) - bisect.bisect_left(ends, last - window_s)
        nodes = (meta.get("layout") or {}).get("nodes", [])
        cores = max(run_cores or 0, sum(n[1] for n in nodes), 1)
        gpus = max(run_gpus or 0, sum(n[2] for n in nodes), 0)
        first = self._first if self._first < math.inf else last
        stop = meta.get("stop") if isinstance(meta.get("stop"), dict) else None
        counts = {state: n for state, n in self._counts.items() if n}
        return numbers(counts, self._busy[0], self._busy[1], cores, gpus, recent, bool(ends), first, last, live,
                       stop, window_s)

    def _fold(self, conn: sqlite3.Connection) -> None:
        first_read = not self._tasks and not self._states_at
        tasks_sql = "SELECT key, state, max(coalesce(cores, 0), 1), coalesce(gpus, 0), submitted FROM tasks"
        loaded = self._add_tasks(conn.execute(tasks_sql + " WHERE key > ?", (self._task_key,)))
        top = conn.execute("SELECT max(rowid) FROM states").fetchone()[0] or 0
        wanted = set(self._unresulted)
        if first_read:  # the task rows hold every task's state already
            self._last_state = conn.execute("SELECT max(ts) FROM states").fetchone()[0] or 0.0
            self._add_ends(conn.execute("SELECT key, ended FROM results"))
            wanted |= {k for k, t in self._tasks.items() if t[0] in FINISHED}
        else:
            rows = [row[1:4] for row in state_rows(conn.execute(states_sql(conn, "WHERE rowid > ? AND rowid <= ?"),
                                                                 (self._states_at, top)))]  # (key, state, ts)
            unknown = {row[0] for row in rows if row[0] not in self._tasks}
            if unknown:  # tasks committed out of key order: their rows hold their state as of now
                loaded |= self._add_tasks(rows_by_keys(conn, tasks_sql + " WHERE key IN ", unknown))
            if len(self._tasks) != conn.execute("SELECT count(*) FROM tasks").fetchone()[0]:
                known = self._tasks.keys()  # still missing some (no state row yet): find them (rare)
                loaded |= self._add_tasks([row for row in conn.execute(tasks_sql) if row[0] not in known])
            for key, state, ts in rows:
                if ts and ts > self._last_state:
                    self._last_state = ts
                if key in loaded:  # read just now: its row is as new as its state rows
                    continue
                self._move(key, state)
                if state in FINISHED:
                    wanted.add(key)
            wanted |= {k for k in loaded if self._tasks[k][0] in FINISHED}
        wanted -= self._resulted
        if wanted:  # results of the tasks that finished since (a result may commit a batch after its state row)
            self._add_ends(rows_by_keys(conn, "SELECT key, ended FROM results WHERE key IN ", wanted))
        self._unresulted = wanted - self._resulted
        self._states_at = top

    def _add_tasks(self, rows: Any) -> set[int]:
        """Add task rows (key, state, cores >= 1, gpus, submitted); a known one moves to its row's state."""
        tasks = self._tasks
        keys: set[int] = set()
        fresh = []
        for row in rows:
            key = row[0]
            keys.add(key)
            if key in tasks:
                self._move(key, row[1])
            else:
                tasks[key] = row[1:4]
                fresh.append(row)
        if fresh:
            for state, n in Counter(row[1] for row in fresh).items():
                self._counts[state] = self._counts.get(state, 0) + n
            running = [row for row in fresh if row[1] in RUNNING]
            self._busy[0] += sum(row[2] for row in running)
            self._busy[1] += sum(row[3] for row in running)
            self._task_key = max(self._task_key, max(row[0] for row in fresh))
            self._first = min([self._first] + [row[4] for row in fresh if row[4]])
        return keys

    def _move(self, key: int, state: str) -> None:
        old, cores, gpus = self._tasks[key]
        if old != state:
            self._count(old, cores, gpus, -1)
            self._count(state, cores, gpus, 1)
            self._tasks[key] = (state, cores, gpus)

    def _count(self, state: str, cores: int, gpus: int, sign: int) -> None:
        self._counts[state] = self._counts.get(state, 0) + sign
        if state in RUNNING:
            self._busy[0] += sign * cores
            self._busy[1] += sign * gpus

    def _add_ends(self, rows: Any) -> None:
        new = []
        for key, ended in rows:
            if key not in self._resulted:
                self._resulted.add(key)
                if ended:
                    new.append(ended)
        if len(new) > 64:
            self._ends.extend(new)
            self._ends.sort()
        else:
            for ended in new:
                bisect.insort(self._ends, ended)


def snapshot(directory: str | Path, now: float | None = None, window_s: float = WINDOW_S) -> dict[str, Any]:
    """The live numbers of the campaign in ``directory`` (see the module docstring), from the journal."""
    reader = Reader(directory)
    try:
        return reader.snapshot(now, window_s)
    finally:
        reader.close()
