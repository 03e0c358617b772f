"""The campaign row of `steerflow bench runtime` measures what the pool's floor measures: warm workers to the last
result in hand; the campaign's close is reported apart (a fixed cost per campaign, not throughput)."""

from __future__ import annotations

import steerflow as sf
from steerflow.bench import floor

CLOSE_S = 1.0


def test_the_close_of_a_campaign_is_not_counted_as_throughput():
    def make(directory):
        camp = sf.Campaign(directory, allocation=sf.Allocation.declare(nodes=1, cores=2), progress=False)

        @camp.on_end
        def slow_close(ctx):  # a close far longer than 20 no-ops take
            import time

            time.sleep(CLOSE_S)

        return camp

    timings: dict[str, float] = {}
    rate = floor.campaign_noop_rate(make, 20, timings=timings)
    assert timings["close_s"] >= CLOSE_S
    assert rate > 20 / CLOSE_S  # with the close counted, 20 tasks would take more than CLOSE_S
