"""The surrogate on an analytic function with noise: the error bound holds, substitution grows, training never blocks."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import steerflow as sf
from steerflow.learn import Controller, Forest, Surrogate, surrogate

pytest.importorskip("sklearn")


def truth(a: float, b: float) -> float:
    return float(np.sin(3 * a) + 0.5 * np.cos(2 * b))


class Noisy:
    """The expensive function: the truth plus noise, counting its calls."""

    def __init__(self, sd: float = 0.02, seed: int = 1) -> None:
        self.calls = 0
        self.rng = np.random.default_rng(seed)
        self.sd = sd

    def __call__(self, a: float, b: float) -> float:
        self.calls += 1
        return truth(a, b) + float(self.rng.normal(0, self.sd))


def drive(s: Surrogate, f: Noisy, n: int, seed: int = 0):
    """n calls at random points; for each substituted answer, its error against a held-out real evaluation."""
    rng = np.random.default_rng(seed)
    check = Noisy(f.sd, seed=99)  # held-out: the real function, called by the test, never seen by the model
    substituted, errors = [], []
    for i in range(n):
        a, b = rng.random(2)
        before = f.calls
        value = s(a, b)
        sub = f.calls == before
        substituted.append(sub)
        if sub:
            errors.append(abs(value - check(a, b)))
        if i % 100 == 99:
            s.wait_trained()  # keep the test deterministic in how often models change (callers never need this)
    return np.array(substituted), np.array(errors)


@pytest.mark.parametrize("bound", [0.05, pytest.param(0.1, marks=pytest.mark.slow)])
def test_error_bound_holds_on_held_out_checks_and_substitution_rises(bound):
    f = Noisy()
    s = Surrogate(f, error_bound=bound, min_points=20, retrain_every=10, seed=0, model=Forest(n_estimators=25))
    substituted, errors = drive(s, f, 600)
    first, last = substituted[:200].mean(), substituted[-200:].mean()
    print(f"bound {bound}: substitution {first:.2f} (calls 1-200) -> {last:.2f} (401-600); held-out error of "
          f"{len(errors)} substituted answers {errors.mean():.4f}; audits {s.stats.audits}, "
          f"mean audit error {s.stats.mean_audit_error:.4f}")
    assert last > first and last > 0.5, (first, last)
    assert len(errors) > 200 and errors.mean() <= bound, errors.mean()
    st = s.stats
    assert st.audits > 10 and st.mean_audit_error <= bound
    assert st.calls == 600 and st.real_calls == f.calls and st.surrogate_calls == int(substituted.sum())
    # this function costs microseconds: the model's inference costs more, and the stats say so
    assert st.time_saved_s == pytest.approx(st.surrogate_calls * st.mean_real_s - st.surrogate_s) and st.time_saved_s < 0
    assert st.retrains >= 2 and st.threshold is not None and st.threshold >= 0


def test_no_substitution_before_min_points_and_bad_inputs_fall_back():
    f = Noisy(sd=0.0)
    s = Surrogate(lambda *xs: f(xs[0], xs[1]), error_bound=0.5, min_points=30, retrain_every=10, domain_points=500,
                  featurize=lambda *xs: list(xs), model=Forest(n_estimators=20))
    rng = np.random.default_rng(3)
    for _ in range(29):
        s(*rng.random(2))
    assert s.stats.surrogate_calls == 0 and s.stats.real_calls == 29
    for _ in range(120):
        s(*rng.random(2))
        s.wait_trained()
    calls, before = f.calls, dict(s.stats.fallbacks)
    assert s.stats.surrogate_calls > 0  # the model does answer ordinary inputs by now
    s(float("nan"), 0.5)  # NaN features
    s(0.2, 0.3, 0.4)      # a wrong number of features
    s(5.0, 0.5)           # far outside the data while data is thin (< domain_points)
    assert f.calls == calls + 3  # the real function answered each of them
    after = {k: v - before.get(k, 0) for k, v in s.stats.fallbacks.items()}
    assert after == {"nan": 1, "shape": 1, "domain": 1}
    assert s.predict(float("nan"), 0.0) is None


class SlowForest(Forest):
    """A forest whose fit waits for the test's signal: proves callers never wait for training."""

    release = threading.Event()
    started = threading.Event()

    def fit(self, x, y):
        SlowForest.started.set()
        assert SlowForest.release.wait(60)
        return super().fit(x, y)


def test_retraining_does_not_block_callers():
    f = Noisy()
    s = Surrogate(f, error_bound=0.1, min_points=10, retrain_every=5, model=SlowForest(n_estimators=10))
    rng = np.random.default_rng(0)
    for _ in range(10):
        s(*rng.random(2))
    assert SlowForest.started.wait(30)  # the first fit is running (and blocked)
    t0 = time.perf_counter()
    for _ in range(50):
        s(*rng.random(2))  # would hang until the 60 s wait ran out if a call waited for training
    assert time.perf_counter() - t0 < 30
    assert s.model is None and s.stats.real_calls == 60
    SlowForest.release.set()
    assert s.wait_trained(60) and s.model is not None and s.stats.retrains >= 1


