"""steerflow.learn: the learning layer, built on the Campaign's public API only (never an engine).

The three ways ML couples to simulation, as library pieces:

ML-in (a model answers instead of the simulation, where it is sure enough)::

    from steerflow import learn

    @learn.surrogate(featurize=lambda x: [x], error_bound=0.05, min_points=20, retrain_every=10)
    def energy(x: float) -> float: ...          # the expensive function

    energy(0.3)                                 # in-process: model answer or real call (Proxima controller)
    energy.attach(camp, train_pool="train", pool="simulate")  # retrain as tasks; stats + models journaled
    fut = energy.submit(ctx, 0.3)               # a task, or a future already resolved (fut.substituted)
    energy.stats                                # real/surrogate/audit calls, time saved, error vs bound

ML-about (models train and infer beside the simulations)::

    from steerflow import partial                       # inside a running task (function or program):
    partial.emit({"step": 10, "energy": -1.2})          # reaches @sf.on_partial agents while it runs
    # programs: write one JSON line to the FIFO named by $STEERFLOW_PARTIAL

    reg = learn.ModelRegistry(camp)                     # DIR/models/NAME/v0001.pkl, journaled
    v = reg.register("ip", model, metrics={"mae": 0.2}) # idempotent on resume (same bytes -> same version)
    reg.latest("ip"); reg.pin("ip", 2); learn.load("runs/x", "ip", version=2)   # after the run, one call

    ctx.submit(learn.training_task(learn.Forest(), X, y, pool="train"))   # training is a task
    infer = learn.BatchedInference(camp, reg, "ip", pool="infer")         # many requests -> one task
    fut = infer.request(row); infer.flush()                               # per model version, warm worker
    parts = infer.rank(X_pool, chunks=4); mean, std = learn.tasks.gather(parts)
    learn.promote(cheap_scores, k=8)                                      # funnel: best k go on

ML-out (acquisition functions choose what to simulate)::

    model = learn.Forest(n_estimators=100).fit(X, y)    # also learn.GaussianProcess(), learn.TorchEnsemble()
    mean, std = model.predict(X_pool)
    idx = learn.select("ucb", mean, std, k=8, goal="min", features=X_pool, diversity=0.3, exclude=done)
    pts = learn.propose("ei", model, bounds=[(0, 1), (0, 1)], k=4, best=y.min())      # continuous box
    learn.acquisition.get("thompson"); learn.acquisition.names()                      # by name
    port = learn.Portfolio({"ucb": "ucb", "greedy": "greedy", "ts": "thompson"}, seed=0) # bandit over them

    learner = learn.ActiveLearner(candidates, X_pool, simulate, model=learn.Forest(), acquisition="ucb",
                                  batch=8, retrain_after=8, pool="simulate")  # an agent: slots stay full
    camp.add_agent(learner)

Effective performance (declared baseline, reported from the journal)::

    goal = learn.Goal.top(true_values, count=20, needed=10, goal="min")
    trace = learn.Trace.from_journal(camp.directory, pool="simulate")     # tasks tagged candidate=ID
    report = learn.effective_performance(trace, goal, pool_size=len(pool),
                                         baselines=[learn.RandomOrder(), learn.Heuristic("H per heavy atom", scores)])
    print(report.text())

Naming: these are *acquisition functions*; the YAML layer's reactions are *steering rules*.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "UncertainModel": "models", "Forest": "models", "GaussianProcess": "models", "TorchEnsemble": "models",
    "make_model": "models", "fit_model": "models",
    "AcquisitionFunction": "acquisition", "select": "acquisition", "propose": "acquisition",
    "promote": "acquisition", "batch_spread": "acquisition",
    "ModelRegistry": "registry", "ModelVersion": "registry", "load": "registry",
    "Goal": "performance", "Trace": "performance", "Evaluation": "performance", "RandomOrder": "performance",
    "BruteForce": "performance", "Heuristic": "performance", "Measured": "performance", "Report": "performance",
    "effective_performance": "performance", "surrogate_speedup": "performance", "candidate_tag": "performance",
    "Surrogate": "surrogates", "surrogate": "surrogates", "Controller": "surrogates",
    "SurrogateStats": "surrogates",
    "training_task": "tasks", "BatchedInference": "tasks", "predict_rows": "tasks",
    "Portfolio": "portfolio", "ActiveLearner": "active",
}
_MODULES = {"models", "acquisition", "registry", "performance", "surrogates", "tasks", "portfolio", "active"}

__all__ = sorted([*_EXPORTS, *_MODULES])


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f"steerflow.learn.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'steerflow.learn' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"steerflow.learn.{module}"), name)
    globals()[name] = value
    return value
