"""Handler decorators as a new user writes them: without parentheses, or with a pool that is not a name.

Before: `@camp.on_result` (no parentheses) took the function for the pool's name, so the agent never heard a result,
without a word; `on_result(pool=3)` or `tag=[]` matched nothing, silently; `@on_timer` / `@on_event` bare said to give
a number / a name, not that the decorator needs one.
"""

from __future__ import annotations

import pytest

import steerflow as sf


def square(x):
    return x * x


def partly(x):
    from steerflow import partial

    partial.emit(x)
    return x


def test_bare_on_result_and_on_partial_hear_every_result(tmp_path):
    camp = sf.Campaign(tmp_path / "c", progress=False, allocation=sf.Allocation.declare(nodes=1, cores=1))
    heard, streamed = [], []

    @camp.on_result
    def got(result, ctx):
        heard.append(result.value)

    @camp.on_partial
    def part(p, ctx):
        streamed.append(p.value)

    camp.submit(sf.Function(square, args=(3,)))
    camp.submit(sf.Function(partly, args=(5,)))
    camp.run()
    assert sorted(heard) == [5, 9] and streamed == [5]  # was: [] and [], silently
    assert callable(got) and got.__name__ == "got"


class Bare(sf.Agent):
    def __init__(self):
        self.heard = []

    @sf.on_result
    def got(self, result, ctx):
        self.heard.append(result.value)


def test_a_bare_on_result_on_an_agent_class_method(tmp_path):
    camp = sf.Campaign(tmp_path / "c", progress=False, allocation=sf.Allocation.declare(nodes=1, cores=1))
    camp.add_agent(Bare())
    learner = [h for h in camp._handlers if h.kind == "result"]
    assert learner
    camp.submit(sf.Function(square, args=(4,)))
    camp.run()
    assert learner[0].fn.__self__.heard == [16]


@pytest.mark.parametrize("kwargs", [{"pool": 3}, {"tag": []}, {"pool": ""}, {"tag": 5}])
def test_a_pool_or_tag_that_is_no_name_is_refused(kwargs):
    with pytest.raises(ValueError, match="is named by a non-empty string"):
        sf.on_result(**kwargs)
    with pytest.raises(ValueError, match="is named by a non-empty string"):
        sf.on_partial(**kwargs)


def test_bare_on_timer_and_on_event_say_what_they_need():
    with pytest.raises(TypeError, match=r"@on_timer\(5\)"):
        sf.on_timer(lambda ctx: None)
    with pytest.raises(TypeError, match=r"@on_event\('model-ready'\)"):
        sf.on_event(lambda payload, ctx: None)
