"""Finished tasks are not kept for the life of the driver once nobody holds their futures: the journal is the
record. (The million-task numbers are in `steerflow bench scale`; these check the mechanism.)"""

from __future__ import annotations

import gc
import weakref
from concurrent.futures import wait

from steerflow import Allocation, Campaign, TaskState

from .conftest import wait_until


def noop():
    return None


def test_runtime_forgets_finished_tasks_whose_futures_were_dropped(runtime):
    futures = [runtime.submit(noop) for _ in range(50)]
    wait(futures, timeout=60)
    refs = [weakref.ref(runtime.task(f.task_id)) for f in futures]  # reachable while the futures are held
    assert all(runtime.task(f.task_id).state is TaskState.DONE for f in futures)
    assert len(runtime.tasks()) >= 50
    del futures
    runtime.submit(noop).result(timeout=60)  # the loop has moved on from the last of them
    assert wait_until(lambda: gc.collect() >= 0 and all(r() is None for r in refs), timeout=10)


def test_campaign_keeps_counts_not_finished_tasks(tmp_path):
    camp = Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=2), progress=False)
    refs = []

    @camp.on_result()
    def react(result, ctx):
        refs.append(weakref.ref(camp.runtime.task(result.key)))
        if result.key < 30:
            ctx.submit(noop)

    camp.submit(noop)
    summary = camp.run()
    assert summary["tasks"] == 30 and summary["states"] == {"done": 30} and summary["results_seen"] == 30
    assert camp.futures() == {}  # nobody holds them
    assert len(refs) == 30
    assert wait_until(lambda: gc.collect() >= 0 and all(r() is None for r in refs), timeout=10)


def test_a_held_future_still_has_its_record(tmp_path):
    camp = Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=2), progress=False)
    kept = camp.submit(noop)
    camp.run()
    assert camp.futures() == {kept.task_id: kept}
    assert camp.runtime.task(kept.task_id).attempts[-1].outcome == "done"
    assert kept.state is TaskState.DONE
