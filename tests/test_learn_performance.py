"""Effective performance: goals, traces, the random/heuristic/brute-force baselines, stated honestly."""

from __future__ import annotations

import pytest

from steerflow.learn import (BruteForce, Evaluation, Goal, Heuristic, Measured, RandomOrder, Trace,
                             effective_performance, surrogate_speedup)


def test_goal_top_and_random_order_expectation():
    values = {i: float(i) for i in range(100)}
    goal = Goal.top(values, count=10, needed=5, goal="min")
    assert goal.hits == frozenset(range(10)) and "5 of the 10 lowest of 100" in goal.description
    assert RandomOrder().simulations(goal, 100) == pytest.approx(5 * 101 / 11)
    assert BruteForce().simulations(goal, 100) == 100
    with pytest.raises(ValueError, match="needed"):
        Goal(frozenset({1}), 2)


def test_report_against_random_and_heuristic_says_how_and_never_claims_a_loss_as_a_gain():
    values = {i: float(i) for i in range(100)}
    goal = Goal.top(values, count=10, needed=5)
    # the run simulated candidates 50, 0, 1, 60, 2, 3, 4 (one second each, one slot)
    order = [50, 0, 1, 60, 2, 3, 4]
    trace = Trace([Evaluation(c, values[c], float(k), float(k + 1)) for k, c in enumerate(order)], start=0.0, slots=1)
    assert trace.solved(goal) == (7, 7.0)
    perfect = Heuristic("index", scores={i: float(i) for i in range(100)})   # ranks the hits first: 5 simulations
    reverse = Heuristic("minus index", scores={i: -float(i) for i in range(100)})
    report = effective_performance(trace, goal, 100, [RandomOrder(), perfect, reverse])
    rows = {r["baseline"]: r for r in report.rows}
    assert rows["random order"]["simulations"] == pytest.approx(5 * 101 / 11)
    assert rows["random order"]["effective_performance"] == pytest.approx(5 * 101 / 11 / 7)
    assert rows["index"]["simulations"] == 5 and rows["index"]["effective_performance"] < 1
    assert rows["minus index"]["simulations"] == 95  # hits 9..5 come at positions 91..95
    text = report.text()
    assert "NOT faster" in text and "estimated from measured task costs" in text and "needs no label" in text


def test_unsolved_run_is_reported_as_such():
    values = {i: float(i) for i in range(20)}
    goal = Goal.top(values, count=2, needed=2)
    trace = Trace([Evaluation(10, 10.0, 0.0, 1.0)], start=0.0)
    report = effective_performance(trace, goal, 20, [RandomOrder()])
    assert report.run_simulations is None and "did NOT reach it" in report.text()


def test_measured_baseline_uses_its_own_clock():
    values = {i: float(i) for i in range(10)}
    goal = Goal.top(values, count=1, needed=1)
    ours = Trace([Evaluation(0, 0.0, 0.0, 2.0)], start=0.0)
    theirs = Trace([Evaluation(5, 5.0, 0.0, 1.0), Evaluation(0, 0.0, 1.0, 8.0)], start=0.0)
    row = effective_performance(ours, goal, 10, [Measured("plain screen", trace=theirs)]).rows[0]
    assert row["simulations"] == 2 and row["seconds"] == 8.0 and row["effective_performance"] == 4.0


def test_surrogate_speedup_from_stats():
    out = surrogate_speedup({"real_calls": 10, "surrogate_calls": 30, "mean_real_s": 1.0, "surrogate_s": 0.4})
    assert out["plain_s"] == 40 and out["speedup"] == pytest.approx(40 / 10.4)
