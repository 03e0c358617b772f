"""Each benchmark behind `steerflow bench` runs end to end at a tiny size (smoke only: no timing is asserted)."""

from __future__ import annotations

import math

import pytest

from steerflow.bench import floor, runtime, scheduler, shapes, steering

pytestmark = [pytest.mark.usefixtures("no_leftover_processes"), pytest.mark.slow]


def _finite(result: dict) -> None:
    assert result and all(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 for v in result.values()), result


def test_bench_runtime_parts_at_tiny_size():
    durations = [0.01, 0.02, 0.01, 0.03]
    ours = runtime.measure_steerflow(workers=2, n_tasks=30, n_rtt=5, durations=durations)
    _finite(ours)
    assert 0 < ours["hetero_efficiency_pct"] <= 100 and ours["cancel_ms"] > 0
    _finite(runtime.measure_floor(workers=2, n_tasks=30, n_rtt=5, durations=durations))
    _finite(floor.main_rtt_p50_ms(workers=2, n=5))
    _finite(floor.campaign_throughput(n=20, workers=2))
    _finite(floor.mixed_efficiency(workers=2, tasks=floor.mixed_set(n=6, median=0.01)))
    rows = floor.mixed_rows(workers=2, lists=2, n=6, median=0.01)
    assert all(math.isfinite(v) for v in rows.values() if not isinstance(v, list)), rows  # (a gap may be negative)
    assert len(rows["mixed_greedy_gap_pts_by_list"]) == 2
    assert rows["mixed_lists"] == 2 and "mixed_efficiency_gap_pts_first_list" in rows
    assert 0 < rows["mixed_greedy_efficiency_pct"] <= 110 and "mixed_greedy_gap_pts" in rows
    _finite(runtime.shape_rows(shapes.measure(n=4, sizes=(0,), workers=2, repeat=1, executors=("steerflow", "pool"))))


def test_bench_steering_parts_at_tiny_size():
    _finite(steering.steer_rtt(links=30))  # (its first 20 are warm-up)
    _finite(steering.journal_cost(n=50))
    _finite(steering.data_roundtrip(size_mb=1, repeats=2))
    _finite(steering.resume_time(n=50))


def test_bench_scheduler_at_tiny_size():
    result = scheduler.placements_per_second(nodes=20, decisions=500)
    _finite(result)
    assert result["placements_per_s"] > 0
