"""What a campaign's directory grows by: bounded per task, whatever a task returns, raises or prints.

Before: a task that raised an exception with a large message (an array's repr, a captured log) was kept
three times over: its text in the journal's ``results.error`` column, and its pickle (the message, and
again in the remote traceback's note) in results/KEY.pkl; 20 MB of message cost ~60 MB of disk per task.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import pytest

import steerflow as sf

pytestmark = pytest.mark.usefixtures("no_leftover_processes")

ONE_CORE = sf.Allocation.declare(nodes=1, cores=1)
BIG = 8 * 2**20


def loud_failure(n):
    raise ValueError("e" * n)


class Unpicklable(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.lock = threading.Lock()  # cannot be pickled: the journal keeps what it said


def unpicklable_failure():
    raise Unpicklable("the lock says no")


def tree_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def test_a_failure_with_a_huge_message_is_kept_bounded_and_replays(tmp_path):
    directory = tmp_path / "c"
    camp = sf.Campaign(directory, allocation=ONE_CORE, progress=False)
    seen = []
    camp.on_result()(lambda result, ctx: seen.append(result.error))
    camp.submit(sf.Function(loud_failure, args=(BIG,)))
    camp.submit(sf.Function(unpicklable_failure))
    camp.run()
    assert len(str(seen[0])) >= BIG  # the live agent gets the whole exception
    assert tree_bytes(directory) < 2 * 2**20, {str(p): p.stat().st_size for p in directory.rglob("*")}
    conn = sqlite3.connect(directory / "journal.db")
    texts = dict(conn.execute("SELECT key, error FROM results"))
    conn.close()
    assert "characters cut" in texts[1] and len(texts[1]) < 100_000
    assert "the lock says no" in texts[2]

    replayed = []
    again = sf.Campaign(directory, allocation=ONE_CORE, progress=False, resume=True)
    again.on_result()(lambda result, ctx: replayed.append(result.error))
    again.submit(sf.Function(loud_failure, args=(BIG,)))
    again.submit(sf.Function(unpicklable_failure))
    again.run()
    assert isinstance(replayed[0], ValueError) and "characters cut" in str(replayed[0])
    assert "Unpicklable" in str(replayed[1]) and "the lock says no" in str(replayed[1])


def test_big_results_go_to_files_and_the_journal_stays_small(tmp_path):
    directory = tmp_path / "c"
    camp = sf.Campaign(directory, allocation=ONE_CORE, progress=False)
    for _ in range(4):
        camp.submit(sf.Function(os.urandom, args=(2 * 2**20,)))
    camp.run()
    assert (directory / "journal.db").stat().st_size < 256 * 1024
    assert len(list((directory / "results").iterdir())) == 4
