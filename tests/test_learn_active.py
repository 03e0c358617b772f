"""The active-learning agent, the portfolio and batched inference, in real campaigns on a synthetic pool."""

from __future__ import annotations

import glob
import os
import sqlite3
import time

import numpy as np
import pytest

import steerflow as sf
from steerflow import learn
from steerflow.learn import ActiveLearner, BatchedInference, Forest, Goal, ModelRegistry, Portfolio, RandomOrder, Trace

pytest.importorskip("sklearn")


def pool(seed: int = 0, n: int = 300):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 3))
    centre = x[rng.integers(n)]
    y = np.sum((x - centre) ** 2, axis=1)
    return x, y


def simulate(value: float, directory: str) -> float:
    """The "expensive" simulation. It stands for simulations that cost far more than training: the
    17th waits (bounded) until a first model exists and the 41st until a second one does, whatever
    the machine's load does to the training tasks' speed."""
    import uuid

    os.makedirs(os.path.join(directory, "sims"), exist_ok=True)
    open(os.path.join(directory, "sims", uuid.uuid4().hex), "w").close()
    started = len(os.listdir(os.path.join(directory, "sims")))
    need = 2 if started > 40 else 1 if started > 16 else 0
    models = os.path.join(directory, "models", "learner")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and need and (len(glob.glob(os.path.join(models, "v*.json"))) < need):
        time.sleep(0.01)
    time.sleep(0.02)
    return value


def run_learner(tmp_path, acquisition, seed=0, budget=80):
    x, y = pool(seed)
    camp = sf.Campaign(tmp_path / f"c-{seed}", allocation=sf.Allocation.declare(nodes=1, cores=3), progress=False,
                       pools={"simulate": {"cores": 2}, "train": {"cores": 1}, "infer": {"cores": 1}})
    learner = camp.add_agent(ActiveLearner(list(y), x, simulate, budget=budget, acquisition=acquisition, slots=2,
                                           retrain_after=8, model=Forest(n_estimators=20), seed=seed,
                                           args=lambda value: (value, str(camp.directory))))
    camp.run()
    return camp, learner, x, y


def test_ucb_learner_beats_random_order_and_keeps_simulating_while_it_trains(tmp_path):
    camp, learner, x, y = run_learner(tmp_path, "ucb")
    assert learner.simulations == 80 and learner.models >= 2 and learner.rankings >= 1
    goal = Goal.top(dict(enumerate(y)), count=10, needed=5)
    trace = Trace.from_journal(camp.directory)
    assert trace.simulations == 80 and trace.slots == 2
    solved = trace.solved(goal)  # random order needs 136.8 simulations on average; the budget is 80
    assert solved is not None and solved[0] <= 80 < RandomOrder().simulations(goal, len(y))
    conn = sqlite3.connect(camp.directory / "journal.db")
    spans = {pool: [(s, e) for s, e in conn.execute(
        "SELECT r.started, r.ended FROM results r JOIN tasks t ON r.key = t.key WHERE t.pool = ?", (pool,))]
        for pool in ("simulate", "train", "infer")}
    conn.close()
    overlapping = [t for t in spans["train"] if any(s < t[1] and e > t[0] for s, e in spans["simulate"])]
    assert len(overlapping) >= 2  # simulations ran while the model trained
    assert [v.version for v in ModelRegistry(camp.directory).versions("learner")] == list(range(1, learner.models + 1))


def test_portfolio_shifts_budget_to_the_member_that_finds_more():
    port = Portfolio({"good": "greedy", "bad": "random"}, goal="min", seed=0)
    mean = np.arange(100.0)
    std = np.ones(100)
    seen: list[float] = []
    for _ in range(12):
        picks = port.select(mean, std, 6, seen=seen or [50.0], exclude=list(range(len(seen))))
        for i in picks.tolist():
            port.record(i, mean[i])
            seen.append(mean[i])
    summary = port.summary()
    assert summary["good"]["successes"] > summary["bad"]["successes"]
    assert port.history[-1]["good"] > port.history[-1]["bad"]  # the later slices favour the better member
    assert sum(port.history[0].values()) == 6 and min(port.history[-1].values()) >= 1  # nobody starves


def test_batched_inference_one_task_per_model_version(tmp_path):
    camp = sf.Campaign(tmp_path / "c", allocation=sf.Allocation.declare(nodes=1, cores=1), progress=False)
    reg = ModelRegistry(camp)
    rng = np.random.default_rng(0)
    x = rng.random((40, 2))
    reg.register("m", Forest(n_estimators=10, seed=1).fit(x, x.sum(axis=1)))
    reg.register("m", Forest(n_estimators=10, seed=2).fit(x, x.sum(axis=1) * 2))
    infer = BatchedInference(camp, reg, "m", pool="default")
    futures = [infer.request(row) for row in x[:30]] + [infer.request(row, version=1) for row in x[:10]]
    tasks = infer.flush()
    ranked = infer.rank(x, chunks=3)
    camp.run()
    assert infer.tasks_sent == 2 + 3 and len(tasks) == 2
    newest = np.array([f.result()[0] for f in futures[:30]])
    first = np.array([f.result()[0] for f in futures[30:]])
    assert np.allclose(newest, 2 * x[:30].sum(axis=1), atol=0.5) and np.allclose(first, x[:10].sum(axis=1), atol=0.3)
    mean, std = learn.tasks.gather(ranked)
    assert mean.shape == (40,) and np.all(std >= 0)
