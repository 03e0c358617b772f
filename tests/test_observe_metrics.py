"""Metrics from the journal (steerflow.observe), checked against real campaigns and hand computations."""

from __future__ import annotations

import sqlite3
import time

import pytest

from steerflow import Allocation, Campaign, Function
from steerflow.journal import TIMING
from steerflow.observe import metrics, timeline
from steerflow.observe.timeline import Hold, Timeline, Wait


def fail_once(marker):
    import os

    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("first attempt fails on purpose")
    return "second attempt"


def test_metrics_agree_with_the_journals_per_task_numbers(tmp_path):
    camp = Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=2), progress=False)
    first = camp.submit(Function(time.sleep, args=(0.2,), pool="sim"))
    camp.submit(Function(time.sleep, args=(0.1,), pool="sim", after=[first]))
    camp.submit(Function(time.sleep, args=(0.15,), pool="ana", tags=("x", "y")))
    camp.submit(Function(fail_once, args=(str(tmp_path / "marker"),), pool="ana", retries=1))
    camp.submit(Function(int, args=("nope",), pool="ana"))  # fails for good
    camp.run()
    result = metrics.compute(tmp_path / "c")
    conn = sqlite3.connect(tmp_path / "c" / "journal.db")
    states = dict(conn.execute("SELECT state, count(*) FROM tasks GROUP BY state"))
    rows = {k: (s, e, TIMING.unpack(t)) for k, s, e, t in conn.execute("SELECT key, started, ended, timing FROM results")}
    conn.close()
    assert result["tasks"] == states == {"done": 4, "failed": 1}
    assert result["tasks_by_pool"] == {"sim": {"done": 2}, "ana": {"done": 2, "failed": 1}}
    assert result["attempts"] == {"done": 4, "failed": 2}  # the retried attempt is visible
    table = {row["key"]: row for row in metrics.task_table(timeline.read(tmp_path / "c"))}
    assert table[3]["tags"] == ["x", "y"] and table[3]["pool"] == "ana" and table[3]["cores"] == 1
    assert table[4]["attempts"] == 2 and table[5]["error"].startswith("ValueError")
    for key, (placed, ended, timing) in rows.items():
        row = table[key]
        assert row["placed"] == placed and row["ended"] == ended  # exactly the journal's numbers
        assert row["submitted"] <= row["ready"] <= placed <= timing[1] <= timing[2] <= timing[3] <= timing[4] <= ended
        assert row["where"] and row["where"].startswith("node0[c")
    # the sleeps are the compute part of each attempt: within 0.25 s of the requested time (a loaded machine)
    for key, sleep in ((1, 0.2), (2, 0.1), (3, 0.15)):
        compute = rows[key][2][3] - rows[key][2][2]
        assert sleep <= compute < sleep + 0.25, (key, compute)
    # the dependent task waited on its dependency, then was ready once the first one ended
    assert rows[2][2][0] >= rows[1][1] - 1e-3
    # overhead totals are the sums of the per-task parts
    over = result["overheads"]
    launch = sum(timing[1] - placed for placed, _, timing in rows.values())
    ret = sum(ended - timing[4] for _, ended, timing in rows.values())
    assert over["launch"]["total_s"] == pytest.approx(launch, abs=1e-6)
    assert over["result_return"]["total_s"] == pytest.approx(ret, abs=1e-6)
    assert over["launch"]["tasks"] == 5 and over["launch"]["p50_ms"] <= over["launch"]["p99_ms"]
    for key in ("ttc_s", "utilization_mean_pct", "idle_while_queued_core_s", "overhead_share_pct", "tasks"):
        assert key in result
    assert result["ttc_s"] >= 0.3  # the chain alone sleeps 0.3 s
    snap = metrics.snapshot(tmp_path / "c")
    assert snap["finished"] == 5 and snap["eta_s"] == 0.0 and not snap["live"]


