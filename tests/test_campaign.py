"""Campaigns with real processes: adaptive graphs, agents, pools moved at run time, suspend, preempt, resume."""

from __future__ import annotations

import os
import stat
import time

import pytest

import steerflow as sf
from steerflow import Allocation, Campaign, Function, checkpoint, stop

pytestmark = pytest.mark.usefixtures("no_leftover_processes")  # nothing it starts outlives a test



def square(x):
    if x == 3:
        time.sleep(60)  # an unproductive simulation: the agent kills it
    time.sleep(0.05)
    return x * x


def train(data):
    time.sleep(0.2)
    return {"n": len(data), "cores": os.environ["STEERFLOW_CORES"]}


def test_adaptive_campaign_adds_kills_and_moves_pools(tmp_path):
    camp = Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=2),
                    pools={"simulate": {"cores": 2}, "train": {"cores": 0}}, progress=False)
    seen: list[tuple[int, int]] = []
    slow = {}

    @camp.on_result(pool="simulate")
    def learn(result, ctx):
        if not result.ok:
            return
        seen.append((result.args[0], result.value))
        if result.value < 5:  # adaptive: results decide what runs next
            ctx.submit(Function(square, args=(result.value + 10,), pool="simulate"))
        if len(seen) == 3:
            ctx.emit("retrain", list(seen))

    @camp.on_event("retrain")
    def retrain(data, ctx):
        ctx.cancel(slow["future"])  # kill the unproductive simulation
        ctx.set_quota("simulate", cores=0)  # move both cores from simulate to train
        ctx.set_quota("train", cores=2)
        ctx.submit(Function(train, args=(data,), pool="train", cores=2))

    @camp.on_result(pool="train")
    def trained(result, ctx):
        ctx.state.model = result.value
        ctx.set_quota("simulate", cores=2)

    for x in (0, 1, 2):
        camp.submit(Function(square, args=(x,), pool="simulate"))
    slow["future"] = camp.submit(Function(square, args=(3,), pool="simulate"))
    t0 = time.monotonic()
    summary = camp.run(stop=stop.wall("60s"))
    assert time.monotonic() - t0 < 30  # the 60 s simulation was killed, not waited for
    assert camp.ctx.state.model == {"n": 3, "cores": "0,1"}  # training got both cores of the simulate pool
    assert slow["future"].cancelled()
    assert {x for x, _ in seen} >= {0, 1, 2, 10, 11}  # follow-ups were submitted from results
    assert summary["stop_reason"].startswith("idle")


def test_every_n_results_timer_and_start_end(tmp_path):
    camp = Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=2), progress=False)
    batches, ticks, marks = [], [], []

    @camp.on_start
    def begin(ctx):
        marks.append("start")
        for i in range(10):
            ctx.submit(Function(time.sleep, args=(0.05,), tags=("nap",)))

    @camp.on_result(tag="nap", every=4)
    def batch(results, ctx):
        batches.append(len(results))

    @camp.on_timer(0.1)
    def tick(ctx):
        ticks.append(ctx.elapsed)
        if ctx.results_seen >= 10:
            ctx.stop("all naps done")

    @camp.on_end
    def end(ctx):
        marks.append("end")

    summary = camp.run(stop_when_idle=False)  # only the timer agent ends it
    assert batches == [4, 4] and ticks and marks == ["start", "end"]
    assert summary["stop_reason"] == "all naps done"


def counter_task(path, x):
    with open(path, "a") as f:
        f.write(f"{x}\n")
    return x + 1


def _build(directory, sidefx, resume):
    camp = Campaign(directory, allocation=Allocation.declare(nodes=1, cores=2), resume=resume, progress=False)
    total = []

    @camp.on_result()
    def collect(result, ctx):
        total.append(result.value)
        if result.value < 6:
            ctx.submit(counter_task, sidefx, result.value)

    camp.submit(counter_task, sidefx, 0)
    camp.submit(counter_task, sidefx, 100)
    return camp, total


def test_resume_replays_results_and_does_not_rerun(tmp_path):
    directory, sidefx = tmp_path / "c", tmp_path / "runs.txt"
    camp, total = _build(directory, sidefx, resume=False)
    camp.run(stop=stop.tasks(4), drain=True)  # running tasks finish; their results wait in the journal
    first_runs = sidefx.read_text().split()
    assert len(total) == 4
    camp2, total2 = _build(directory, sidefx, resume=True)
    assert camp2.resumed
    camp2.run()
    assert sorted(total2) == [1, 2, 3, 4, 5, 6, 101]  # the agent saw every result, replayed ones included
    runs = sidefx.read_text().split()
    assert sorted(runs) == sorted(set(runs))  # no task ran twice ...
    assert runs[:len(first_runs)] == first_runs  # ... and the first driver's work was kept
    for resume in (None, False):  # nothing is ever overwritten without resume
        with pytest.raises(sf.CampaignLocked, match="already holds a campaign"):
            Campaign(directory, allocation=Allocation.declare(nodes=1, cores=1), resume=resume, progress=False)


