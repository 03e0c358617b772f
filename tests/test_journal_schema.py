"""Journal schema 2: fewer rows per task (folded in the writer, `journal._Batch`), one steering row per burst of
deliveries, and journals written before it (schema 1) still read and resume."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import steerflow as sf
from steerflow import journal as journal_mod
from steerflow import rundirs
from steerflow.journal import Journal
from steerflow.observe import timeline

FIXTURE = Path(__file__).parent / "data" / "journal-v1"  # made by steerflow 5f8ea9d: see the script's docstring
SCRIPT = Path(__file__).parent / "campaigns" / "schema_campaign.py"


def _rows(path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _history(path: Path, where: str = "") -> list[tuple]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [row[1:] for row in journal_mod.state_rows(conn.execute(journal_mod.states_sql(conn, where)))]
    finally:
        conn.close()


def test_a_schema_1_journal_is_read_as_it_was(tmp_path):
    """Opened read-only (no `since` column): status, a task's history and the timeline read as before."""
    directory = tmp_path / "c"
    shutil.copytree(FIXTURE, directory)
    assert "since" not in {row[1] for row in _rows(directory / "journal.db", "PRAGMA table_info(states)")}
    info = rundirs.status(directory)
    assert info["pools"]["default"] == {"done": 14, "failed": 1, "interrupted": 17}
    history = rundirs.task(directory, 1)["history"]
    assert [h["state"] for h in history] == ["waiting", "running", "done"]
    assert len(_history(directory / "journal.db")) == len(_rows(directory / "journal.db", "SELECT * FROM states"))
    tl = timeline.read(directory)
    assert sum(1 for h in tl.holds if h.outcome == "done") == 14


def test_a_schema_1_journal_resumes_with_nothing_lost_and_nothing_run_again(tmp_path):
    directory, sidefx = tmp_path / "c", tmp_path / "sidefx"
    shutil.copytree(FIXTURE, directory)
    sidefx.mkdir()
    db = directory / "journal.db"
    old_results = {k for (k,) in _rows(db, "SELECT key FROM results")}
    old_delivered = [k for (k,) in _rows(db, "SELECT key FROM steering WHERE kind = 'result' ORDER BY seq")]
    undelivered = old_results - set(old_delivered)
    assert undelivered, "the fixture should hold a result committed but not delivered (stopped mid-round)"

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, str(SCRIPT), str(directory), str(sidefx), "0"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]

    seen = json.loads((directory / "state.json").read_text())["seen"]  # [key, x, ok, replayed] in delivery order
    keys = [s[0] for s in seen]
    assert len(keys) == len(set(keys)), "a result was delivered twice"
    assert keys[:len(old_delivered)] == old_delivered  # the agents rebuilt their state from the journal, in order
    assert all(s[3] for s in seen[:len(old_delivered)])  # (as replayed results)
    assert undelivered <= set(keys[len(old_delivered):])  # committed, never delivered: delivered now (from the journal)
    assert set(keys) == {k for (k,) in _rows(db, "SELECT key FROM tasks")}  # every task ended and was delivered
    x_of = {s[0]: s[1] for s in seen}
    for key in old_results:  # finished before: not run again (its side-effect file is from the old run only)
        assert not (sidefx / str(x_of[key])).exists(), f"task {key} had a result in the old journal and ran again"
    for path in sidefx.iterdir():
        assert path.read_text() == "ran\n", f"{path.name} ran more than once in the resumed run"

    # the journal was brought to the current schema and reads whole: old rows as they were, new ones folded
    assert _rows(db, "SELECT value FROM meta WHERE key = 'schema'") == [(str(journal_mod.SCHEMA_VERSION),)]
    assert "since" in {row[1] for row in _rows(db, "PRAGMA table_info(states)")}
    states = dict(_rows(db, "SELECT state, count(*) FROM tasks GROUP BY state"))
    assert states == {"done": len(keys) - 1, "failed": 1}
    assert journal_mod.delivered_keys(sqlite3.connect(db))[:len(old_delivered)] == old_delivered
    for key in keys:  # every task's history ends in its final state after a running row of the same attempt
        history = _history(db, f"WHERE key = {key}")
        assert history[-1][1] in ("done", "failed") and history[-2][1] == "running", (key, history)
        assert history[-2][3] == history[-1][3]
    tl = timeline.read(directory)
    assert sum(1 for h in tl.holds if h.outcome in ("done", "failed")) == len(keys)


