"""Incremental reading (timeline.Follower, live.Reader): folding in only the new rows gives what a full read gives.

A finished journal is written again into a fresh one, step by step in time order as a driver would
have written it (task rows, their state rows with the task row's state updated alike, results one
step late as a result may commit a batch after its state row, some task rows a step late and out of
key order); after each step a `Follower` kept across steps must read exactly what a fresh `read()`
reads, and the final one what the source journal reads.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import astuple
from pathlib import Path

import pytest

from steerflow import Allocation, Campaign, Function, journal
from steerflow.observe import live, metrics, synthetic, timeline


def fail_once(marker: str) -> str:
    import os

    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("first attempt fails on purpose")
    return "second attempt"


def real_journal(directory: Path) -> Path:
    camp = Campaign(directory / "c", allocation=Allocation.declare(nodes=1, cores=2), progress=False,
                    pools={"sim": {"cores": 2}, "ana": {"cores": 1}})
    first = camp.submit(Function(time.sleep, args=(0.2,), pool="sim"))
    camp.submit(Function(time.sleep, args=(0.1,), pool="sim", after=[first]))
    camp.submit(Function(time.sleep, args=(0.15,), pool="ana", tags=("x", "y")))
    camp.submit(Function(fail_once, args=(str(directory / "marker"),), pool="ana", retries=1))
    camp.submit(Function(int, args=("nope",), pool="ana"))  # fails for good

    @camp.on_result()
    def react(result, ctx):
        ctx.emit("learning-progress", {"loss": 1.0 / result.key})
        if result.key == 1:
            ctx.set_quota("ana", cores=2)
            for i in range(3):
                ctx.submit(Function(time.sleep, args=(0.05,), pool="ana", after=[first]))

    camp.run()
    return directory / "c"


def grow(source: Path, target: Path, steps: int) -> Iterator[int]:
    """Write ``source``'s journal into ``target`` in ``steps`` time steps, yielding after each."""
    src = sqlite3.connect(source / "journal.db")
    target.mkdir(parents=True)
    dst = sqlite3.connect(target / "journal.db", isolation_level=None)
    dst.executescript(journal.SCHEMA)
    dst.executemany("INSERT INTO meta VALUES (?, ?)", src.execute("SELECT key, value FROM meta"))
    tasks = src.execute("SELECT key, name, kind, pool, tags, priority, fingerprint, submitted, spec, cores, gpus "
                        "FROM tasks").fetchall()
    # (a row that stands for two, schema 2's running row folded into its end's, is written as the two it stands for)
    states = [row[1:] for row in journal.state_rows(src.execute(journal.states_sql(src)))]
    results = src.execute("SELECT key, ok, value, path, error, started, ended, timing FROM results").fetchall()
    steering = src.execute("SELECT seq, kind, key, name, payload, ts FROM steering ORDER BY seq").fetchall()
    series = src.execute("SELECT name, ts, value FROM series ORDER BY rowid").fetchall()
    runs = src.execute("SELECT id, pid, started, ended, cores, gpus FROM runs ORDER BY id").fetchall()
    src.close()
    t0 = min(r[7] for r in tasks) - 1e-3
    t1 = max([s[2] for s in states] + [r[6] or 0 for r in results] + [r[3] or 0 for r in runs]) + 1e-3
    last = steps - 1

    def step_of(ts: float) -> int:
        return min(last, max(0, math.ceil((ts - t0) / (t1 - t0) * steps) - 1))

    # when each row is written: at its time's step, except every third task row a step late (so it arrives
    # below the key high-water mark), its state rows a step after that (a task row with no state row yet),
    # and every result a step after its task ended (a result may commit a batch after its state row)
    task_step = {t[0]: min(last, step_of(t[7]) + (1 if t[0] % 3 == 0 else 0)) for t in tasks}
    state_step = [max(step_of(s[2]), min(last, task_step[s[0]] + (1 if s[0] % 3 == 0 else 0))) for s in states]
    for i in range(1, len(state_step)):  # rows keep their order
        state_step[i] = max(state_step[i], state_step[i - 1])
    final_state = {s[0]: state_step[i] for i, s in enumerate(states)}
    for step in range(steps):
        dst.execute("BEGIN")
        for run in runs:
            if step_of(run[2]) == step:
                dst.execute("INSERT INTO runs VALUES (?, ?, ?, NULL, ?, ?)", (run[0], run[1], run[2], run[4], run[5]))
            if run[3] and step_of(run[3]) == step:
                dst.execute("UPDATE runs SET ended = ? WHERE id = ?", (run[3], run[0]))
        for t in sorted(tasks, key=lambda t: -t[0]):  # out of key order
            if task_step[t[0]] == step:
                dst.execute("INSERT INTO tasks (key, name, kind, pool, tags, priority, fingerprint, submitted, state,"
                            " spec, cores, gpus) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'new', ?, ?, ?)", t)
        for i, (key, state, ts, attempt, nodes) in enumerate(states):
            if state_step[i] == step:
                dst.execute("INSERT INTO states (key, state, ts, attempt, nodes) VALUES (?, ?, ?, ?, ?)",
                            (key, state, ts, attempt, nodes))
                dst.execute("UPDATE tasks SET state = ?, nodes = ?, attempts = ? WHERE key = ?",
                            (state, nodes if state == "running" else None, attempt, key))
        for r in results:
            if min(last, final_state.get(r[0], 0) + 1) == step:
                dst.execute("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?)", r)
        for row in steering:
            if step_of(row[5] or t0) == step:
                dst.execute("INSERT INTO steering VALUES (?, ?, ?, ?, ?, ?)", row)
        for row in series:
            if step_of(row[1]) == step:
                dst.execute("INSERT INTO series VALUES (?, ?, ?)", row)
        dst.execute("COMMIT")
        yield step
    dst.close()


