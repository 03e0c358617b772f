"""`Campaign.futures()`: undelivered tasks, and delivered ones someone holds, without a weak entry per delivery."""

from __future__ import annotations

import gc

import steerflow as sf

ALLOC = sf.Allocation.declare(nodes=1, cores=2)


def twice(x):
    return 2 * x


def test_futures_while_results_stream_and_after(tmp_path):
    camp = sf.Campaign(tmp_path / "c", allocation=ALLOC, progress=False)
    kept = [camp.submit(twice, i) for i in range(0, 60, 3)]  # held by the script
    for i in range(60):
        if i % 3:
            camp.submit(twice, i)
    sizes = []

    @camp.on_result()
    def look(result, ctx):
        futures = camp.futures()  # read while the loop thread adds finished records
        assert result.key not in futures or futures[result.key].done()
        sizes.append(len(futures))

    camp.run()
    gc.collect()
    assert camp.futures() == {f.task_id: f for f in kept}
    assert len(sizes) == 60


def test_a_held_future_from_the_journal_stays_listed_after_its_delivery(tmp_path):
    first = sf.Campaign(tmp_path / "c", allocation=ALLOC, progress=False)
    for i in range(4):
        first.submit(twice, i)
    first.run()
    camp = sf.Campaign(tmp_path / "c", allocation=ALLOC, progress=False, resume=True)
    kept = camp.submit(twice, 0)  # resolved from the journal
    for i in range(1, 4):
        camp.submit(twice, i)
    seen = []
    camp.on_result()(lambda result, ctx: seen.append(result.key))
    camp.run()
    gc.collect()
    assert sorted(seen) == [1, 2, 3, 4] and kept.result() == 0
    assert camp.futures() == {1: kept}
