"""The journal's writer: group commits, one queue item per state change, a task's last state update per batch."""

from __future__ import annotations

import sqlite3

import pytest

from steerflow import journal as journal_mod
from steerflow.journal import Journal


def rows(path, sql):
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def add_task(j: Journal, key: int) -> None:
    j.put("task", key, "f", "Function", "default", "", 0, "fp", 1.0, None, 1, 0)


def test_flush_and_close_do_not_wait_for_the_gathering_window(tmp_path, monkeypatch):
    """The writer gathers rows before committing; a flush (or close) must cut that short, not sit it out."""
    monkeypatch.setattr(journal_mod, "GATHER_S", 3600.0)
    j = Journal(tmp_path)
    add_task(j, 1)
    j.flush(timeout=60)
    assert rows(j.path, "SELECT key, state FROM tasks") == [(1, "new")]
    add_task(j, 2)
    j.close()  # commits what is queued and returns
    assert rows(j.path, "SELECT key FROM tasks ORDER BY key") == [(1,), (2,)]


def test_a_state_change_writes_its_history_row_and_the_tasks_row(tmp_path):
    j = Journal(tmp_path)
    for key in (1, 2):
        add_task(j, key)
    j.put("state_change", 1, "waiting", 2.0, 0, "deps", None)
    j.put("state_change", 2, "waiting", 2.5, 0, None, None)
    j.put("state_change", 1, "running", 3.0, 1, "n0[c0]", "n0[c0]")
    j.put("state", 2, "interrupted", 3.5, 0, None)  # the two-row form still works beside it
    j.put("task_state", "interrupted", None, 0, 2)
    j.flush()
    assert rows(j.path, "SELECT key, state, ts, attempt, nodes FROM states ORDER BY rowid") == [
        (1, "waiting", 2.0, 0, "deps"), (2, "waiting", 2.5, 0, None), (1, "running", 3.0, 1, "n0[c0]"),
        (2, "interrupted", 3.5, 0, None)]
    assert rows(j.path, "SELECT key, state, nodes, attempts FROM tasks ORDER BY key") == [
        (1, "running", "n0[c0]", 1), (2, "interrupted", None, 0)]
    j.close()


@pytest.mark.parametrize("separate_flushes", [False, True])
def test_only_the_last_update_of_a_task_counts_whether_batched_or_not(tmp_path, separate_flushes):
    j = Journal(tmp_path)
    for key in (1, 2, 3):
        add_task(j, key)
    changes = [(1, "waiting", None), (2, "waiting", None), (1, "running", "n0[c0]"), (3, "waiting", None),
               (2, "running", "n0[c1]"), (1, "done", None), (3, "running", "n0[c0]")]
    for i, (key, state, nodes) in enumerate(changes):
        j.put("state_change", key, state, float(i), 1, nodes, nodes)
        if separate_flushes:
            j.flush()
    j.flush()
    assert rows(j.path, "SELECT key, state, nodes FROM tasks ORDER BY key") == [
        (1, "done", None), (2, "running", "n0[c1]"), (3, "running", "n0[c0]")]
    conn = sqlite3.connect(j.path)
    try:  # the history keeps every change (task 1's running and done: one row when they share a commit)
        history = [row[1:] for row in journal_mod.state_rows(conn.execute(journal_mod.states_sql(conn)))]
    finally:
        conn.close()
    assert sorted(history, key=lambda r: r[2]) == [(k, s, float(i), 1, n) for i, (k, s, n) in enumerate(changes)]
    j.close()


def _nap(seconds: float, gate: str | None = None) -> float:
    import os
    import time

    time.sleep(seconds)
    deadline = time.monotonic() + 120  # bounded: a failing test leaves nothing running for long
    while gate is not None and not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.01)
    return seconds


def test_a_long_tasks_result_is_committed_without_waiting_out_the_gathering_window(tmp_path, monkeypatch):
    """A simulation that ran for a while must not run again because the driver died while its result waited for
    more rows to commit with: its result is committed at once; a no-op's may wait for company."""
    import threading

    import steerflow as sf

    from .conftest import wait_until

    monkeypatch.setattr(journal_mod, "GATHER_S", 3600.0)
    gate = tmp_path / "gate"
    camp = sf.Campaign(tmp_path / "c", allocation=sf.Allocation.declare(nodes=1, cores=2), progress=False)
    long_task = camp.submit(sf.Function(_nap, args=(2 * journal_mod.PROMPT_AFTER_S,)))
    camp.submit(sf.Function(_nap, args=(0.0, str(gate))))  # keeps the campaign running meanwhile
    runner = threading.Thread(target=camp.run)
    runner.start()
    try:
        db = tmp_path / "c" / "journal.db"
        committed = lambda: (long_task.task_id,) in rows(db, "SELECT key FROM results")  # noqa: E731
        assert wait_until(committed, timeout=60), "the long task's result waited for the gathering window"
    finally:
        gate.touch()
        runner.join(120)
    assert not runner.is_alive()