def test_directory_is_private_and_single_driver(tmp_path):
    camp = Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=1), progress=False)
    try:
        assert stat.S_IMODE((tmp_path / "c").stat().st_mode) == 0o700
        assert stat.S_IMODE((tmp_path / "c" / "journal.db").stat().st_mode) == 0o600
        with pytest.raises(sf.CampaignLocked, match="This process already has the campaign"):  # (this process)
            Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=1), resume=True, progress=False)
    finally:
        camp.close()


def test_invalid_agent_actions_are_clear_errors(tmp_path):
    camp = Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=1), progress=False)

    @camp.on_start
    def bad(ctx):
        ctx.set_quota("simulate", cores=-1)

    with pytest.raises(sf.AgentError, match="bad raised SteeringError.*cores=-1.*integer >= 0"):
        camp.run()
    camp = Campaign(tmp_path / "d", allocation=Allocation.declare(nodes=1, cores=1), progress=False)

    @camp.on_start
    def unknown(ctx):
        ctx.cancel(12345)

    with pytest.raises(sf.AgentError, match="not a task of this campaign"):
        camp.run()
    camp = Campaign(tmp_path / "e", allocation=Allocation.declare(nodes=1, cores=1), progress=False)

    @camp.on_start
    def too_big(ctx):
        ctx.submit(Function(print, cores=8))

    with pytest.raises(sf.AgentError, match="'cores' = 8.*exceeds the 1 cores"):
        camp.run()
    with Campaign(tmp_path / "f", allocation=Allocation.declare(nodes=1, cores=1), progress=False) as unrun:
        with pytest.raises(sf.SteeringError, match="declares no handlers"):
            unrun.add_agent(object())  # (a campaign that is never run must still be closed: its workers)


def test_failing_task_does_not_take_the_campaign_down(tmp_path):
    camp = Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=2), progress=False)
    outcomes = []
    camp.add_agent(_Recorder(outcomes))
    camp.submit(Function(_explode))
    camp.submit(Function(int, args=("7",)))
    camp.run()
    assert sorted(outcomes, key=str) == sorted([7, "ZeroDivisionError"], key=str)


class _Recorder(sf.Agent):
    def __init__(self, outcomes):
        self.outcomes = outcomes

    @sf.on_result()
    def record(self, result, ctx):
        self.outcomes.append(result.value if result.ok else type(result.error).__name__)


def _explode():
    return 1 / 0


def walker(start, steps, log, progress=None):
    """Walk from `start`; checkpoint every step; a new start means a new starting point."""
    state = checkpoint.load()
    if state is None or state["start"] != start:
        state = {"start": start, "pos": start, "i": 0, "starts": 0}
    state = {**state, "starts": state["starts"] + 1}
    try:
        while state["i"] < steps:
            time.sleep(0.02)
            state = {**state, "pos": state["pos"] + 1, "i": state["i"] + 1}  # one assignment: Preempted
            checkpoint.save(state)  # may land anywhere, the saved state stays consistent
            if progress:
                with open(progress, "a") as f:
                    f.write(f"{state['i']}\n")
    except sf.Preempted:
        checkpoint.save(state)
        raise
    with open(log, "a") as f:
        f.write(f"walker {time.time()}\n")
    return state


def stamp(log):
    with open(log, "a") as f:
        f.write(f"stamp {time.time()}\n")
    return "stamped"


def test_preempt_restarts_from_checkpoint_and_frees_resources(tmp_path):
    log, progress = tmp_path / "log", tmp_path / "progress"
    camp = Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=1), progress=False)
    walk = camp.submit(Function(walker, args=(0, 30, log, progress)))
    blocked = {}

    @camp.on_timer(0.01)  # a poll: it acts once the walk has checkpointed three steps
    def preempt_once(ctx):
        if "stamp" not in blocked and progress.exists() and len(progress.read_text().split()) >= 3:
            blocked["stamp"] = ctx.submit(Function(stamp, args=(log,)))  # needs the only core
            ctx.preempt(walk, grace=5)

    camp.run()
    state = walk.result()
    assert state["starts"] == 2 and state["pos"] == 30 and state["i"] == 30  # continued from its checkpoint
    lines = log.read_text().split()
    assert lines[0] == "stamp"  # the preempted task's core went to the waiting task
    outcomes = [a.outcome for a in camp.runtime.task(walk.task_id).attempts]
    assert outcomes == ["preempted", "done"]


