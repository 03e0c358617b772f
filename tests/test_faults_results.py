"""A result the driver cannot rebuild (its class raises on unpickling, or is not importable there).

Before: the steering thread met the load error and `run()` raised it: the whole campaign stopped on one
task's result, and every resume stopped at the same place. Now that task is a failure for the agents (live and
on replay alike), and the campaign goes on.
"""

from __future__ import annotations

import pytest

import steerflow as sf

pytestmark = pytest.mark.usefixtures("no_leftover_processes")

ONE_CORE = sf.Allocation.declare(nodes=1, cores=1)


def _rebuild(pad):
    raise RuntimeError("cannot rebuild me here")


class Unloadable:
    def __init__(self, size):
        self.pad = b"x" * size

    def __reduce__(self):
        return (_rebuild, (self.pad,))


def unloadable(size):
    return Unloadable(size)


def run(directory, resume=False):
    camp = sf.Campaign(directory, allocation=ONE_CORE, progress=False, resume=resume)
    seen = {}
    camp.on_result()(lambda result, ctx: seen.__setitem__(result.key, result))
    camp.submit(unloadable, 10)  # stored as it came (a small pickle)
    camp.submit(unloadable, 200_000)  # large: the journal loads it to store it, and cannot
    camp.submit(abs, -1)
    return camp.run(stop=sf.stop.wall("60s")), seen


def test_a_result_the_driver_cannot_load_fails_that_task_alone_live_and_on_resume(tmp_path):
    summary, seen = run(tmp_path / "c")
    assert summary["results_seen"] == 3 and seen[3].ok and seen[3].value == 1
    for key in (1, 2):
        assert not seen[key].ok and "cannot rebuild me here" in str(seen[key].error)
    summary, replayed = run(tmp_path / "c", resume=True)
    assert summary["results_seen"] == 3
    assert [replayed[k].ok for k in (1, 2, 3)] == [False, False, True]  # as the live agents saw them
    assert all("cannot rebuild me here" in str(replayed[k].error) for k in (1, 2))
