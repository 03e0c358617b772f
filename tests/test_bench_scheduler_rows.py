"""`steerflow bench scheduler`'s rows: batch 1 and batch 16, each the median of runs by new interpreters."""

from __future__ import annotations

from steerflow.bench import scheduler


def test_a_row_is_measured_by_another_process():
    result = scheduler.in_new_interpreter(nodes=20, decisions=500)
    assert result["batch"] == 1 and result["placements"] >= 500 and result["placements_per_s"] > 0
    assert result["nodes"] == 20


def test_run_gives_the_batch_1_and_batch_16_rows(monkeypatch):
    seen: list[tuple[int, int]] = []
    real = scheduler.in_new_interpreter

    def spy(nodes: int = 10_000, batch: int = 1, decisions: int = 200_000, timeout_s: float = 900) -> dict:
        result = real(nodes=nodes, batch=batch, decisions=decisions, timeout_s=timeout_s)
        seen.append((batch, result["batch"]))
        return result

    monkeypatch.setattr(scheduler, "in_new_interpreter", spy)
    result = scheduler.run(nodes=20, decisions=400, repeat=2)
    assert seen == [(1, 1), (16, 16)] * 2
    assert result["batch"] == 1 and result["placements_per_s"] > 0 and result["placements_per_s_batch16"] > 0
    assert result["loops_batch16"] < result["loops"]  # 16 ended tasks a pass: fewer passes for the same decisions
    assert set(scheduler.TARGETS) <= set(result)
