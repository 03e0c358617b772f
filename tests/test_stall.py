"""A campaign whose waiting tasks can never fit their pool's quota stops and says why, instead of hanging."""

from __future__ import annotations

import time

import pytest

import steerflow as sf


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def _campaign(tmp_path, pools):
    return sf.Campaign(tmp_path / "c", allocation=sf.Allocation.declare(nodes=1, cores=2), pools=pools,
                       progress=False)


@pytest.mark.parametrize("quota, cores", [(0, 1), (1, 2)])
def test_a_task_above_its_pools_quota_stops_the_campaign_with_the_reason(tmp_path, quota, cores):
    camp = _campaign(tmp_path, {"a": quota})
    stuck = camp.submit(sf.Function(nap, args=(0.01,), pool="a", cores=cores))
    camp.submit(sf.Function(nap, args=(0.01,), pool="a", cores=cores, after=[stuck]))
    with pytest.warns(UserWarning, match="need more than its quota"):
        summary = camp.run(stop=sf.stop.wall("60s"))
    reason = summary["stop_reason"]
    assert reason.startswith("stalled: 1 task(s) of pool 'a'") and f"quota of {quota} cores" in reason, reason
    assert "1 task(s) wait for them" in reason and "ctx.set_quota" in reason
    assert summary["elapsed_s"] < 30  # stopped by the rule, not by the wall limit


def test_no_stall_while_a_task_runs_and_its_agent_raises_the_quota(tmp_path):
    camp = _campaign(tmp_path, {"a": 0, "b": 1})
    camp.submit(sf.Function(nap, args=(2.5,), pool="b"))
    camp.submit(sf.Function(nap, args=(0.01,), pool="a"))

    @camp.on_result(pool="b")
    def open_pool_a(result, ctx):
        ctx.set_quota("a", cores=1)

    summary = camp.run(stop=sf.stop.wall("60s"))
    assert summary["stop_reason"].startswith("idle"), summary["stop_reason"]
    assert summary["results_seen"] == 2


def test_no_stall_when_a_timer_may_raise_the_quota(tmp_path):
    camp = _campaign(tmp_path, {"a": 0})
    camp.submit(sf.Function(nap, args=(0.01,), pool="a"))
    start = time.monotonic()

    @camp.on_timer(0.5)
    def later(ctx):
        if time.monotonic() - start > 2.5:
            ctx.set_quota("a", cores=1)

    summary = camp.run(stop=sf.stop.tasks(1) | sf.stop.wall("60s"))
    assert summary["results_seen"] == 1 and summary["stop_reason"] == "stop condition met", summary
