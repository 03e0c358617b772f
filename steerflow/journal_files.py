"""A campaign's journal file read from outside its driver: by status, reports and resume, also where nothing can be
written (a read-only file system, an archive, another user's campaign), and what a killed driver left.

Separate from `journal` (the driver's writer) so that readers need none of it.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

def readonly_uri(path: str | os.PathLike[str]) -> str:
    """The URI that reads the journal at ``path`` without writing anything, also where nothing can be written.

    A WAL journal read with ``mode=ro`` needs its ``-shm`` file, which SQLite creates beside it: in a
    directory the reader cannot write (a read-only file system, an archive, a colleague's campaign) that
    fails with "unable to open database file". There, with no ``-shm`` and no write-ahead log left (a
    driver that closed, or none running), the database file holds everything, and nobody writes it while
    we read: ``immutable=1`` reads it as it is.
    """
    path = os.fspath(path)
    if os.access(os.path.dirname(path) or ".", os.W_OK) or os.path.exists(f"{path}-shm"):
        return f"file:{uri_path(path)}?mode=ro"
    wal = f"{path}-wal"
    if os.path.exists(wal) and os.path.getsize(wal) > 0:  # rows only in the log: SQLite's read-only WAL path
        return f"file:{uri_path(path)}?mode=ro"
    return f"file:{uri_path(path)}?immutable=1"


def uri_path(path: str | os.PathLike[str]) -> str:
    """``path`` as the path of an SQLite ``file:`` URI: '#', '?' and '%' in a directory's name percent-encoded
    (before, a campaign in "run#2" or "50%" read another file, or none: its run() failed at its first poll)."""
    from urllib.parse import quote

    return quote(os.fspath(path), safe="/")


def holds_nothing(path: Path) -> bool:
    """Whether the journal at ``path`` records no campaign: no launch record and no task (or no schema at all).

    What a driver killed within its first milliseconds leaves (the file created, the schema or the first
    rows not committed yet): running its script again starts the campaign afresh there, losing nothing.
    """
    try:
        conn = sqlite3.connect(readonly_uri(path), uri=True, timeout=10)
    except sqlite3.Error:
        return False
    try:
        launch = conn.execute("SELECT 1 FROM meta WHERE key = 'launch'").fetchone()
        task = conn.execute("SELECT 1 FROM tasks LIMIT 1").fetchone()
        return launch is None and task is None
    except sqlite3.OperationalError as exc:  # no such table: created, schema never committed
        return "no such table" in str(exc)
    except sqlite3.Error:  # not a database: something else is there, leave it alone
        return False
    finally:
        conn.close()


def driver_spans(conn: sqlite3.Connection, before_run: int | None = None) -> list[tuple[float, float]]:
    """(start, end) of each driver that ran the campaign, in order: runs with id < ``before_run``, all of them
    ended; when None, every run, the last perhaps still running (it ends now).

    A driver killed without an end (SIGKILL, a node lost) ends at the last state change it journaled."""
    where = "" if before_run is None else f" WHERE id < {int(before_run)}"
    runs = [r for r in conn.execute(f"SELECT started, ended FROM runs{where} ORDER BY id") if r[0] is not None]
    spans = []
    for i, (start, end) in enumerate(runs):
        if end is None:
            last = i + 1 == len(runs)
            upto = time.time() if last else runs[i + 1][0]
            end = conn.execute("SELECT MAX(ts) FROM states WHERE ts >= ? AND ts < ?", (start, upto)).fetchone()[0]
            if end is None and last and before_run is None:
                end = upto  # (the last driver, still running, has journaled nothing yet)
        spans.append((float(start), max(float(start), float(end or start))))
    return spans


def drivers_wall(conn: sqlite3.Connection, before_run: int | None = None) -> tuple[int, float]:
    """How many drivers ran the campaign and their wall time summed (`driver_spans`): after resumes, the whole
    campaign's wall time, the time between a killed driver and its resume not counted."""
    spans = driver_spans(conn, before_run)
    return len(spans), sum(end - start for start, end in spans)
