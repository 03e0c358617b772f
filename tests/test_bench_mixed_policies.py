"""The mixed-set rows run steerflow under both scheduling policies on each task list (which goes first alternates),
each against its own ideal, and the pool last; the placements rows are medians of short runs."""

from __future__ import annotations

import statistics

import pytest

from steerflow.bench import floor, scheduler
from steerflow.bench.floor import list_schedule_makespan, mixed_set, same_policy_makespan


def test_each_list_runs_both_policies_alternating_and_the_pool_last(monkeypatch):
    order: list[tuple[str, object]] = []
    times = {64: 1.10, None: 1.02, "pool": 1.0}  # seconds: default policy, greedy policy, the pool

    def steerflow_seconds(workers, warm, tasks, **options):
        max_bypass = options.get("max_bypass", 64)
        order.append(("steerflow", max_bypass))
        assert warm == floor.warm_up_set(workers)  # the same warm-up for both
        return times[max_bypass] * list_schedule_makespan([(c, d) for _, c, d in tasks], workers), max_bypass

    def pool_seconds(workers, warm, tasks):
        order.append(("pool", None))
        return times["pool"] * list_schedule_makespan([(1, d) for _, _, d in tasks], workers)

    monkeypatch.setattr(floor, "_steerflow_seconds", steerflow_seconds)
    monkeypatch.setattr(floor, "_pool_seconds", pool_seconds)
    rows = floor.mixed_rows(workers=2, lists=4, n=40)
    arms = [("steerflow", 64), ("steerflow", None), ("pool", None)]
    swapped = [("steerflow", None), ("steerflow", 64), ("pool", None)]
    assert order == arms + swapped + arms + swapped
    assert rows["mixed_greedy_efficiency_pct"] == pytest.approx(100 / 1.02)
    assert rows["floor_mixed_greedy_efficiency_pct"] == rows["floor_mixed_efficiency_pct"] == pytest.approx(100)
    assert rows["mixed_greedy_gap_pts"] == pytest.approx(100 - 100 / 1.02)  # the same policy as the pool's
    assert rows["mixed_efficiency_pct"] == pytest.approx(100 / 1.10)
    assert rows["mixed_efficiency_gap_pts"] == pytest.approx(100 - 100 / 1.10)
    assert rows["mixed_policy_cost_pts"] == pytest.approx(100 / 1.02 - 100 / 1.10)
    ideal_costs = []
    for seed in range(7, 11):
        shape = [(c, d) for _, c, d in mixed_set(40, seed=seed)]
        greedy, policy = list_schedule_makespan(shape, 2), same_policy_makespan(shape, 2, 64)
        ideal_costs.append(100 - 100 * greedy / policy)
    assert rows["mixed_policy_cost_ideal_pts"] == pytest.approx(statistics.median(ideal_costs))
    assert rows["mixed_greedy_gap_pts_first_list"] == pytest.approx(100 - 100 / 1.02)
    assert rows["mixed_lists"] == 4
    assert rows["mixed_greedy_gap_pts_by_list"] == [pytest.approx(100 - 100 / 1.02, abs=1e-3)] * 4
    assert rows["mixed_policy_cost_pts_by_list"] == [pytest.approx(100 / 1.02 - 100 / 1.10, abs=1e-3)] * 4
    assert list(rows)[:3] == ["mixed_greedy_efficiency_pct", "floor_mixed_greedy_efficiency_pct",
                              "mixed_greedy_gap_pts"]  # the row with the target first


def test_a_placements_row_is_the_median_of_its_runs(monkeypatch):
    rates = iter([40_000, 300_000, 150_000, 310_000, 160_000, 320_000, 140_000, 330_000, 155_000, 290_000])
    seen: list[tuple[int, int]] = []

    def fake(nodes=10_000, batch=1, decisions=200_000, timeout_s=900):
        rate = next(rates)
        seen.append((batch, decisions))
        return {"batch": batch, "placements_per_s": rate, "placements_per_cpu_s": rate + 1,
                "us_per_placement": 1e6 / rate, "gc_share": 0.05, "loops": decisions // batch,
                "max_waiting": rate}

    monkeypatch.setattr(scheduler, "in_new_interpreter", fake)
    result = scheduler.run(nodes=20, decisions=1000, repeat=5)
    assert seen == [(1, 1000), (16, 1000)] * 5  # batch 1 and batch 16 taking turns
    assert result["placements_per_s"] == 150_000  # one slow run (40,000) does not decide the row
    assert result["placements_per_cpu_s"] == 150_001
    assert result["max_waiting"] == 150_000  # the context of the median run
    assert result["placements_per_s_runs"] == [40_000, 150_000, 160_000, 140_000, 155_000]
    assert result["placements_per_s_batch16"] == 310_000 and result["repeat"] == 5
    with pytest.raises(ValueError, match="at least 1"):
        scheduler.run(nodes=20, repeat=0)