def test_utilisation_of_known_sleeps_matches_a_hand_computation(tmp_path):
    """2 declared cores; four 1-core tasks of 0.5 s and one 2-core task of 0.5 s.

    By hand: 4 x 0.5 + 2 x 0.5 = 3.0 core-seconds of sleep, so at least 1.5 s to completion.
    Tolerances: the compute part of each task (the worker's function start to return) is its sleep
    plus under 0.2 s (a sleep wakes late on a loaded machine); what a task holds is that plus its
    launch, data and result-return overheads (minus what overlapped the task before it on its worker).
    """
    camp = Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=2), progress=False)
    camp.submit(Function(time.sleep, args=(0.01,), pool="warm", cores=2))  # workers warm: launch is not spawn
    camp.run()
    camp = Campaign(tmp_path / "d", allocation=Allocation.declare(nodes=1, cores=2), progress=False)
    for _ in range(4):
        camp.submit(Function(time.sleep, args=(0.5,), pool="small"))
    camp.submit(Function(time.sleep, args=(0.5,), pool="big", cores=2))
    camp.run()
    tl = timeline.read(tmp_path / "d")
    result = metrics.compute(tl)
    util = metrics.utilisation(tl)
    cores = {key: task[5] for key, task in tl.tasks.items()}
    compute = sum(cores[k] * (r[4][3] - r[4][2]) for k, r in tl.results.items())
    assert 3.0 <= compute <= 3.0 + 6 * 0.2
    overhead = sum(cores[k] * (r[4][2] - r[4][1] + r[4][1] - r[2] + r[4][4] - r[4][3] + r[3] - r[4][4])
                   for k, r in tl.results.items())
    # what the tasks held is their compute plus at most their overheads: exactly that, to within 2 ms a task, when
    # each task is dispatched after the one before it ends; less when a task was queued behind the one before on
    # its worker (pipelining), whose hold then starts when the driver hears it started, not at the worker's start
    assert compute - 5 * 2e-3 <= util["core_s"] <= compute + overhead + 5 * 2e-3
    assert result["ttc_s"] >= 1.5
    assert result["utilization_mean_pct"]["cores"] == pytest.approx(100 * util["core_s"] / (2 * result["ttc_s"]))
    hand = 100 * 3.0 / (2 * result["ttc_s"])  # the hand computation over the measured time to completion
    assert hand <= result["utilization_mean_pct"]["cores"] <= hand * (3.0 + 6 * 0.2 + overhead) / 3.0
    by_pool = result["utilization_mean_pct_by_pool"]
    # each pool's share is what its own tasks held, within the same bounds: 2.0 core-s of sleep in "small", 1.0 in
    # "big" (its 2-core worker's start, seconds on a loaded machine, is its launch overhead: a ratio of the two
    # shares, 2 +- 50 %, failed under load)
    span = metrics.driver_seconds(tl)
    for pool, sleep, n in (("small", 2.0, 4), ("big", 1.0, 1)):
        mine = [k for k in tl.results if tl.tasks[k][1] == pool]
        pool_compute = sum(cores[k] * (tl.results[k][4][3] - tl.results[k][4][2]) for k in mine)
        pool_overhead = sum(cores[k] * (r[4][2] - r[4][1] + r[4][1] - r[2] + r[4][4] - r[4][3] + r[3] - r[4][4])
                            for k, r in tl.results.items() if k in mine)
        assert len(mine) == n and sleep <= pool_compute <= sleep + cores[mine[0]] * n * 0.2
        held = by_pool[pool]["cores"] * 2 * span / 100
        assert pool_compute - n * 2e-3 <= held <= pool_compute + pool_overhead + n * 2e-3, (pool, held)
    assert result["utilization_mean_pct"]["gpus"] == 0.0


def test_a_starved_pool_shows_idle_while_queued_with_its_reason(tmp_path):
    """Quota 1 core on 2 cores, four 0.3 s tasks: one core sits idle for ~0.9 s while tasks queue."""
    camp = Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=2), pools={"starved": {"cores": 1}},
                    progress=False)
    for _ in range(4):
        camp.submit(Function(time.sleep, args=(0.3,), pool="starved"))
    camp.run()
    result = metrics.compute(tmp_path / "c")
    quota = result["idle_while_queued_by_pool"]["starved"]["quota"]
    assert 0.6 <= quota <= 0.9 + 1.0  # 3 waits of 0.3 s while 1 core is free (+ launch gaps)
    assert result["idle_while_queued_by_reason"]["quota"] == quota
    assert result["idle_while_queued_core_s"] >= quota
    assert result["utilization_mean_pct"]["cores"] <= 55  # at most half the cores, plus rounding


def _timeline(holds, waits, cores=2, gpus=0, quotas=()):
    tasks = {h.key: ("t", h.pool, "", 0.0, "done", h.cores, h.gpus, 1, h.where) for h in holds}
    return Timeline(directory=None, now=10.0, live=False, nodes=[("n0", cores, gpus)], cores=cores, gpus=gpus,
                    quotas=list(quotas), tasks=tasks, results={}, holds=holds, waits=waits, first=0.0, last=10.0)