def test_opening_a_schema_1_journal_adds_the_column_and_keeps_its_rows(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "c")
    db = tmp_path / "c" / "journal.db"
    before = _rows(db, "SELECT rowid, key, state, ts, attempt, nodes FROM states ORDER BY rowid")
    j = Journal(tmp_path / "c")
    j.close()
    assert _rows(db, "SELECT rowid, key, state, ts, attempt, nodes FROM states ORDER BY rowid") == before
    assert _rows(db, "SELECT count(*) FROM states WHERE since IS NOT NULL") == [(0,)]


def _task(j: Journal, key: int) -> None:
    j.put("task", key, "f", "Function", "default", "", 0, "fp", 1.0, None, 1, 0)


def test_a_task_whose_rows_share_a_commit_is_written_as_fewer_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(journal_mod, "GATHER_S", 3600.0)  # one commit per flush
    j = Journal(tmp_path)
    _task(j, 1)  # submitted, queued, ran and finished within one commit
    j.put_many([("state_change", (1, "waiting", 2.0, 0, None, None)),
                ("state_change", (1, "running", 3.0, 1, "n0[c0]", "n0[c0]")),
                ("state_change", (1, "done", 4.0, 1, None, None))])
    _task(j, 2)  # its running row is committed before it ends: two rows, as before
    j.put("state_change", 2, "waiting", 2.0, 0, None, None)
    j.put("state_change", 2, "running", 3.0, 1, "n0[c1]", "n0[c1]")
    j.flush()
    j.put("state_change", 2, "done", 5.0, 1, None, None)
    _task(j, 3)  # failed, requeued and ran again in one commit: only an attempt's own end folds its running row
    j.put_many([("state_change", (3, "waiting", 2.0, 0, None, None)),
                ("state_change", (3, "running", 3.0, 1, "n0[c0]", "n0[c0]")),
                ("state_change", (3, "waiting", 3.5, 1, "failed", None)),
                ("state_change", (3, "running", 4.0, 2, "n0[c1]", "n0[c1]")),
                ("state_change", (3, "done", 4.5, 2, None, None))])
    j.close()
    db = tmp_path / "journal.db"
    assert _rows(db, "SELECT key, state, nodes, attempts FROM tasks ORDER BY key") == [
        (1, "done", None, 1), (2, "done", None, 1), (3, "done", None, 2)]
    assert _rows(db, "SELECT key, state, since, nodes FROM states WHERE key = 1") == [
        (1, "waiting", None, None), (1, "done", 3.0, "n0[c0]")]
    assert _history(db, "WHERE key = 1") == [(1, "waiting", 2.0, 0, None), (1, "running", 3.0, 1, "n0[c0]"),
                                            (1, "done", 4.0, 1, None)]
    assert _rows(db, "SELECT count(*) FROM states WHERE key = 2") == [(3,)]
    assert _history(db, "WHERE key = 2") == [(2, "waiting", 2.0, 0, None), (2, "running", 3.0, 1, "n0[c1]"),
                                            (2, "done", 5.0, 1, None)]
    assert _history(db, "WHERE key = 3") == [
        (3, "waiting", 2.0, 0, None), (3, "running", 3.0, 1, "n0[c0]"), (3, "waiting", 3.5, 1, "failed"),
        (3, "running", 4.0, 2, "n0[c1]"), (3, "done", 4.5, 2, None)]
    assert _rows(db, "SELECT count(*) FROM states WHERE key = 3") == [(4,)]


