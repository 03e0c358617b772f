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
    with Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=2), progress=False) as camp:
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


def _slots(spec: Function) -> dict:
    return {name: getattr(spec, name) for name in ("fn", "args", "kwargs", "cores", "gpus", "memory_mb", "priority",
                                                   "timeout", "retries", "pool", "tags", "after", "name")}


@pytest.mark.parametrize("options", [{}, {"cores": 2, "pool": "p", "tags": ("a", "b"), "priority": -3},
                                     {"gpus": 1, "memory_mb": 10, "timeout": 5.5, "retries": 2, "name": "n"}])
def test_a_function_template_gives_the_description_function_would(options):
    template = Function(print, **options)
    for args, kwargs in [((), {}), ((1, "x"), {"k": [1]}), ((None,), {})]:
        assert _slots(template.with_call(double, args, kwargs)) == _slots(Function(double, args, kwargs, **options))
    with pytest.raises(TaskSpecError, match="kwargs"):
        template.with_call(double, (), {"a\0": 1})
    with pytest.raises(TaskSpecError, match="'fn'"):
        template.with_call(3, (), {})


def test_submit_follows_a_function_s_task_options_when_they_change(tmp_path):
    def triple(x):
        return 3 * x

    with Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=2), progress=False) as camp:
        triple._steerflow_options = {"pool": "a"}
        camp.submit(triple, 1)
        camp.submit(triple, 2)
        triple._steerflow_options = {"pool": "b", "cores": 2}
        camp.submit(triple, 3)
        triple._steerflow_options["cores"] = 1  # changed in place
        camp.submit(triple, 4)
        with pytest.raises(TaskSpecError, match="cores"):  # validated again, and rejected by the allocation
            triple._steerflow_options["cores"] = 3
            camp.submit(triple, 5)
        camp.run(stop=stop.wall("60s"))
    with sqlite3.connect(tmp_path / "c" / "journal.db") as conn:
        rows = conn.execute("SELECT key, pool, cores FROM tasks ORDER BY key").fetchall()
    assert rows == [(1, "a", 1), (2, "a", 1), (3, "b", 2), (4, "b", 1)]
