"""Results handed to the steering thread once per round of the runtime's loop, and the per-task paths it saves.

- a round listener runs after the state changes of its round, so nothing a listener gathered is left behind;
- the steering thread reads a finished future's outcome without its lock (`TaskFuture.outcome`);
- the journal loads a result's value only when it cannot store the pickle the result came as;
- a campaign's agents still see every result once, in the order the journal delivers them.
"""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import InvalidStateError, wait

import pytest

from steerflow import Allocation, Campaign, serialize
from steerflow import journal as journal_mod
from steerflow.futures import SettledFuture, TaskFuture

from .conftest import wait_until

pytestmark = pytest.mark.usefixtures("no_leftover_processes")


def noop():
    return None


def twice(x):
    return 2 * x


def inc(x):
    return x + 1


def boom():
    raise ValueError("boom")


def test_every_state_change_is_followed_by_its_rounds_end(make_runtime):
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=2))
    seen: list[tuple] = []
    loop_threads: set[int] = set()

    def on_state(record, state):
        seen.append(("state", record.id, state.value))

    def on_round():
        loop_threads.add(threading.get_ident())
        seen.append(("round",))

    rt.add_listener(on_state)
    rt.add_round_listener(on_round)
    futures = [rt.submit(twice, i) for i in range(40)]
    wait(futures, timeout=120)
    assert [f.result() for f in futures] == [2 * i for i in range(40)]
    # while the runtime still runs (not only when it ends), the last change was followed by its round's end
    assert wait_until(lambda: seen[-1] == ("round",), timeout=30)
    rt.shutdown()
    assert loop_threads == {rt._thread.ident}  # called in the loop thread, like the per-task listeners
    done = [i for i, e in enumerate(seen) if e[0] == "state" and e[2] == "done"]
    assert len(done) == 40
    assert seen[-1] == ("round",)  # the last round's changes were handed on too
    rounds = [i for i, e in enumerate(seen) if e == ("round",)]
    assert len(rounds) < len([e for e in seen if e[0] == "state"])  # one call per round, not per change


def test_a_finished_futures_outcome_is_read_without_waiting(make_runtime):
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=1))
    ok, bad = rt.submit(twice, 21), rt.submit(boom)
    wait([ok, bad], timeout=60)
    assert ok.outcome() == (False, 42, None)
    cancelled, value, error = bad.outcome()
    assert (cancelled, value, type(error), str(error)) == (False, None, ValueError, "boom")
    pending = TaskFuture(None, 7)
    with pytest.raises(InvalidStateError, match="Task 7 has not finished"):
        pending.outcome()
    assert pending.cancel() is False  # no runtime: nothing to cancel, so it stays pending
    other = TaskFuture(rt, 8)
    assert super(TaskFuture, other).cancel()  # cancelled before it ran (the base method: no message to the loop)
    assert other.outcome() == (True, None, None)
    assert SettledFuture(9, "v").outcome() == (False, "v", None)
    encoded = TaskFuture(None, 10)
    encoded.set_result(serialize.Encoded(serialize.dumps([1, 2])))
    assert encoded.outcome() == (False, [1, 2], None) and encoded.loaded  # loaded once, kept


def test_the_journal_loads_a_value_only_when_it_cannot_store_the_pickle(tmp_path):
    calls: list[int] = []

    def load(value):
        def run():
            calls.append(value)
            return value
        return run

    j = journal_mod.Journal(tmp_path)
    small = serialize.dumps("small")
    j.put_result(1, True, None, small, None, 1.0, 2.0, load=load(1))  # stored as it came
    j.put_result(2, True, None, None, None, 1.0, 2.0, load=load(2))  # no pickle: the value is loaded and stored
    j.put_result(3, True, "given", None, None, 1.0, 2.0)  # the value given directly, as before
    j.close()
    assert calls == [2]
    conn = sqlite3.connect(j.path)
    try:
        stored = {k: serialize.loads(v) for k, v in conn.execute("SELECT key, value FROM results")}
    finally:
        conn.close()
    assert stored == {1: "small", 2: 2, 3: "given"}