def test_idle_reasons_on_a_hand_built_timeline():
    holds = [Hold(1, 1, "a", 0.0, 4.0, "done", "n0[c0]", 1, 0),   # 1 of 2 cores busy 0-4
             Hold(2, 1, "b", 4.0, 6.0, "done", "n0[c0,1]", 2, 0),  # the 2-core task waited for it: blocked_large
             Hold(3, 1, "c", 6.0, 8.0, "done", "n0[c0]", 1, 0)]
    waits = [Wait(2, "b", "queue", 1.0, 4.0, 2, 0),   # 3 s x 1 free core: blocked_large
             Wait(3, "c", "deps", 0.0, 6.0, 1, 0),    # 0-1: 1 core free, dependency (b not queued yet)
             Wait(4, "d", "queue", 8.0, 9.0, 1, 0)]   # 8-9: 2 cores free, 1 wanted: scheduling 1 core-s
    idle = metrics.idle_while_queued(_timeline(holds, waits), series=True)
    assert idle["by_reason"]["blocked_large"] == pytest.approx(3.0)
    assert idle["by_reason"]["dependency"] == pytest.approx(1.0)  # 0-1; 4-6 both cores are busy
    assert idle["by_reason"]["scheduling"] == pytest.approx(1.0)  # 8-9; 6-8: nothing waits
    assert idle["core_s"] == pytest.approx(5.0)
    assert metrics.integral(idle["times"], idle["idle_cores"]) == pytest.approx(5.0)
    util = metrics.utilisation(_timeline(holds, waits))
    assert util["core_s"] == pytest.approx(4 + 4 + 2) and util["mean_cores_pct"] == pytest.approx(50.0)


def test_quota_and_gpu_bound_work_are_told_apart():
    holds = [Hold(1, 1, "gpu", 0.0, 2.0, "done", "n0[c0 g0]", 1, 1)]
    waits = [Wait(2, "gpu", "queue", 0.0, 2.0, 1, 1),  # needs the only GPU: the free core could not run it
             Wait(3, "q", "queue", 0.0, 2.0, 1, 0)]    # pool q at quota 0
    tl = _timeline(holds, waits, cores=3, gpus=1, quotas=[(0.0, "q", 0, None)])
    idle = metrics.idle_while_queued(tl)
    assert idle["by_pool"]["gpu"] == {"needs_other": pytest.approx(2.0)}
    assert idle["by_pool"]["q"] == {"quota": pytest.approx(2.0)}
    assert idle["core_s"] == pytest.approx(2.0)  # needs_other is shown, not counted


