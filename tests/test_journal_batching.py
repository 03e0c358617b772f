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
    assert len(rows(j.path, "SELECT * FROM states")) == len(changes)  # the history keeps every change
    j.close()