def test_agents_see_every_result_once_and_the_journal_delivers_them_in_that_order(tmp_path):
    camp = Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=2), progress=False)
    seen: list[tuple[int, object]] = []

    @camp.on_result()
    def collect(result, ctx):
        seen.append((result.key, result.value if result.ok else type(result.error).__name__))
        if result.key <= 20:  # the agent's own work arrives while other rounds are in flight
            ctx.submit(twice, result.key)

    for i in range(30):
        camp.submit(twice, i) if i % 10 else camp.submit(boom)
    summary = camp.run()
    assert summary["results_seen"] == len(seen) == 30 + 20
    assert len({k for k, _ in seen}) == len(seen)
    assert summary["states"] == {"done": 47, "failed": 3}
    conn = sqlite3.connect(camp.journal.path)
    try:
        delivered = journal_mod.delivered_keys(conn)
        stored = dict(conn.execute("SELECT key, ok FROM results"))
    finally:
        conn.close()
    assert delivered == [k for k, _ in seen]  # the journal's order is the order the agent saw
    assert sorted(stored) == sorted(delivered) and sum(stored.values()) == 47


def nap(x):
    import time

    time.sleep(0.03)
    return x


def test_with_more_tasks_than_cores_results_gather_before_the_agents_see_them(tmp_path, monkeypatch):
    from steerflow import steering

    monkeypatch.setattr(steering, "GATHER_S", 0.5)
    camp = Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=2), progress=False)
    bursts = [0]
    deliver_queued = camp._deliver_queued

    def counting(item, stop):
        bursts[0] += 1
        deliver_queued(item, stop)

    monkeypatch.setattr(camp, "_deliver_queued", counting)
    seen: list[int] = []
    camp.on_result()(lambda result, ctx: seen.append(result.value))
    for i in range(60):
        camp.submit(nap, i)
    camp.run()
    assert sorted(seen) == list(range(60))
    # ~0.9 s of work in 30 rounds of two results: without gathering, one burst per round
    assert bursts[0] < 12, bursts[0]


def test_a_chain_of_single_tasks_never_waits_for_the_gathering(tmp_path, monkeypatch):
    import time

    from steerflow import steering

    monkeypatch.setattr(steering, "GATHER_S", 30.0)
    camp = Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=2), progress=False)

    @camp.on_result()
    def next_link(result, ctx):
        if result.value < 6:
            ctx.submit(inc, result.value)  # one task at a time: the agent is on the critical path

    camp.submit(inc, 1)
    t0 = time.monotonic()
    summary = camp.run()
    assert summary["results_seen"] == 5  # 2, 3, 4, 5, 6
    assert time.monotonic() - t0 < 25  # a single gathering pause would take 30 s


def test_rows_put_as_one_batch_are_written_as_if_put_one_by_one(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "many").mkdir()
    one, many = journal_mod.Journal(tmp_path / "one"), journal_mod.Journal(tmp_path / "many")
    small = serialize.dumps(7)
    pairs = [("task", (1, "f", "Function", "default", "", 0, "fp", 1.0, None, 1, 0)),
             ("state_change", (1, "waiting", 2.0, 0, None, None)),
             ("state_change", (1, "running", 3.0, 1, "n0[c0]", "n0[c0]")),
             (journal_mod.RESULT, (1, True, None, small, None, 3.0, 4.0, None, None)),
             ("state_change", (1, "done", 4.0, 1, None, None))]
    for kind, row in pairs:
        if kind == journal_mod.RESULT:
            one.put_result(*row[:8])
        else:
            one.put(kind, *row)
    many.put_many(pairs)
    many.put_many([])  # nothing queued, nothing counted
    for j in (one, many):
        j.flush(timeout=60)
        assert j.rows == len(pairs)  # every pair counted, so a flush waits for exactly these
        j.close()

    def dump(j):
        conn = sqlite3.connect(j.path)
        try:
            return [conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in ("tasks", "states", "results")]
        finally:
            conn.close()

    assert dump(one) == dump(many)
    assert dump(many)[0][0][8] == "done" and serialize.loads(dump(many)[2][0][2]) == 7