def test_a_journal_from_before_the_timing_columns_still_reads(tmp_path):
    db = tmp_path / "journal.db"
    conn = sqlite3.connect(db)
    conn.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
        CREATE TABLE tasks (key INTEGER PRIMARY KEY, name TEXT, kind TEXT, pool TEXT, tags TEXT, priority INTEGER,
            fingerprint TEXT, submitted REAL, state TEXT, nodes TEXT, attempts INTEGER, spec BLOB, cores INTEGER,
            gpus INTEGER);
        CREATE TABLE states (key INTEGER, state TEXT, ts REAL, attempt INTEGER, nodes TEXT);
        CREATE TABLE results (key INTEGER PRIMARY KEY, ok INTEGER, value BLOB, path TEXT, error TEXT, started REAL,
            ended REAL);
        CREATE TABLE steering (seq INTEGER PRIMARY KEY, kind TEXT, key INTEGER, name TEXT, payload BLOB, ts REAL);
        CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, pid INTEGER, started REAL, ended REAL, cores INTEGER,
            gpus INTEGER);
        INSERT INTO runs (pid, started, ended, cores, gpus) VALUES (1, 100, 103, 2, 0);
        INSERT INTO tasks VALUES (1, 'a', 'Function', 'p', '', 0, 'f', 100, 'done', NULL, 1, NULL, 1, 0);
        INSERT INTO states VALUES (1, 'waiting', 100, 0, NULL), (1, 'running', 101, 1, 'node0[c0]'),
                                  (1, 'done', 103, 1, NULL);
        INSERT INTO results VALUES (1, 1, NULL, NULL, NULL, 101, 103);
    """)
    conn.commit()
    conn.close()
    result = metrics.compute(tmp_path)
    assert result["ttc_s"] == pytest.approx(3.0) and result["tasks"] == {"done": 1}
    assert result["utilization_mean_pct"]["cores"] == pytest.approx(100 * 2 / (2 * 3))
    assert result["overheads"]["scheduling"]["total_s"] == pytest.approx(1.0)
    assert result["overheads"]["launch"]["tasks"] == 0  # unknown, not invented


def test_learning_layer_numbers_from_the_journal(tmp_path):
    """Model versions (meta model:NAME:vN), surrogate stats (meta surrogate:NAME) and substitution events."""
    import json as json_mod

    camp = Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=1), progress=False)
    seen = []

    @camp.on_result()
    def learn(result, ctx):
        seen.append(result.key)
        ctx.emit("surrogate:energy", {"value": 1.5, "std": 0.1 * len(seen), "time": 0.0})  # one substitution
        camp.journal.put("meta", f"model:energy:v{len(seen)}", json_mod.dumps(
            {"name": "energy", "version": len(seen), "created": time.time(), "metrics": {"mae": 1.0 / len(seen)}}))
        if len(seen) < 3:
            ctx.submit(Function(abs, args=(-len(seen),), tags=("surrogate:energy",)))

    camp.submit(Function(abs, args=(-1,), tags=("surrogate:energy",)))
    camp.journal.put("meta", "surrogate:energy", json_mod.dumps({"substitution_rate": 0.5, "error_bound": 0.1}))
    camp.journal.put("meta", "effective_performance", json_mod.dumps({"baselines": [{"effective_performance": 3.0}]}))
    camp.run()
    block = metrics.compute(tmp_path / "c")["learning"]
    assert [v["metrics"]["mae"] for v in block["models"]["energy"]] == [1.0, 0.5, 1 / 3]
    assert block["surrogate:energy"]["error_bound"] == 0.1
    assert block["effective_performance"]["baselines"][0]["effective_performance"] == 3.0
    assert block["events"]["surrogate:energy"]["count"] == 3
    assert set(block["events"]["surrogate:energy"]["series"]) == {"value", "std"}  # 'time' is not a curve
    rate = block["substitution_rate"]["energy"]
    assert rate[-1][1] == pytest.approx(3 / 6)  # 3 substitutions, 3 real calls
    titles = [title for title, _ in metrics.learning_series(block)]
    assert "surrogate energy: substitution rate" in titles and "model energy: mae" in titles
    from steerflow.observe.report import build

    build(tmp_path / "c", tmp_path / "r")
    page = (tmp_path / "r" / "report.html").read_text()
    assert 'id="fig-learning"' in page and "surrogate:energy" in page


def runs_long_the_first_time(started):
    import os

    first = not os.path.exists(started)
    open(started, "a").close()
    deadline = time.monotonic() + (60 if first else 0)
    while time.monotonic() < deadline:  # the first attempt waits to be preempted (bounded)
        time.sleep(0.01)
    return "second attempt"


def test_a_preempted_attempt_is_in_the_timeline(tmp_path):
    started = tmp_path / "started"
    camp = Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=1), progress=False)
    job = camp.submit(Function(runs_long_the_first_time, args=(str(started),), pool="sim"))
    asked = []

    @camp.on_timer(0.05)
    def preempt_once_started(ctx):
        if started.exists() and not asked:
            asked.append(True)
            ctx.preempt(job, grace=5)

    camp.run()
    assert job.result() == "second attempt"
    tl = timeline.read(tmp_path / "c")
    assert [(h.attempt, h.outcome) for h in sorted(tl.holds, key=lambda h: h.start)] == [(1, "preempted"), (2, "done")]
    assert metrics.compute(tl)["attempts"] == {"done": 1, "preempted": 1}


def test_eta_uses_the_task_budget_of_the_stop_condition(tmp_path):
    import steerflow as sf

    camp = Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=2), progress=False)
    for i in range(4):
        camp.submit(Function(abs, args=(-i,)))
    camp.run(stop=sf.stop.tasks(10))  # ends idle after 4 of a budget of 10
    tl = timeline.read(tmp_path / "c")
    tl.live = True  # as a view would see it while a driver still ran
    snap = metrics.snapshot_from(tl)
    assert snap["eta_basis"] == "task budget of 10" and snap["finished"] == 4
    assert snap["eta_s"] == pytest.approx(6 / snap["throughput_tasks_per_s"])
    # with no driver running nothing advances: no ETA, and the basis says why
    snap = metrics.snapshot(tmp_path / "c")
    assert snap["eta_s"] is None and snap["eta_basis"] == "no driver running" and not snap["live"]