def test_the_outline_finds_undelivered_results_among_burst_rows(tmp_path):
    j = Journal(tmp_path)
    for key in range(1, 21):
        j.put_result(key, True, key, None, None, 0.0, 1.0)
    j.put("steer", 1, "start", None, None, None, 0.0)
    j.put("steer", 2, "result", 1, None, None, 0.0)  # schema 1's form (and a burst of one)
    j.put("steer", 3, "results", None, None, journal_mod.pack_keys([2, 3, 5]), 0.0)
    j.put("steer", 4, "results", None, None, journal_mod.pack_keys(list(range(10, 16))), 0.0)
    j.close()
    conn = journal_mod.connect(tmp_path / "journal.db", readonly=True)
    try:
        last, undelivered, started, _ = journal_mod.replay_outline(conn)
        assert (last, started) == (4, True)
        assert undelivered == {4, 6, 7, 8, 9, 16, 17, 18, 19, 20}
        assert journal_mod.delivered_keys(conn) == [1, 2, 3, 5, 10, 11, 12, 13, 14, 15]
    finally:
        conn.close()


def twice(x):
    return 2 * x


def test_deliveries_are_journaled_per_burst_and_before_what_their_handlers_submit(tmp_path, monkeypatch):
    camp = sf.Campaign(tmp_path / "c", allocation=sf.Allocation.declare(nodes=1, cores=2), progress=False)
    order: list[tuple] = []  # what the steering thread journals, in queue order
    put = camp.journal.put

    def record(kind, *row):
        if kind == "steer" and row[1] in ("result", "results"):
            order.append(("delivered", row[2]) if row[1] == "result" else ("delivered", *journal_mod.unpack_keys(row[4])))
        elif kind == "task":
            order.append(("task", row[0]))
        put(kind, *row)

    monkeypatch.setattr(camp.journal, "put", record)
    caused: dict[int, int] = {}

    @camp.on_result()
    def more(result, ctx):
        if result.value < 40:
            caused[ctx.submit(twice, result.value).task_id] = result.key

    for i in range(1, 30):
        camp.submit(twice, i)
    summary = camp.run()
    assert summary["states"] == {"done": 29 + len(caused)} and caused
    position: dict[int, int] = {}
    for i, entry in enumerate(order):
        if entry[0] == "delivered":
            position.update({k: i for k in entry[1:]})
    task_at = {entry[1]: i for i, entry in enumerate(order) if entry[0] == "task"}
    for key, cause in caused.items():
        assert position[cause] < task_at[key], f"task {key} was journaled before the delivery of {cause} that caused it"
    delivered = [k for entry in order if entry[0] == "delivered" for k in entry[1:]]
    assert sorted(delivered) == list(range(1, 30 + len(caused)))
    conn = sqlite3.connect(camp.journal.path)
    try:
        assert journal_mod.delivered_keys(conn) == delivered
    finally:
        conn.close()


@pytest.mark.parametrize("n", [1, 3])
def test_pack_keys_round_trips(n):
    keys = list(range(7, 7 + n)) + [2**40]
    assert list(journal_mod.unpack_keys(journal_mod.pack_keys(keys))) == keys


def test_a_journal_with_burst_rows_resumes_in_its_delivery_order(tmp_path, monkeypatch):
    from steerflow import steering

    monkeypatch.setattr(steering, "GATHER_S", 0.05)  # results gather: bursts of several, one `results` row each
    alloc = sf.Allocation.declare(nodes=1, cores=2)
    first: list[int] = []
    camp = sf.Campaign(tmp_path / "c", allocation=alloc, progress=False)
    camp.on_result()(lambda result, ctx: first.append(result.key))
    for i in range(40):
        camp.submit(twice, i)
    camp.run(stop=sf.stop.tasks(25))
    assert len(first) == 25
    assert _rows(camp.journal.path, "SELECT count(*) FROM steering WHERE kind = 'results'")[0][0] >= 1

    again: list[tuple[int, bool]] = []
    camp = sf.Campaign(tmp_path / "c", allocation=alloc, progress=False, resume=True)
    camp.on_result()(lambda result, ctx: again.append((result.key, result.replayed)))
    for i in range(40):
        camp.submit(twice, i)
    camp.run()
    assert again[:25] == [(key, True) for key in first]  # replayed in the order the agent first saw them
    assert sorted(key for key, _ in again) == list(range(1, 41))
