"""A campaign used after its run() returned (a notebook's next cell): one sentence that says what to do.

Before: submit() raised "This runtime has been shut down; create a new one to submit more tasks", of a runtime the
user never made, and a second run() returned a summary at once, having run nothing, without a word.
"""

from __future__ import annotations

import pytest

import steerflow as sf
from steerflow.errors import RuntimeClosed


def same(x):
    return x


@pytest.mark.parametrize("closing", ["run", "close"])
def test_submit_or_run_after_the_campaign_ended_says_to_open_it_again(tmp_path, closing):
    camp = sf.Campaign(tmp_path / "c", progress=False, allocation=sf.Allocation.declare(nodes=1, cores=1))
    camp.submit(sf.Function(same, args=(1,)))
    camp.run() if closing == "run" else camp.close()
    with pytest.raises(RuntimeClosed, match=r"submit\(\): the campaign in .* has ended.*Campaign\(DIR, resume=True\)"):
        camp.submit(sf.Function(same, args=(2,)))
    with pytest.raises(RuntimeClosed, match=r"run\(\): the campaign in .* has ended"):
        camp.run()
    again = sf.Campaign(tmp_path / "c", progress=False, resume=True, allocation=sf.Allocation.declare(nodes=1, cores=1))
    futures = [again.submit(sf.Function(same, args=(i,))) for i in (1, 2)]
    assert again.run()["states"] == {"done": 2} and [f.result() for f in futures] == [1, 2]
    again.close()


def test_run_from_an_agents_handler_is_the_agents_error(tmp_path):
    camp = sf.Campaign(tmp_path / "c", progress=False, allocation=sf.Allocation.declare(nodes=1, cores=1))

    @camp.on_result()
    def again(result, ctx):
        camp.run()  # (before: a second steering loop inside the first, which closed the campaign under it)

    camp.submit(sf.Function(same, args=(1,)))
    with pytest.raises(sf.AgentError, match=r"again raised SteeringError: run\(\) was called while the campaign runs"):
        camp.run()


@pytest.mark.parametrize("reason", [123, None, "", ["a"]])
def test_ctx_stop_with_a_reason_that_is_no_text_is_the_agents_error(tmp_path, reason):
    camp = sf.Campaign(tmp_path / "c", progress=False, allocation=sf.Allocation.declare(nodes=1, cores=1))

    @camp.on_result()
    def done(result, ctx):
        ctx.stop(reason)  # (before: the run's stop_reason became 123, None or a list)

    camp.submit(sf.Function(same, args=(1,)))
    with pytest.raises(sf.AgentError, match=r"done raised SteeringError: stop\(.*give the reason as a short text"):
        camp.run()