def test_preempt_with_a_new_starting_point(tmp_path):
    log, progress = tmp_path / "log", tmp_path / "progress"
    camp = Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=1), progress=False)
    walk = camp.submit(Function(walker, args=(0, 20, log, progress)))

    @camp.on_timer(0.01)  # a poll: it acts once the walk is under way
    def move(ctx):
        if not ctx.state.__dict__.get("moved") and progress.exists():
            ctx.state.moved = True
            ctx.preempt(walk, args=(1000, 5, log))

    camp.run()
    state = walk.result()
    assert state["start"] == 1000 and state["pos"] == 1005 and state["starts"] == 1
    assert [a.outcome for a in camp.runtime.task(walk.task_id).attempts] == ["preempted", "done"]


def test_suspend_and_resume_from_an_agent(tmp_path):
    counter = tmp_path / "count"
    camp = Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=1), progress=False)
    job = camp.submit(sf.Executable(["sh", "-c", f"for i in $(seq 1 60); do echo $i >> {counter}; sleep 0.01; done"]))
    seen = {}

    @camp.on_timer(0.1)
    def control(ctx):
        if "paused" not in seen and counter.exists():
            ctx.suspend(job)
            seen["paused"] = len(counter.read_text().split())
            seen["at"] = time.monotonic()
        elif "paused" in seen and "resumed" not in seen and time.monotonic() - seen["at"] > 0.3:
            seen["still"] = len(counter.read_text().split())
            seen["resumed"] = True
            ctx.resume(job)

    camp.run()
    assert job.result().returncode == 0
    assert seen["still"] <= seen["paused"] + 1  # nothing ran while suspended
    assert len(counter.read_text().split()) == 60


def test_resume_with_dependencies_on_replayed_results(tmp_path):
    def build(resume):
        camp = Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=2), resume=resume, progress=False)
        first = camp.submit(counter_task, tmp_path / "runs", 1)
        second = camp.submit(Function(counter_task, args=(tmp_path / "runs", first)))  # depends on first
        return camp, first, second

    camp, first, second = build(False)
    camp.run()
    assert second.result() == 3
    camp, first, second = build(True)  # both come back from the journal
    camp.run()
    assert first.result() == 2 and second.result() == 3
    camp = Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=2), resume=True, progress=False)
    first = camp.submit(counter_task, tmp_path / "runs", 1)  # replayed from the journal ...
    camp.submit(Function(counter_task, args=(tmp_path / "runs", first)))
    third = camp.submit(Function(counter_task, args=(tmp_path / "runs", first), name="new"))  # ... a new task uses it
    camp.run()
    assert third.result() == 3
    assert (tmp_path / "runs").read_text().split() == ["1", "2", "2"]  # only the new tasks ran again


def big_result(n):
    import numpy as np

    return np.arange(n, dtype=np.float64)  # 8n bytes: comes back through shared memory


def test_large_results_are_stored_once_in_files_and_replayed(tmp_path):
    import numpy as np

    def build(resume):
        camp = Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=1), resume=resume, progress=False)
        seen = []
        camp.on_result()(lambda result, ctx: seen.append(float(result.value.sum())))
        camp.submit(big_result, 2**20)  # 8 MB
        camp.submit(big_result, 10)  # small: inline in the journal
        return camp, seen

    camp, seen = build(False)
    camp.run()
    stored = tmp_path / "c" / "results" / "1.pkl"
    assert stored.exists() and stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert not (tmp_path / "c" / "results" / "2.pkl").exists()
    camp, replayed = build(True)
    camp.run()
    assert replayed == seen == [float(np.arange(2**20).sum()), 45.0]


def test_a_slow_agent_does_not_leave_cores_idle(tmp_path):
    camp = Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=2), progress=False)
    thinking = []
    futures = []
    seen_all_done = []

    @camp.on_result()
    def slow(result, ctx):
        if not thinking:  # the slowest agent: it does not return before every queued task has finished,
            deadline = time.monotonic() + 60  # which they only can if the runtime runs them without it
            while not all(f.done() for f in futures) and time.monotonic() < deadline:
                time.sleep(0.01)
            seen_all_done.append(all(f.done() for f in futures))
        thinking.append(result.key)

    futures.extend(camp.submit(Function(time.sleep, args=(0.05,))) for _ in range(10))
    camp.run()
    assert seen_all_done == [True]  # the queued tasks ran back to back while the agent thought ...
    assert len(thinking) == 10  # ... and the agent still saw every result