"""The mixed-set rows run steerflow under both scheduling policies and the pool on each task list, one after the other
in an order that turns list by list, on executors warmed once, each against its own ideal, and report the spread
over the lists; the placements rows are medians of short runs."""

from __future__ import annotations

import contextlib
import statistics

import pytest

from steerflow.bench import floor, scheduler
from steerflow.bench.floor import list_schedule_makespan, mixed_set, same_policy_makespan


def test_each_list_runs_all_three_arms_in_turning_orders_on_executors_warmed_once(monkeypatch):
    order: list[str] = []
    opened: list[int] = []
    times = {"default": 1.10, "greedy": 1.02, "pool": 1.0}  # seconds per ideal second of each arm

    @contextlib.contextmanager
    def warm_arms(workers):
        opened.append(workers)

        def timer(arm):
            def seconds(tasks):
                order.append(arm)
                shape = [(1 if arm == "pool" else c, d) for _, c, d in tasks]
                return times[arm] * list_schedule_makespan(shape, workers)
            return seconds

        yield {arm: timer(arm) for arm in times}, 64

    monkeypatch.setattr(floor, "_warm_arms", warm_arms)
    monkeypatch.setattr(floor.time, "sleep", lambda s: None)
    rows = floor.mixed_rows(workers=2, lists=7, n=40)
    assert opened == [2]  # the executors are started once for all the lists
    assert [tuple(order[3 * i:3 * i + 3]) for i in range(7)] == [*floor.ARM_ORDERS, floor.ARM_ORDERS[0]]
    assert {orders[0] for orders in floor.ARM_ORDERS} == {orders[2] for orders in floor.ARM_ORDERS} == set(times)
    assert rows["mixed_greedy_efficiency_pct"] == pytest.approx(100 / 1.02)
    assert rows["floor_mixed_greedy_efficiency_pct"] == rows["floor_mixed_efficiency_pct"] == pytest.approx(100)
    assert rows["mixed_greedy_gap_pts"] == pytest.approx(100 - 100 / 1.02)  # the same policy as the pool's
    assert rows["mixed_efficiency_pct"] == pytest.approx(100 / 1.10)
    assert rows["mixed_efficiency_gap_pts"] == pytest.approx(100 - 100 / 1.10)
    assert rows["mixed_policy_cost_pts"] == pytest.approx(100 / 1.02 - 100 / 1.10)
    ideal_costs = []
    for seed in range(7, 14):
        shape = [(c, d) for _, c, d in mixed_set(40, seed=seed)]
        greedy, policy = list_schedule_makespan(shape, 2), same_policy_makespan(shape, 2, 64)
        ideal_costs.append(100 - 100 * greedy / policy)
    assert rows["mixed_policy_cost_ideal_pts"] == pytest.approx(statistics.median(ideal_costs))
    assert rows["mixed_greedy_gap_pts_first_list"] == pytest.approx(100 - 100 / 1.02)
    assert rows["mixed_lists"] == 7
    assert rows["mixed_greedy_gap_pts_by_list"] == [pytest.approx(100 - 100 / 1.02, abs=1e-3)] * 7
    assert rows["mixed_policy_cost_pts_by_list"] == [pytest.approx(100 / 1.02 - 100 / 1.10, abs=1e-3)] * 7
    gap = round(100 - 100 / 1.02, 3)
    assert rows["mixed_greedy_gap_pts_iqr"] == [pytest.approx(gap)] * 2  # no spread when every list reads alike
    assert rows["mixed_greedy_gap_pts_ci90"] == [pytest.approx(gap)] * 2
    assert list(rows)[:3] == ["mixed_greedy_efficiency_pct", "floor_mixed_greedy_efficiency_pct",
                              "mixed_greedy_gap_pts"]  # the row with the target first


def test_the_spread_of_a_median_over_lists():
    values = [0.1, 0.3, -0.2, 0.5, 0.2, 2.5, 0.0, 0.4]
    got = floor.spread(values)
    assert got["iqr"] == [pytest.approx(0.075), pytest.approx(0.425)]
    low, high = got["ci90"]
    assert low <= statistics.median(values) <= high and high - low < 2.7  # one wild list does not widen it to all
    assert floor.spread(values) == got  # seeded: the same values, the same interval
    assert floor.spread([0.3]) == {"iqr": [0.3, 0.3], "ci90": [0.3, 0.3]}


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
