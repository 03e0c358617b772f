"""Learning curves from the journal: a surrogate's audited error against its bound over time.

A small real surrogate campaign (a noisy function, retrained as tasks) journals its statistics as
an append-only series; the report and the dashboard draw the error against the bound from it.
"""

from __future__ import annotations

import math
import sqlite3
import time

import numpy as np
import pytest

import steerflow as sf
from steerflow.learn import surrogates
from steerflow.observe import dashboard, figures, metrics, report, timeline

pytest.importorskip("sklearn")

BOUND = 0.08


def noisy(a: float, b: float) -> float:
    time.sleep(0.003)
    rng = np.random.default_rng(int(a * 1e6) ^ int(b * 1e6))
    return float(np.sin(3 * a) + 0.5 * np.cos(2 * b) + rng.normal(0, 0.02))


def test_a_surrogate_campaign_journals_its_error_against_the_bound_over_time(tmp_path, monkeypatch):
    monkeypatch.setattr(surrogates, "SERIES_MIN_GAP_S", 0.05)  # a few seconds of run: rows often enough to see
    camp = sf.Campaign(tmp_path / "c", allocation=sf.Allocation.declare(nodes=1, cores=2), progress=False,
                       pools={"simulate": {"cores": 1}, "train": {"cores": 1}})
    model = sf.learn.Surrogate(noisy, error_bound=BOUND, audit_fraction=0.3, min_points=15, retrain_every=15,
                               name="noisy", seed=3).attach(camp, train_pool="train", pool="simulate")
    rng = np.random.default_rng(0)
    asked = [0]
    deadline = time.monotonic() + 240  # bounded however loaded the machine is

    def ask(ctx) -> bool:
        """One call; True when it became a task (a real call)."""
        asked[0] += 1
        return not model.submit(ctx, *map(float, rng.random(2))).substituted

    def enough() -> bool:
        return (model.stats.audits >= 8 and model.stats.surrogate_calls >= 100) or asked[0] >= 5000 or \
            time.monotonic() > deadline

    @camp.on_start
    def begin(ctx):
        ask(ctx)
        ask(ctx)

    @camp.on_result(pool="simulate")
    def more(result, ctx):
        # one new real call per result (model answers come at once), until the model has been audited enough;
        # while the first model trains (a task: slow on a loaded machine), wait for it rather than call on
        if model.model is None and model.stats.points >= 15:
            return
        while not enough():
            if ask(ctx):
                break

    @camp.on_result(pool="train")
    def trained(result, ctx):
        if not enough():  # calls on (the model may be swapped in just after this handler: one call is enough)
            ask(ctx)

    camp.run()
    st = model.stats
    assert st.audits >= 3 and st.surrogate_calls > 0, st

    tl = timeline.read(tmp_path / "c")
    rows = tl.series["surrogate:noisy"]
    assert len(rows) >= 5  # a history, not only the latest value
    times = [ts for ts, _ in rows]
    calls = [v[0] for _, v in rows]
    assert times == sorted(times) and calls == sorted(calls) and len(set(calls)) == len(calls)
    # the last row is the run's final statistics, exactly
    last = dict(zip(surrogates.SERIES_FIELDS, rows[-1][1]))
    assert last["calls"] == st.calls and last["audits"] == st.audits and last["bound"] == BOUND
    assert last["audit_error"] == pytest.approx(st.mean_audit_error)
    assert last["substitution_rate"] == pytest.approx(st.substitution_rate)
    # every row is small: 7 float64s
    conn = sqlite3.connect(tmp_path / "c" / "journal.db")
    sizes = {n for (n,) in conn.execute("SELECT length(value) FROM series")}
    conn.close()
    assert sizes == {8 * len(surrogates.SERIES_FIELDS)}

    block = metrics.compute(tl)["learning"]
    entry = block["series"]["surrogate:noisy"]
    assert entry["calls"][-1] == st.calls and entry["bound"] == [BOUND] * len(entry["t"])
    assert entry["t"] == sorted(entry["t"]) and entry["t"][0] >= 0
    audited = [e for e in entry["audit_error"] if e is not None]
    assert audited and audited[-1] == pytest.approx(st.mean_audit_error)
    panels = dict(metrics.learning_series(block))
    curve = panels["surrogate:noisy: error against its bound"]
    assert set(curve) == {"audited error (mean)", "recent error", "error bound"}
    assert "surrogate:noisy: substitution rate" in panels
    assert "surrogate noisy: substitution rate" not in panels  # the journaled rate replaces the one from events

    report.build(tmp_path / "c", tmp_path / "r")
    page = (tmp_path / "r" / "report.html").read_text()
    assert 'id="fig-learning"' in page and "audited error over the bound" in page
    data = dashboard.view(tl)  # the dashboard draws the same figure and table
    assert "learning" in figures.all_figures(tl, data["metrics"])
    assert "audited error over the bound" in data["html"]["tables"]


def test_the_history_stays_small_for_long_runs():
    """Whatever the call rate, rows thin out with the run's age: a day keeps ~3,000, a week ~4,000."""
    for days, step in ((1, 0.1), (7, 0.5)):
        first = last = None
        rows = 0
        now = 0.0
        end = days * 86400.0
        while now < end:
            if surrogates.series_due(now, first, last):
                first = now if first is None else first
                last = now
                rows += 1
            now += step
        expected = surrogates.SERIES_POINTS * (1 + math.log(end / (surrogates.SERIES_POINTS * surrogates.SERIES_MIN_GAP_S)))
        assert rows <= expected * 1.05 and rows <= 4500, (days, rows)
        assert rows >= 500  # still a curve
