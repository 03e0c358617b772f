"""Trace's slot count from a journal's start/end times: hand-over overlaps of pipelined tasks do not add slots."""

from __future__ import annotations

from steerflow.learn.performance import Evaluation, _concurrency


def _two_lanes(overlap: float) -> list[Evaluation]:
    """Two lanes of 1-second simulations; each next one in a lane is recorded as starting ``overlap`` s early."""
    out = []
    for lane in range(2):
        for k in range(100):
            out.append(Evaluation(candidate=lane * 1000 + k, value=0.0, started=k - (overlap if k else 0.0),
                                  ended=k + 1.0))
    return out


def test_hand_over_overlaps_do_not_double_the_slots():
    assert _concurrency(_two_lanes(0.0)) == 2
    assert _concurrency(_two_lanes(0.003)) == 2  # a few ms of overlap at every hand-over: still two slots


def test_a_third_lane_that_really_runs_counts():
    third = [Evaluation(candidate=5000 + k, value=0.0, started=float(k), ended=k + 1.0) for k in range(20)]
    assert _concurrency(_two_lanes(0.0) + third) == 3
    assert _concurrency([]) == 0
