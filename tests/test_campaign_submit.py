"""A submit the runtime rejects leaves nothing behind: no journal row, no key used, no task counted as active."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from steerflow import Allocation, Campaign, Function, stop
from steerflow.errors import TaskSpecError

pytestmark = pytest.mark.usefixtures("no_leftover_processes")


def double(x):
    return 2 * x


def _journal(directory) -> tuple[list[tuple], list[tuple]]:
    with sqlite3.connect(directory / "journal.db") as conn:
        return (conn.execute("SELECT key, name, cores FROM tasks ORDER BY key").fetchall(),
                conn.execute("SELECT key, ok FROM results ORDER BY key").fetchall())


def _rejections() -> list[Function]:
    """Descriptions that validate alone but that this campaign's runtime must refuse at submit."""
    return [Function(double, args=(1,), cores=4),  # larger than the 2-core node
            Function(double, args=(1,), gpus=1),  # the allocation has no GPU
            Function(double, args=(threading.Lock(),))]  # cannot be pickled for the worker


def test_a_rejected_submit_journals_nothing_and_uses_no_key(tmp_path):
    camp = Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=2), progress=False)
    for spec in _rejections():
        with pytest.raises(TaskSpecError):
            camp.submit(spec)
    future = camp.submit(Function(double, args=(21,)))
    assert future.task_id == 1  # the rejected ones used no key
    summary = camp.run(stop=stop.wall("60s"))  # idle, not waiting for tasks that never were
    assert summary["stop_reason"] == "idle: every task has finished"
    assert summary["tasks"] == 1 and summary["states"] == {"done": 1}
    assert future.result() == 42
    tasks, results = _journal(tmp_path / "c")
    assert tasks == [(1, "double", 1)] and results == [(1, 1)]


def test_an_agent_whose_submit_is_rejected_leaves_a_campaign_that_ends(tmp_path):
    camp = Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=2), progress=False)
    errors: list[str] = []

    @camp.on_start
    def start(ctx):
        for spec in _rejections():
            try:
                ctx.submit(spec)
            except TaskSpecError as exc:
                errors.append(exc.field)
        ctx.submit(Function(double, args=(5,)))

    summary = camp.run(stop=stop.wall("60s"))
    assert errors == ["cores", "gpus", "args"]
    assert summary["stop_reason"] == "idle: every task has finished"
    assert summary["tasks"] == 1 and summary["states"] == {"done": 1}
    assert _journal(tmp_path / "c") == ([(1, "double", 1)], [(1, 1)])
