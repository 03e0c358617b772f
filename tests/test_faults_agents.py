"""Agents that raise or block: the campaign says what happened instead of hanging silently."""

from __future__ import annotations

import time

import pytest

import steerflow as sf
from steerflow import agent_watch

pytestmark = pytest.mark.usefixtures("no_leftover_processes")

ONE_CORE = sf.Allocation.declare(nodes=1, cores=1)


def test_a_handler_that_blocks_is_named_while_it_blocks(tmp_path, capfd, monkeypatch):
    """Before: an agent stuck in a call held the campaign past its wall time without a word."""
    monkeypatch.setattr(agent_watch, "AFTER_S", 0.5)
    camp = sf.Campaign(tmp_path / "c", allocation=ONE_CORE, progress=False)

    @camp.on_result()
    def stuck(result, ctx):
        time.sleep(4)  # a network call with no timeout, say

    camp.submit(sf.Function(abs, args=(-1,)))
    summary = camp.run(stop=sf.stop.wall("1s"))
    err = capfd.readouterr().err
    assert ".stuck has been running for" in err, err
    assert "test_faults_agents.py" in err and "in stuck" in err  # where it is stuck
    assert "stop conditions (a wall time too) are not checked" in err
    assert summary["results_seen"] == 1


def test_a_quick_handler_says_nothing(tmp_path, capfd, monkeypatch):
    monkeypatch.setattr(agent_watch, "AFTER_S", 0.5)
    camp = sf.Campaign(tmp_path / "c", allocation=ONE_CORE, progress=False)
    camp.on_result()(lambda result, ctx: None)
    for x in range(20):
        camp.submit(sf.Function(abs, args=(-x,)))
    camp.run()
    assert "has been running" not in capfd.readouterr().err


def test_a_handler_that_raises_stops_the_campaign_with_its_error(tmp_path):
    camp = sf.Campaign(tmp_path / "c", allocation=ONE_CORE, progress=False)

    @camp.on_result()
    def broken(result, ctx):
        raise KeyError("no such molecule")

    for x in range(5):
        camp.submit(sf.Function(abs, args=(-x,)))
    with pytest.raises(sf.campaign.AgentError, match="broken raised KeyError"):
        camp.run(stop=sf.stop.wall("60s"))
    again = sf.Campaign(tmp_path / "c", allocation=ONE_CORE, progress=False, resume=True)
    again.on_result()(lambda result, ctx: None)
    for x in range(5):
        again.submit(sf.Function(abs, args=(-x,)))
    assert again.run()["results_seen"] == 5  # resumable: nothing lost


def test_an_event_payload_that_cannot_be_journaled_is_refused_in_the_agent_that_emits_it(tmp_path):
    """Before: a TypeError from deep in the steering loop (the journal pickles each payload for replay)."""
    import threading

    camp = sf.Campaign(tmp_path / "c", allocation=ONE_CORE, progress=False)

    @camp.on_result()
    def publish(result, ctx):
        ctx.emit("model", threading.Lock())

    camp.submit(sf.Function(abs, args=(-1,)))
    with pytest.raises(sf.campaign.AgentError, match=r"publish raised SteeringError: emit\('model', ...\): the "
                       "payload cannot be pickled"):
        camp.run(stop=sf.stop.wall("60s"))


def test_events_and_their_payloads_replay_on_resume(tmp_path):
    seen = []

    def build(resume):
        camp = sf.Campaign(tmp_path / "c", allocation=ONE_CORE, progress=False, resume=resume)
        camp.on_result()(lambda result, ctx: ctx.emit("best", {"x": result.value}))
        camp.on_event("best")(lambda payload, ctx: seen.append(payload["x"]))
        for x in range(3):
            camp.submit(sf.Function(abs, args=(-x,)))
        return camp

    build(False).run()
    live, seen[:] = sorted(seen), []
    build(True).run()
    assert sorted(seen) == live == [0, 1, 2]


@pytest.mark.parametrize("call, message", [
    (lambda ctx, f: ctx.set_quota(5, cores=1), r"set_quota\(5, ...\): a pool is named by a non-empty string"),
    (lambda ctx, f: ctx.set_quota("\udcff", cores=1), "a pool is named by a non-empty string of valid text"),
    (lambda ctx, f: ctx.set_quota("p", cores=True), "a quota is an integer >= 0 or None"),
    (lambda ctx, f: ctx.free_slots("default", cores=0), "give the task's shape as integers >= 0, not both 0"),
    (lambda ctx, f: ctx.free_slots("default", cores=-1), "give the task's shape as integers >= 0, not both 0"),
    (lambda ctx, f: ctx.preempt(f, grace=float("nan")), r"preempt\(grace=nan\): the grace is the seconds"),
    (lambda ctx, f: ctx.preempt(f, grace=-5), r"preempt\(grace=-5\): the grace is the seconds"),
])
def test_odd_values_in_an_agents_calls_are_its_error(tmp_path, call, message):
    """Before: a surrogate pool name stopped the journal, free_slots(cores=0) raised in the runtime's own thread
    (a traceback there, 0 here), an int pool name and a NaN grace were taken."""
    camp = sf.Campaign(tmp_path / "c", allocation=ONE_CORE, progress=False)
    raised = []

    @camp.on_start
    def start(ctx):
        f = ctx.submit(sf.Function(time.sleep, args=(0.1,)))
        try:
            call(ctx, f)
        except sf.SteeringError as exc:
            raised.append(str(exc))

    camp.run(stop=sf.stop.wall("60s"))
    assert len(raised) == 1 and __import__("re").search(message, raised[0]), raised
