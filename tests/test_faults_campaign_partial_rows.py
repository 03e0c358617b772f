"""A task streaming very many small partial results (a progress counter) keeps the journal bounded.

Before: the 4 MiB a task bounded only the partials' payloads; each partial's row was journaled whatever the bound,
~75 bytes each, so 200,000 progress values made a 15 MB journal (a simulation streaming at 1 kHz for an hour: ~270 MB).
Now each row counts against the bound, and past it not even the row is journaled. The agents get every one live; a
resume replays the first ones, in order.
"""

from __future__ import annotations

import steerflow as sf


def counter(n):
    from steerflow import partial

    for i in range(n):
        partial.emit(i)
    return n


def test_many_small_partials_keep_the_journal_bounded_and_replay_the_first(tmp_path, capfd):
    directory = tmp_path / "c"

    def build(resume):
        camp = sf.Campaign(directory, allocation=sf.Allocation.declare(nodes=1, cores=1), progress=False,
                           resume=resume)
        seen = []
        camp.on_partial()(lambda p, ctx: seen.append((p.index, p.value)))
        camp.submit(sf.Function(counter, args=(150_000,)))
        return camp, seen

    camp, live = build(False)
    camp.run()
    camp.close()
    assert live == [(i, i) for i in range(150_000)]  # the live agents get every one, in order
    size = sum(p.stat().st_size for p in directory.glob("journal.db*"))
    assert size < 6 * 2**20, size  # was 11 MB
    assert "MiB a task" in capfd.readouterr().err
    camp, replayed = build(True)
    camp.run()
    camp.close()
    assert 10_000 < len(replayed) < 150_000 and replayed == live[:len(replayed)]
