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

from ..journal import TIMING

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


def open_journal(directory: str | Path) -> sqlite3.Connection:
    db = Path(directory) / "journal.db"
    if not db.exists():
        raise FileNotFoundError(f"{directory} holds no campaign journal (no journal.db); "
                                "give the directory a campaign ran in.")
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def read(directory: str | Path, now: float | None = None, events: bool = True) -> Timeline:
    """Read a campaign's journal into holds and waits (see the module docstring for the rules)."""
    from ..dirlock import holder

    directory = Path(directory)
    conn = open_journal(directory)
    try:
        meta = {}
        for k, v in conn.execute("SELECT key, value FROM meta"):
            if k in ("allocation", "layout", "created", "stop", "ended") or k.startswith(LEARNING_META + ("series:",)):
                try:
                    meta[k] = json.loads(v)
                except ValueError:
                    pass
        runs = conn.execute("SELECT started, ended, cores, gpus FROM runs ORDER BY id").fetchall()
        tasks = {row[0]: row[1:] for row in conn.execute(
            "SELECT key, name, pool, tags, submitted, state, cores, gpus, attempts, nodes FROM tasks")}
        timing_col = "timing" if "timing" in _columns(conn, "results") else "NULL"
        results: dict[int, tuple] = {}
        for key, ok, error, placed, ended, timing in conn.execute(
                f"SELECT key, ok, error, started, ended, {timing_col} FROM results"):
            results[key] = (bool(ok), error, placed, ended, TIMING.unpack(timing) if timing else None)
        states = conn.execute("SELECT key, state, ts, attempt, nodes FROM states ORDER BY rowid")
        quotas: list[tuple[float, str, int | None, int | None]] = [
            (0.0, pool, q[0], q[1]) for pool, q in (meta.get("layout") or {}).get("quotas", {}).items()]
        learning: list[tuple[float, str, Any]] = []
        for kind, name, payload, ts in conn.execute(
                "SELECT kind, name, payload, ts FROM steering WHERE kind IN ('quota', 'event') ORDER BY seq"):
            if kind == "quota" and payload is not None:
                try:
                    c, g = pickle.loads(payload)
                    quotas.append((ts or 0.0, name, c, g))
                except Exception:  # noqa: BLE001 - a row we cannot read is skipped, not fatal
                    pass
            elif events and name and payload is not None and any(w in name.lower() for w in LEARNING_WORDS):
                try:
                    learning.append((ts or 0.0, name, pickle.loads(payload)))
                except Exception:  # noqa: BLE001 - e.g. a class this process cannot import
                    pass
        replay = _replay(states, tasks, results, runs)
        series = read_series(conn) if events else {}
    finally:
        conn.close()
    live = holder(directory) is not None
    last = max([replay.last] + [r[1] or 0.0 for r in runs] + [r[3] or 0.0 for r in results.values()])
    end = (now if now is not None else time.time()) if live else last
    _close_open(replay, end, live)
    nodes = [tuple(n) for n in (meta.get("layout") or {}).get("nodes", [])]
    cores = max([r[2] or 0 for r in runs] + [sum(n[1] for n in nodes), 1])
    gpus = max([r[3] or 0 for r in runs] + [sum(n[2] for n in nodes), 0])
    if not nodes:  # a journal from before the layout was recorded: one node with every core
        nodes = [("node", cores, gpus)]
    submitted = [t[3] for t in tasks.values() if t[3]]
    return Timeline(directory, end, live, nodes, cores, gpus, quotas, tasks, results, replay.holds,
                    replay.waits, learning, series, meta, min(submitted) if submitted else end, end)


def read_series(conn: sqlite3.Connection, after: int = 0,
                into: dict[str, list[tuple[float, tuple[float, ...]]]] | None = None
                ) -> dict[str, list[tuple[float, tuple[float, ...]]]]:
    """The ``series`` rows (journal.pack_series) after rowid ``after``, by name; none in an older journal."""
    out = into if into is not None else {}
    try:
        rows = conn.execute("SELECT name, ts, value FROM series WHERE rowid > ? ORDER BY rowid", (after,))
        for name, ts, value in rows:
            if value and len(value) % 8 == 0:
                out.setdefault(name, []).append((ts or 0.0, struct.unpack(f"<{len(value) // 8}d", value)))
    except sqlite3.OperationalError:  # a journal from before the series table
        pass
    return out


@dataclass
class _Replay:
    holds: list[Hold]
    waits: list[Wait]
    open_holds: dict[int, Hold]
    open_waits: dict[int, Wait]
    last: float


def _replay(states: Any, tasks: dict[int, tuple], results: dict[int, tuple],
            runs: list[tuple]) -> _Replay:
    holds: list[Hold] = []
    waits: list[Wait] = []
    open_holds: dict[int, Hold] = {}
    open_waits: dict[int, Wait] = {}
    run_starts = [r[0] for r in runs[1:] if r[0]]  # a later driver start closes what an earlier one left open
    next_run = run_starts.pop(0) if run_starts else math.inf
    last = 0.0
    for key, state, ts, attempt, where in states:
        while ts >= next_run:
            _interrupt(open_holds, open_waits, holds, waits, last)
            next_run = run_starts.pop(0) if run_starts else math.inf
        last = ts if ts > last else last
        if state == "running":
            wait = open_waits.pop(key, None)
            if wait is not None:
                _end_wait(wait, ts, results, waits)
            if key not in open_holds:
                info = tasks.get(key) or ("?", "?", "", 0.0, "", 1, 0)
                open_holds[key] = Hold(key, attempt or 1, info[1], ts, ts, "running", where, info[5] or 1, info[6] or 0)
            continue
        if state in CLOSES_RUN:
            hold = open_holds.pop(key, None)
            if hold is not None:
                hold.end = ts
                hold.outcome = (where or "requeued") if state == "waiting" else state
                holds.append(hold)
            wait = open_waits.pop(key, None)
            if wait is not None:
                _end_wait(wait, ts, results, waits)
            if state == "waiting":
                info = tasks.get(key) or ("?", "?", "", 0.0, "", 1, 0)
                open_waits[key] = Wait(key, info[1], "deps" if where == "deps" else "queue", ts, ts,
                                       info[5] or 1, info[6] or 0)
    return _Replay(holds, waits, open_holds, open_waits, last)


def _end_wait(wait: Wait, end: float, results: dict[int, tuple], waits: list[Wait]) -> None:
    """Close a wait; a dependency wait splits at the task's ready time where the journal has it."""
    wait.end = end
    if wait.kind == "deps":
        result = results.get(wait.key)
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


def _close_open(replay: _Replay, end: float, live: bool) -> None:
    for hold in replay.open_holds.values():
        hold.end = max(end, hold.start)
        hold.outcome = "running" if live else "interrupted"
        replay.holds.append(hold)
    for wait in replay.open_waits.values():
        wait.end = max(end, wait.start)
        replay.waits.append(wait)
    replay.open_holds.clear()
    replay.open_waits.clear()
