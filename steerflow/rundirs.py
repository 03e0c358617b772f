"""Campaign directories as the command line reads them: which campaigns a path holds, their status,
their failures and one task whole.

Everything here reads the journal read-only (WAL lets it read while a driver writes), so it works
during a run, after a crash and on a copied directory. A path may be one campaign (it holds
``journal.db``) or a folder of several (a script with phases, such as the demo's ``active/`` and
``screen/``): `find` returns every campaign under it and `one` says which to name when a command
needs exactly one.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from .dirlock import holder
from .journal import state_rows, states_sql
from .journal_files import readonly_uri
from .journal_read import result_file, split_tags
from .errors import SteerflowError

JOURNAL = "journal.db"
STATES = ("new", "waiting", "placed", "running", "paused", "done", "failed", "cancelled", "interrupted")
UNFINISHED = ("placed", "running", "paused")  # what a task is shown as when its driver is gone: interrupted
_SEARCH_DEPTH = 3
RATE_WINDOW_S = 60.0  # throughput: results per pool in the last minute


class NotACampaign(SteerflowError):
    """A path given to the command line is not a campaign directory (missing, a file, or no journal)."""


def find(path: str | Path) -> list[Path]:
    """The campaign directories at ``path``: itself, or the campaigns in its subfolders (sorted)."""
    path = Path(path)
    try:
        path.stat()
    except FileNotFoundError:
        raise NotACampaign(f"{path} does not exist. Give the directory of a campaign (the one its script "
                           "printed, or the one given to Campaign(...)).") from None
    except OSError as exc:  # a name too long, a component that is a file, no permission
        raise NotACampaign(f"{str(path)[:200]} cannot be read ({exc.strerror or exc}). Give the directory of a "
                           "campaign (the one its script printed, or the one given to Campaign(...)).") from None
    if not path.is_dir():
        raise NotACampaign(f"{path} is a file, not a campaign directory. Give the directory that holds the "
                           f"campaign's {JOURNAL}.")
    if (path / JOURNAL).is_file():
        return [path]
    found: list[Path] = []
    level = [path]
    for _ in range(_SEARCH_DEPTH):
        below: list[Path] = []
        for folder in level:
            try:
                children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
            except OSError:
                continue
            for child in children:
                (found if (child / JOURNAL).is_file() else below).append(child)
        level = below
    if not found:
        raise NotACampaign(f"{path} holds no campaign journal ({JOURNAL}), neither in it nor in its subfolders. "
                           "Give the directory a campaign was created in.")
    return sorted(found)


def one(path: str | Path, command: str, suffix: str = "") -> Path:
    """The single campaign at ``path``; a message naming each subdirectory when it holds several."""
    found = find(path)
    if len(found) > 1:
        names = "\n".join(f"  steerflow {command} {p}{suffix}" for p in found)
        raise NotACampaign(f"{path} holds {len(found)} campaigns; name one of them:\n{names}")
    return found[0]


def connect(directory: Path) -> sqlite3.Connection:
    return sqlite3.connect(readonly_uri(directory / JOURNAL), uri=True, timeout=10)


def meta(directory: Path, damaged_raises: bool = False) -> dict[str, Any]:
    """The journal's meta rows; {} when it has none yet. ``damaged_raises``: a damaged journal (or not a database)
    raises its `sqlite3.DatabaseError` instead of reading as {} (`steerflow resume` said "made by an older steerflow"
    of a damaged one)."""
    conn = connect(directory)
    try:
        return {k: _json(v) for k, v in conn.execute("SELECT key, value FROM meta")}
    except sqlite3.OperationalError:  # no meta table yet
        return {}
    except sqlite3.DatabaseError:  # not a database at all (a damaged or foreign file)
        if damaged_raises:
            raise
        return {}
    finally:
        conn.close()


def last_key(directory: Path) -> int:
    """The largest task key the campaign's journal holds (0: none yet)."""
    conn = connect(directory)
    try:
        return int(conn.execute("SELECT max(key) FROM tasks").fetchone()[0] or 0)
    finally:
        conn.close()


def title(directory: Path, info: dict[str, Any] | None = None) -> str:
    """A campaign's name for people: its script or pipeline file, and its directory."""
    info = meta(directory) if info is None else info
    launch = info.get("launch") or {}
    source = launch.get("script") or (info.get("command") or {}).get("argv", [""])[0]
    return f"{Path(source).name} · {directory}" if source else str(directory)


# ---- status -------------------------------------------------------------------------------------