def same(a: timeline.Timeline, b: timeline.Timeline) -> None:
    assert a.tasks == b.tasks
    assert repr(sorted(a.results.items())) == repr(sorted(b.results.items()))  # NaN-safe
    assert sorted(map(astuple, a.holds)) == sorted(map(astuple, b.holds))
    assert sorted(map(astuple, a.waits)) == sorted(map(astuple, b.waits))
    assert sorted(a.quotas, key=repr) == sorted(b.quotas, key=repr)
    assert repr(a.events) == repr(b.events) and a.series == b.series and a.meta == b.meta
    assert (a.first, a.last, a.cores, a.gpus, a.nodes, a.live) == (b.first, b.last, b.cores, b.gpus, b.nodes, b.live)
    ma, mb = metrics.compute(a), metrics.compute(b)
    assert ma["tasks"] == mb["tasks"] and ma["attempts"] == mb["attempts"]
    assert ma["idle_while_queued_core_s"] == pytest.approx(mb["idle_while_queued_core_s"], abs=1e-9)
    assert ma["utilization_mean_pct"] == pytest.approx(mb["utilization_mean_pct"])


@pytest.mark.parametrize("kind", ["real", "synthetic"])
def test_a_follower_reads_what_a_full_read_reads_at_every_step(tmp_path, kind, monkeypatch):
    if kind == "real":
        monkeypatch.setattr(journal, "GATHER_S", 0.5)  # long commits: running rows fold into their ends' (schema 2)
        source = real_journal(tmp_path)
        conn = sqlite3.connect(source / "journal.db")
        try:
            assert conn.execute("SELECT count(*) FROM states WHERE since IS NOT NULL").fetchone()[0] > 0
        finally:
            conn.close()
    else:
        source = tmp_path / "syn"
        synthetic.write(source, tasks=3000, nodes=2, cores=8, gpus=1)
    target = tmp_path / "grown"
    follower = reader = None
    reads = 0
    for _ in grow(source, target, steps=12):
        if follower is None:
            follower, reader = timeline.Follower(target), live.Reader(target)
        full = timeline.read(target)
        same(follower.read(), full)
        assert reader.snapshot() == metrics.snapshot_from(full)  # the terminal views' live numbers, incrementally
        reads += 1
    same(follower.read(), timeline.read(source))
    assert reader.snapshot() == metrics.snapshot_from(timeline.read(source)) == live.snapshot(source)
    follower.close()
    reader.close()
    assert reads == 12
    full = timeline.read(source)
    assert len(full.holds) >= len(full.tasks) and full.waits  # the journal had something to follow
    if kind == "real":
        assert any(w.kind == "deps" for w in full.waits) and len(full.quotas) >= 1 and full.events
        assert {h.outcome for h in full.holds} >= {"done", "failed"}
