"""`steerflow bench scheduler`: the batched steady state (several tasks end between two passes)."""

from __future__ import annotations

import pytest

from steerflow.bench import scheduler


def test_batched_steady_state_makes_real_placements_on_a_full_machine():
    result = scheduler.placements_per_second(nodes=20, decisions=2_000, batch=8)
    assert result["batch"] == 8 and result["placements"] >= 2_000
    assert result["loops"] <= result["placements"] // 4  # one pass per 8 ended tasks, not one per task
    assert result["core_utilisation_at_end"] > 0.9 and result["running_at_end"] > 0


def test_batch_below_one_is_refused():
    with pytest.raises(ValueError, match="batch=0"):
        scheduler.placements_per_second(nodes=2, decisions=10, batch=0)