def status(directory: str | Path, failures: int = 5) -> dict[str, Any]:
    """Counts per pool and state, the running tasks and where they run, and the latest failures."""
    directory = Path(directory)
    pid = holder(directory)
    conn = connect(directory)
    try:
        by_pool: dict[str, dict[str, int]] = {}
        for pool, state, n in conn.execute("SELECT pool, state, count(*) FROM tasks GROUP BY pool, state"):
            if pid is None and state in UNFINISHED:
                state = "interrupted"  # no driver: nothing runs, whatever the last row said
            counts = by_pool.setdefault(pool, {})
            counts[state] = counts.get(state, 0) + n
        running = [{"key": k, "name": name, "pool": pool, "where": nodes or "", "attempts": attempts,
                    "state": state if pid is not None else "interrupted"}
                   for k, name, pool, nodes, attempts, state in conn.execute(
                       "SELECT key, name, pool, nodes, attempts, state FROM tasks WHERE state IN "
                       f"({','.join('?' * len(UNFINISHED))}) ORDER BY key", UNFINISHED)]
        failed = [_failure(directory, *row) for row in conn.execute(
            "SELECT t.key, t.name, t.pool, t.attempts, r.error, r.ended FROM tasks t JOIN results r ON r.key = t.key "
            "WHERE t.state = 'failed' ORDER BY r.ended DESC LIMIT ?", (failures,))]
        n_failed = conn.execute("SELECT count(*) FROM tasks WHERE state = 'failed'").fetchone()[0]
        rate = dict(conn.execute("SELECT t.pool, count(*) FROM results r JOIN tasks t ON t.key = r.key "
                                 "WHERE r.ended >= ? GROUP BY t.pool", (time.time() - RATE_WINDOW_S,)))
        runs = conn.execute("SELECT count(*), min(started), max(started) FROM runs").fetchone()
        info = {k: _json(v) for k, v in conn.execute("SELECT key, value FROM meta")}
    except sqlite3.OperationalError:  # the driver is still creating the journal
        by_pool, running, failed, n_failed, runs, info, rate = {}, [], [], 0, (0, None, None), {}, {}
    finally:
        conn.close()
    return {"directory": str(directory), "title": title(directory, info), "driver_pid": pid, "pools": by_pool,
            "running": running, "failures": failed, "failed": n_failed, "per_minute": rate,
            "drivers_so_far": runs[0],
            "started": runs[1], "last_start": runs[2], "stop": info.get("stop"), "ended": info.get("ended"),
            "now": time.time()}


def _failure(directory: Path, key: int, name: str, pool: str, attempts: int, error: str | None,
             ended: float | None) -> dict[str, Any]:
    return {"key": key, "name": name, "pool": pool, "attempts": attempts, "error": error or "",
            "first_lines": first_lines(error or ""), "ended": ended,
            "files": [str(p) for p in output_files(directory, key)]}


def first_lines(error: str, n: int = 2) -> str:
    """The lines of an error that say what went wrong: its message, and the remote exception's last line."""
    lines = [line.rstrip() for line in error.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    head = lines[:1]
    if "Remote traceback:" in error and lines[-1] not in head:
        head.append(lines[-1])
    elif len(lines) > 1 and n > 1:
        head.extend(lines[1:n])
    return "\n".join(head)


def output_files(directory: Path, key: int) -> list[Path]:
    """A task's stdout/stderr files (``tasks/KEY.ATTEMPT.out|err``), every attempt, in order."""
    folder = directory / "tasks"
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"{key}.*.*"), key=lambda p: (p.name.split(".")[1].zfill(6), p.suffix))


# ---- one task -------------------------------------------------------------------------------

def task(directory: str | Path, key: int) -> dict[str, Any]:
    """Everything the journal knows about one task: its description, attempts, where they ran, result."""
    directory = Path(directory)
    conn = connect(directory)
    try:
        row = conn.execute("SELECT key, name, kind, pool, tags, priority, submitted, state, nodes, attempts, spec, "
                           "cores, gpus FROM tasks WHERE key = ?", (key,)).fetchone()
        if row is None:
            last = conn.execute("SELECT max(key) FROM tasks").fetchone()[0]
            which = f"its tasks are 1 to {last}" if last else "it has no tasks (none was submitted)"
            raise NotACampaign(f"The campaign in {directory} has no task {key}; {which}.")
        states = [row[2:6] for row in state_rows(conn.execute(states_sql(conn, "WHERE key = ?"), (key,)))]
        result = conn.execute("SELECT ok, value, path, error, started, ended FROM results WHERE key = ?",
                              (key,)).fetchone()
    finally:
        conn.close()
    (key, name, kind, pool, tags, priority, submitted, state, nodes, attempts, spec, cores, gpus) = row
    if holder(directory) is None and state in UNFINISHED:
        state = "interrupted"
    out: dict[str, Any] = {"key": key, "name": name, "kind": kind, "pool": pool, "tags": split_tags(tags),
                           "priority": priority, "cores": cores, "gpus": gpus, "state": state,
                           "submitted": submitted, "spec": describe_spec(directory, spec),
                           "history": [{"state": s, "ts": ts, "attempt": a, "where": (w or "") if s != "waiting" else ""}
                                       for s, ts, a, w in states],  # (a waiting row's 'nodes' says why it waits)
                           "files": [str(p) for p in output_files(directory, key)]}
    if result is not None:
        ok, value, path, error, started, ended = result
        out["result"] = {"ok": bool(ok), "error": error or "", "started": started, "ended": ended,
                         "stored": (result_file(directory, path) if path else None) or (f"inline, {len(value)} bytes" if value is not None else "none")}
    return out


def describe_spec(directory: Path, blob: bytes | None) -> dict[str, str]:
    """The journaled task description as text (function and arguments, or command line)."""
    if blob is None:
        return {}
    from . import blobs

    try:
        spec = blobs.describe(blob)  # never runs what a (possibly crafted) journal names
    except Exception as exc:  # noqa: BLE001 - not a description this version wrote
        return {"unreadable": f"{type(exc).__name__}: {exc}"}
    return {k: _short(v) for k, v in spec.items()}


def _short(value: Any, limit: int = 400) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text