def test_controller_follows_proxima():
    c = Controller(bound=0.1, window=4, min_pairs=2, aim=1.0)
    c.observe(0.2, 0.1)
    assert c.threshold is None  # not enough pairs yet
    c.observe(0.2, 0.1)  # alpha = mean(e/u) = 0.5: initial threshold = bound / alpha / 2
    assert c.alpha == pytest.approx(0.5) and c.threshold == pytest.approx(0.1)
    c.observe(0.2, 0.04)  # alpha = 0.4, recent error 0.08 < bound: threshold rises by (0.1 - 0.08) / 0.4
    assert c.alpha == pytest.approx(0.4) and c.threshold == pytest.approx(0.15)
    c.observe(0.2, 0.5)  # alpha = 0.925, recent error 0.185 > bound: it drops by (0.185 - 0.1) / 0.925
    assert c.threshold == pytest.approx(0.15 - 0.085 / 0.925)
    assert Controller(bound=0.1).aim == 0.8  # by default it aims under the bound
    for _ in range(8):
        c.observe(0.2, 2.0)
    assert c.threshold == 0.0 and not c.confident(0.01)
    with pytest.raises(ValueError, match="error_bound"):
        Controller(0)


@surrogate(error_bound=0.2, min_points=8, retrain_every=4, seed=1, model=Forest(n_estimators=20))
def slow_square(x: float) -> float:
    time.sleep(0.005)
    return x * x


def test_as_campaign_tasks_confident_answers_resolve_at_once(tmp_path):
    camp = sf.Campaign(tmp_path / "c", allocation=sf.Allocation.declare(nodes=1, cores=2), progress=False,
                       pools={"simulate": {"cores": 1}, "train": {"cores": 1}})
    slow_square.attach(camp, train_pool="train", pool="simulate")
    answers = {"now": 0, "task": 0}
    rng = np.random.default_rng(0)

    def ask(ctx, n):
        for _ in range(n):
            fut = slow_square.submit(ctx, float(rng.random()))
            answers["now" if fut.substituted else "task"] += 1
            if fut.substituted:
                assert fut.done()

    @camp.on_start
    def begin(ctx):
        ask(ctx, 2)

    @camp.on_result(pool="simulate")
    def more(result, ctx):
        # one new task per result (model answers come at once) until the model has answered 30 times
        while slow_square.stats.surrogate_calls < 30 and answers["now"] + answers["task"] < 3000:
            before = answers["task"]
            ask(ctx, 1)
            if answers["task"] > before:
                break

    camp.run()
    st = slow_square.stats
    assert answers["task"] == st.real_calls and answers["now"] == st.surrogate_calls > 0
    assert st.retrains >= 1 and st.model_version >= 1
    assert sf.learn.load(tmp_path / "c", "slow_square").predict(np.array([[0.5]]))[0][0] == pytest.approx(0.25, abs=0.1)
    import json
    import sqlite3

    conn = sqlite3.connect(tmp_path / "c" / "journal.db")
    meta = dict(conn.execute("SELECT key, value FROM meta WHERE key LIKE 'surrogate:%'"))
    pools = {p for (p,) in conn.execute("SELECT pool FROM tasks")}
    events = conn.execute("SELECT COUNT(*) FROM steering WHERE kind='event' AND name='surrogate:slow_square'").fetchone()
    conn.close()
    journaled = json.loads(meta["surrogate:slow_square"])
    assert journaled["surrogate_calls"] == st.surrogate_calls and journaled["error_bound"] == 0.2
    assert pools == {"simulate", "train"} and events[0] == st.surrogate_calls


@pytest.mark.slow
def test_the_controller_refuses_where_the_model_is_poor():
    """A rough region (a > 0.6) the forest cannot follow: substitution stays lower there, the error near the bound."""
    rough = lambda a, b: truth(a, b) + (0.4 * np.sin(60 * a) if a > 0.6 else 0.0)  # noqa: E731

    class Rough(Noisy):
        def __call__(self, a, b):
            self.calls += 1
            return rough(a, b) + float(self.rng.normal(0, self.sd))

    f = Rough()
    s = Surrogate(f, error_bound=0.05, min_points=20, retrain_every=10, seed=0, model=Forest(n_estimators=25))
    rng = np.random.default_rng(0)
    check = Rough(seed=99)
    by_region: dict[bool, list[bool]] = {True: [], False: []}
    errors = []
    for i in range(600):
        a, b = rng.random(2)
        before = f.calls
        value = s(a, b)
        substituted = f.calls == before
        if i >= 300:
            by_region[a > 0.6].append(substituted)
        if substituted:
            errors.append(abs(value - check(a, b)))
        if i % 10 == 9:
            s.wait_trained()  # each retrain is in place before the next calls: the same models whatever the load
    smooth_rate, rough_rate = np.mean(by_region[False]), np.mean(by_region[True])
    assert rough_rate < smooth_rate, (rough_rate, smooth_rate)
    # under the bound (measured 0.028), not at the 0.13 a broken controller gives (0.068 once in CI when retrains lagged behind the
    # calls under load; now each retrain is awaited, so the models and this number do not depend on the load)
    assert np.mean(errors) < 1.3 * 0.05, np.mean(errors)
