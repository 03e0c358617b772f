"""Reading a campaign's journal: stored results, deliveries, the outline a resume needs, and tags.

Split from `journal` (the driver's writer) by concern: resume, status, reports and the learning layer
read through these; `journal` re-exports them, so ``journal.read_results`` and the like still work.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from . import serialize

__all__ = ["StoredResult", "read_meta", "read_results", "read_steering", "pack_keys", "unpack_keys",
           "delivered_keys", "replay_outline", "lookup_task", "read_known_tasks", "join_tags", "split_tags"]


@dataclass
class StoredResult:
    key: int
    ok: bool
    value: bytes | None
    path: str | None
    error: str | None
    started: float
    ended: float
    directory: str | None = None  # the campaign's directory, where its results/ folder is now

    def load(self) -> Any:
        """The stored value (or exception), unpickled from the row or its file."""
        blob = self.value
        if blob is None and self.path:
            with open(result_file(self.directory, self.path), "rb") as f:
                blob = f.read()
        return serialize.loads(blob) if blob is not None else None


def result_file(directory: str | os.PathLike[str] | None, path: str) -> str:
    """Where a result the journal stored in a file (``results.path``, written as an absolute path) is now: in the
    results/ folder of the campaign's directory as it is now, wherever it was written (before, a moved or copied
    campaign read its large results from the old place: failed tasks on resume once that was gone, another
    campaign's files while it was not)."""
    if directory is None:
        return path
    return os.path.join(directory, "results", os.path.basename(path))


def read_meta(conn: sqlite3.Connection) -> dict[str, Any]:
    return {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM meta")}


def read_results(conn: sqlite3.Connection, directory: str | os.PathLike[str] | None = None) -> dict[int, StoredResult]:
    """Every stored result; ``directory``: the campaign's, where `StoredResult.load` finds result files."""
    where = None if directory is None else os.fspath(directory)
    return {row[0]: StoredResult(row[0], bool(row[1]), row[2], row[3], row[4], row[5], row[6], where)
            for row in conn.execute("SELECT key, ok, value, path, error, started, ended FROM results")}


def read_steering(conn: sqlite3.Connection) -> Iterator[tuple[int, str, int | None, str | None, bytes | None]]:
    yield from conn.execute("SELECT seq, kind, key, name, payload FROM steering ORDER BY seq")


def pack_keys(keys: list[int]) -> bytes:
    """A ``results`` steering row's payload: the keys delivered, in delivery order (int64 little-endian)."""
    return struct.pack(f"<{len(keys)}q", *keys)


def unpack_keys(payload: bytes) -> tuple[int, ...]:
    return struct.unpack(f"<{len(payload) // 8}q", payload)


def delivered_keys(conn: sqlite3.Connection) -> list[int]:
    """The keys whose results the agents were given, in delivery order (``result`` and ``results`` rows)."""
    out: list[int] = []
    for kind, key, payload in conn.execute(
            "SELECT kind, key, payload FROM steering WHERE kind IN ('result', 'results') ORDER BY seq"):
        if kind == "result":
            out.append(key)
        else:
            out.extend(unpack_keys(payload))
    return out


def replay_outline(conn: sqlite3.Connection) -> tuple[int, set[int], bool, dict[int, int]]:
    """What a resume needs before replaying, without loading the journal: the last steering seq, the keys
    whose results were committed but never delivered to the agents (the crash window), whether the
    campaign had started, and the ``replaced`` keys (key -> the seq up to which its deliveries do not count).

    Deliveries are ``result`` rows (one key: every journal before schema 2, and a burst of one) and
    ``results`` rows (the keys of one burst, `pack_keys`); the latter are read into a bitmap of one bit
    per key, so a million-task journal needs 125 kB here."""
    last = conn.execute("SELECT MAX(seq) FROM steering").fetchone()[0] or 0
    try:
        replaced = dict(conn.execute("SELECT key, upto FROM replaced"))
    except sqlite3.OperationalError:  # a journal written before the table (opened read-only: not added)
        replaced = {}
    seen = bytearray()
    for seq, payload in conn.execute("SELECT seq, payload FROM steering WHERE kind = 'results'"):
        for key in unpack_keys(payload):
            if replaced and seq <= replaced.get(key, -1):
                continue  # a delivery that no longer counts
            byte = key >> 3
            if byte >= len(seen):
                seen.extend(bytes(max(byte + 1 - len(seen), len(seen))))
            seen[byte] |= 1 << (key & 7)
    undelivered = {row[0] for row in conn.execute(
        "SELECT key FROM results WHERE key NOT IN (SELECT key FROM steering WHERE kind = 'result' AND key IS NOT NULL)")
        if (row[0] >> 3) >= len(seen) or not seen[row[0] >> 3] & (1 << (row[0] & 7))}
    if replaced:  # such a key counts as delivered only by a ``result`` row after its ``upto``
        single = dict(conn.execute("SELECT s.key, MAX(s.seq) FROM steering s JOIN replaced r ON r.key = s.key "
                                   "WHERE s.kind = 'result' GROUP BY s.key"))
        for (key,) in conn.execute("SELECT r.key FROM replaced r JOIN results USING (key)"):
            if single.get(key, -1) <= replaced[key] and ((key >> 3) >= len(seen)
                                                         or not seen[key >> 3] & (1 << (key & 7))):
                undelivered.add(key)
    started = conn.execute("SELECT 1 FROM steering WHERE kind = 'start' LIMIT 1").fetchone() is not None
    return int(last), undelivered, started, replaced


def lookup_task(conn: sqlite3.Connection, key: int,
                directory: str | os.PathLike[str] | None = None) -> tuple[str | None, StoredResult | None]:
    """A task's fingerprint (None: not in the journal) and its stored result (None: it has none): one indexed read."""
    row = conn.execute("SELECT t.fingerprint, r.key, r.ok, r.value, r.path, r.error, r.started, r.ended "
                       "FROM tasks t LEFT JOIN results r ON r.key = t.key WHERE t.key = ?", (key,)).fetchone()
    if row is None:
        return None, None
    if row[1] is None:
        return row[0], None
    return row[0], StoredResult(row[1], bool(row[2]), row[3], row[4], row[5], row[6], row[7],
                                None if directory is None else os.fspath(directory))


def read_known_tasks(conn: sqlite3.Connection) -> dict[int, str]:
    return dict(conn.execute("SELECT key, fingerprint FROM tasks"))


_TAG_ESCAPES = re.compile("%(2[Cc]|25)")


def join_tags(tags: Iterable[str]) -> str:
    """A task's tags as the journal's ``tags`` column keeps them: joined by commas, with a comma or '%' inside a
    tag written %2C / %25, so that `split_tags` gives back each tag whole (before, a tag "a,b" was read back as the
    two tags "a" and "b" by `status`, `show` and `report`). A tag with neither is stored as it is."""
    return ",".join(t.replace("%", "%25").replace(",", "%2C") if ("," in t or "%" in t) else t for t in tags)


def split_tags(column: str | None) -> list[str]:
    """The tags of a ``tags`` column written by `join_tags` (also by a steerflow before it: a tag there had no
    comma to escape; one holding a literal "%2C" or "%25" is the only text read back differently)."""
    if not column:
        return []
    if "%" not in column:
        return column.split(",")
    return [_TAG_ESCAPES.sub(lambda m: "," if m.group(1) in ("2C", "2c") else "%", t) for t in column.split(",")]
