"""The read side of a resume: chunked lookups answer exactly what one query per key did; settled futures behave
as finished futures (waitable, usable as dependencies)."""

from __future__ import annotations

import concurrent.futures as cf
import random

import pytest

from steerflow import Allocation, Campaign, Function
from steerflow import journal as journal_mod
from steerflow.errors import TaskFailed
from steerflow.futures import SettledFuture
from steerflow.replay import CHUNK, JournalReplay
from steerflow.task import TaskState

pytestmark = pytest.mark.usefixtures("no_leftover_processes")


def _journal_with_gaps(directory, n: int) -> set[int]:
    """A real journal of n keys: some with no task row, some with a task but no result, some failed, some large."""
    journal = journal_mod.Journal(directory)
    rng = random.Random(6)
    absent = set(rng.sample(range(1, n + 1), n // 20))
    for key in range(1, n + 1):
        if key in absent:
            continue
        journal.put("task", key, f"t{key}", "Function", "default", "", 0, f"Function:t{key}:default", 0.0, None, 1, 0)
        roll = rng.random()
        if roll < 0.1:
            continue  # journaled, never finished
        if roll < 0.2:
            journal.put_result(key, False, TaskFailed(f"boom {key}"), None, "TaskFailed: boom", 1.0, 2.0)
        elif roll < 0.22:
            journal.put_result(key, True, b"x" * (journal_mod.INLINE_LIMIT + 10), None, None, 1.0, 2.0)  # a file
        else:
            journal.put_result(key, True, key * 3, None, None, 1.0 + key, 2.0 + key)
    journal.close()
    return absent


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return (a.key, a.ok, a.value, a.path, a.error, a.started, a.ended) == \
        (b.key, b.ok, b.value, b.path, b.error, b.started, b.ended)


def test_chunked_lookups_answer_what_one_query_per_key_answers(tmp_path):
    n = 3 * CHUNK + 17
    _journal_with_gaps(tmp_path, n)
    reference = journal_mod.connect(tmp_path / "journal.db", readonly=True)
    # in order (the usual case), then out of order (a script that changed), then past the end
    orders = [list(range(1, n + 1)), random.Random(1).sample(range(1, n + 1), n), [n + 1, n + 500, 1]]
    try:
        for keys in orders:
            replay = JournalReplay(tmp_path / "journal.db")
            try:
                for key in keys:
                    known, stored = replay.lookup(key)
                    ref_known, ref_stored = journal_mod.lookup_task(reference, key)
                    assert known == ref_known and _same(stored, ref_stored), key
            finally:
                replay.close()
    finally:
        reference.close()


def test_settled_future_behaves_as_a_finished_one():
    ok, failed = SettledFuture(1, 42), SettledFuture(2, error=TaskFailed("no"))
    done, not_done = cf.wait([ok, failed], timeout=5)
    assert done == {ok, failed} and not not_done
    assert set(cf.as_completed([ok, failed], timeout=5)) == {ok, failed}
    assert ok.result() == 42 and ok.exception() is None and ok.state is TaskState.DONE
    assert isinstance(failed.exception(), TaskFailed) and failed.state is TaskState.FAILED
    with pytest.raises(TaskFailed):
        failed.result()
    assert ok.done() and not ok.cancel() and not ok.cancelled() and not ok.running()
    called = []
    ok.add_done_callback(called.append)
    assert called == [ok]


def add(a, b):
    return a + b


def test_a_resumed_result_feeds_a_new_task_as_its_dependency(tmp_path):
    alloc = Allocation.declare(nodes=1, cores=2)
    with Campaign(tmp_path / "c", allocation=alloc, progress=False) as camp:
        first = camp.submit(Function(add, args=(1, 2)))
        camp.run()
        assert first.result() == 3
    camp = Campaign(tmp_path / "c", allocation=alloc, progress=False, resume=True)
    try:
        again = camp.submit(Function(add, args=(1, 2)))
        assert isinstance(again, SettledFuture) and again.result() == 3  # from the journal, not run again
        later = camp.submit(Function(add, args=(again, 10)))  # a new task that waits on it
        seen = []
        camp.on_result()(lambda result, ctx: seen.append((result.key, result.value, result.replayed)))
        camp.run()
    finally:
        camp.close()
    assert later.result() == 13
    assert seen == [(1, 3, True), (2, 13, False)]
