"""Stop conditions and timers given values that cannot work: refused when made, with a sentence.

Before: `stop.tasks("3")` and `stop.when(3)` were accepted and failed mid-run with a TypeError from the steering loop;
`stop.tasks(0)` or `stop.tasks(-1)` stopped the campaign before anything ran, without a word; `on_timer(nan)` never
fired and `on_timer(inf)` neither, silently.
"""

from __future__ import annotations

import pytest

import steerflow as sf


@pytest.mark.parametrize("count", [0, -1, 1.5, "3", None, True, float("nan")])
def test_stop_tasks_refuses_what_is_no_count(count):
    with pytest.raises(ValueError, match=r"stop\.tasks\(.*whole number of at least 1"):
        sf.stop.tasks(count)


def test_stop_tasks_and_when_still_take_good_values():
    assert sf.stop.tasks(1).count == 1 and sf.stop.tasks(10**6).count == 10**6
    sf.stop.when(lambda ctx: False)


@pytest.mark.parametrize("predicate", [3, None, "ctx.results_seen > 3", True])
def test_stop_when_refuses_what_cannot_be_called(predicate):
    with pytest.raises(TypeError, match=r"stop\.when\(.*give a function"):
        sf.stop.when(predicate)


@pytest.mark.parametrize("seconds", [float("nan"), float("inf"), -float("inf"), True, 0, -1, "1s", None])
def test_on_timer_refuses_periods_that_never_fire(seconds, tmp_path):
    with pytest.raises(ValueError, match="positive, finite number of seconds"):
        sf.on_timer(seconds)
    camp = sf.Campaign(tmp_path / "c", progress=False, allocation=sf.Allocation.declare(nodes=1, cores=1))
    with pytest.raises(ValueError, match="positive, finite number of seconds"):
        camp.on_timer(seconds)
    camp.close()


class Learner(sf.Agent):
    @sf.on_result()
    def got(self, result, ctx):
        pass


def test_add_agent_of_a_class_says_to_give_an_object(tmp_path):
    camp = sf.Campaign(tmp_path / "c", progress=False, allocation=sf.Allocation.declare(nodes=1, cores=1))
    from steerflow.agents import SteeringError

    with pytest.raises(SteeringError, match=r"add_agent\(Learner\): give an agent object, not its class"):
        camp.add_agent(Learner)  # was: "<class Learner> declares no handlers"
    camp.add_agent(Learner())
    camp.close()
