"""The live numbers every view shows: counts, busy cores/GPUs now, throughput, ETA with its basis.

The terminal view of `steerflow run`, `steerflow status DIR [--watch]` and the dashboard show the
same numbers because they come from one definition, `numbers()`. The dashboard feeds it from the
timeline it has already read (`metrics.snapshot_from`); the terminal views feed it from a few SQL
aggregates (`snapshot`), which cost milliseconds at 100,000 tasks and replay nothing, so a driver
can afford one every second.

Definitions (the driver's clock):
- busy: cores/GPUs of tasks running or paused now (a paused task keeps its resources); 0 with no driver;
- throughput: tasks whose result came in the last ``window_s`` (60 s) over that window (over the
  time since the first submission while that is shorter), counted back from the journal's last
  moment (now, while a driver runs);
- ETA: tasks left over the throughput; tasks left are the task budget (stop.tasks(N)) minus the
  finished ones where the campaign has one, else the submitted unfinished ones (an adaptive campaign
  that keeps submitting takes longer); a wall limit caps it. ``eta_basis`` says which.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .timeline import FINISHED, open_journal

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
    return (f"{snap['finished']:,} of {snap['submitted']:,} tasks finished; {snap['busy_cores']}/{snap['cores']} "
            f"cores and {snap['busy_gpus']}/{snap['gpus']} GPUs busy now; {snap['throughput_tasks_per_s']:.2f} "
            "tasks/s over the last minute; ETA " + ("unknown" if eta is None else
                                                      f"{eta:,.0f} s ({snap['eta_basis']})"))


class Reader:
    """Live numbers of one campaign from SQL aggregates, on a read-only connection kept open between calls."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one snapshot at a time; any thread may take one
        self.cost_s = 0.0  # wall seconds the last snapshot took

    def snapshot(self, now: float | None = None, window_s: float = WINDOW_S) -> dict[str, Any]:
        from ..dirlock import holder

        with self._lock:
            started = time.perf_counter()
            if self._conn is None:
                self._conn = open_journal(self.directory, any_thread=True)
            live = holder(self.directory) is not None
            try:
                snap = _read(self._conn, live, now, window_s)
            except sqlite3.OperationalError:  # the driver is still creating the journal
                snap = numbers({}, 0, 0, 1, 0, 0, False, 0.0, 0.0, live, None, window_s)
            self.cost_s = time.perf_counter() - started
            return snap

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _read(conn: sqlite3.Connection, live: bool, now: float | None, window_s: float) -> dict[str, Any]:
    conn.execute("BEGIN")  # one read transaction: every aggregate sees the same journal state
    try:
        meta = {}
        for key, value in conn.execute("SELECT key, value FROM meta WHERE key IN ('layout', 'stop')"):
            try:
                meta[key] = json.loads(value)
            except ValueError:
                pass
        states: dict[str, int] = {}
        busy_c = busy_g = 0
        first = None
        for state, n, c, g, earliest in conn.execute(  # one scan of the tasks
                "SELECT state, count(*), sum(max(coalesce(cores, 0), 1)), sum(gpus), min(nullif(submitted, 0)) "
                "FROM tasks GROUP BY state"):
            states[state] = n
            if state in RUNNING:
                busy_c += c or 0
                busy_g += g or 0
            if earliest is not None and (first is None or earliest < first):
                first = earliest
        run_cores, run_gpus, runs_ended = conn.execute("SELECT max(cores), max(gpus), max(ended) FROM runs").fetchone()
        if live:  # one scan of the results
            last = now if now is not None else time.time()
            last_end, recent = conn.execute("SELECT max(ended), count(*) FILTER (WHERE ended >= ? AND ended) "
                                            "FROM results", (last - window_s,)).fetchone()
        else:  # the journal's last moment: states are appended in time order, so their tail holds it
            last_end = conn.execute("SELECT max(ended) FROM results").fetchone()[0]
            last_state = conn.execute("SELECT max(ts) FROM (SELECT ts FROM states ORDER BY rowid DESC LIMIT 256)"
                                      ).fetchone()[0]
            last = max(x for x in (last_state, runs_ended, last_end, 0.0) if x is not None)
            recent = conn.execute("SELECT count(*) FROM results WHERE ended >= ? AND ended", (last - window_s,)
                                  ).fetchone()[0] if last_end else 0
    finally:
        conn.execute("COMMIT")
    nodes = (meta.get("layout") or {}).get("nodes", [])
    cores = max(run_cores or 0, sum(n[1] for n in nodes), 1)
    gpus = max(run_gpus or 0, sum(n[2] for n in nodes), 0)
    first = first if first else last
    stop = meta.get("stop") if isinstance(meta.get("stop"), dict) else None
    return numbers(states, busy_c, busy_g, cores, gpus, recent, bool(last_end), first, last, live, stop, window_s)


def snapshot(directory: str | Path, now: float | None = None, window_s: float = WINDOW_S) -> dict[str, Any]:
    """The live numbers of the campaign in ``directory`` (see the module docstring), from the journal."""
    reader = Reader(directory)
    try:
        return reader.snapshot(now, window_s)
    finally:
        reader.close()
