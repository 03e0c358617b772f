"""Requests to a running driver from other processes (`steerflow cancel`), through the journal.

The command line inserts a row into the journal's ``control`` table; the driver's steering thread
reads new rows on its own read-only connection (no waiting for the journal writer, no connection
shared across threads) and marks them done through the journal. Requests: ``cancel KEY`` and
``stop`` (``arg='script'``: the script's later campaigns do not start either).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from .journal_files import uri_path


def request(journal_path: Path, op: str, args: list[str]) -> None:
    """Queue ``op`` once per argument (``stop`` takes one) for the driver of the campaign."""
    conn = sqlite3.connect(journal_path, timeout=10)
    try:
        with conn:
            conn.executemany("INSERT INTO control (op, arg, ts) VALUES (?, ?, ?)",
                             [(op, arg, time.time()) for arg in args])
    finally:
        conn.close()


class Reader:
    """New control requests, each returned once (marking them done is committed later, by the writer)."""

    def __init__(self, journal_path: Path) -> None:
        self.path = journal_path
        self._conn: sqlite3.Connection | None = None
        self._seen: set[int] = set()

    def new(self) -> list[tuple[int, str, str]]:
        if self._conn is None:
            uri = f"file:{uri_path(self.path)}?mode=ro"
            self._conn = sqlite3.connect(uri, uri=True, timeout=10, check_same_thread=False)
        rows = self._conn.execute("SELECT id, op, arg FROM control WHERE done = 0").fetchall()
        fresh = [row for row in rows if row[0] not in self._seen]
        self._seen.update(row[0] for row in fresh)
        return fresh

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
