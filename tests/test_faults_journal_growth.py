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


def stream(n):
    from steerflow import partial

    partial.emit("small")
    for _ in range(n):
        partial.emit(b"p" * 2**20)  # 1 MiB: a partial the journal does not keep
    return n


def test_large_partial_results_reach_the_agents_but_not_the_journal(tmp_path, capfd):
    """Before: every partial was journaled whole, 10 x 1 MiB partials from each of 50 tasks made 500 MB."""
    directory = tmp_path / "c"

    def build(resume):
        camp = sf.Campaign(directory, allocation=ONE_CORE, progress=False, resume=resume)
        seen = []
        camp.on_partial()(lambda p, ctx: seen.append(p.value if p.value == "small" else len(p.value)))
        for _ in range(4):
            camp.submit(sf.Function(stream, args=(3,)))
        return camp, seen

    camp, live = build(False)
    camp.run()
    assert live == (["small"] + [2**20] * 3) * 4  # the live agents got each one whole
    assert tree_bytes(directory) < 2**20, tree_bytes(directory)
    err = capfd.readouterr().err
    assert err.count("streamed a partial result of 1.0 MB") == 1 and "a resume does not replay them" in err
    again, replayed = build(True)
    again.run()
    assert replayed == ["small"] * 4  # the small ones replay, the large ones were not kept


def test_a_large_event_payload_is_not_journaled_and_replays_from_its_emitter(tmp_path):
    """A learner that emits its model (here 1 MiB) at each result: the journal kept each payload whole."""
    directory = tmp_path / "c"

    def build(resume):
        camp = sf.Campaign(directory, allocation=ONE_CORE, progress=False, resume=resume)
        got = []
        camp.on_result()(lambda result, ctx: ctx.emit("model", bytes([result.value]) * 2**20))
        camp.on_event("model")(lambda model, ctx: got.append((model[0], len(model))))
        for x in range(5):
            camp.submit(sf.Function(abs, args=(-x,)))
        return camp, got

    camp, live = build(False)
    camp.run()
    assert sorted(live) == [(x, 2**20) for x in range(5)]
    assert tree_bytes(directory) < 2**20, tree_bytes(directory)  # before: 5 MiB of payloads
    again, replayed = build(True)
    again.run()
    assert replayed == live  # the same payloads, in the same order, from the replayed emitter
