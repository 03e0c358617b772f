"""An active-learning agent: simulation slots stay full while a model retrains and re-ranks the pool.

The loop most ML-out campaigns write by hand, as one agent:

- simulations (pool ``simulate``) are submitted from a queue, keeping ``slots`` of them in
  flight; the first queue is a random order;
- after ``retrain_after`` new results a training task runs (pool ``train``) while the
  simulations go on from the current queue; the trained model goes to the model registry;
- the remaining pool is re-ranked by batched inference tasks (pool ``infer``, split into
  ``infer_chunks``) that load the registered version once per warm worker;
- the acquisition function (or a `Portfolio`) turns the predictions into the next queue.

``simulate`` may be a `Surrogate` attached to the campaign: confident answers then cost no
simulation (they are journaled as steering events and never used as training labels), except
answers that could enter the best ``verify_top`` values so far (within ``verify_margin``: a
model that regresses to the mean underrates the extremes), which are simulated anyway:
the surrogate saves the simulations that do not matter, and every discovery is verified.
Every simulation is tagged ``candidate=ID`` so `Trace.from_journal` reads the run back.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import agents
from ..task import Function
from .acquisition import AcquisitionFunction, best_found, get, select
from .performance import candidate_tag
from .portfolio import Portfolio
from .surrogates import Surrogate
from .tasks import predict_rows, training_task

__all__ = ["ActiveLearner"]


def _check(x: np.ndarray, simulate: Any, budget: Any, goal: Any, model: Any, slots: Any, retrain_after: Any,
           min_train: Any, diversity: Any, infer_chunks: Any, name: Any) -> None:
    """The arguments, checked at construction: a wrong one otherwise shows up mid-run, or as a run doing nothing."""
    from .models import make_model
    from .registry import check_name

    if x.ndim != 2:
        raise ValueError(f"ActiveLearner: features must be a 2-D array, one row per candidate; got shape {x.shape}.")
    if not callable(simulate):
        raise TypeError(f"ActiveLearner: simulate={simulate!r} is not a function (or a Surrogate).")
    for label, value, low in (("budget", budget, 0), ("slots", slots, 1), ("retrain_after", retrain_after, 1),
                              ("min_train", min_train, 1), ("infer_chunks", infer_chunks, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"ActiveLearner: {label}={value!r}; give a whole number >= {low}.")
    if goal not in ("min", "max"):
        raise ValueError(f"ActiveLearner: goal={goal!r}; say 'min' (look for the lowest value) or 'max'.")
    if not (isinstance(diversity, (int, float)) and 0.0 <= diversity <= 1.0):
        raise ValueError(f"ActiveLearner: diversity={diversity!r}; give a number between 0 (pure score) and 1.")
    make_model(model)  # an unknown name fails here, with its message, instead of in every training task
    check_name(name)  # its models go to the registry under this name


def _say(text: str) -> None:
    print(f"steerflow: {text}", file=sys.stderr, flush=True)


def _label(value: Any) -> float | None:
    """A simulation's result as a training label: a finite number, else None (NaN, inf, None, text, an array)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class ActiveLearner(agents.Agent):
    """Batch active learning over a discrete pool of ``candidates`` with feature rows ``features``."""

    def __init__(self, candidates: Sequence[Any], features: Any, simulate: Callable[..., Any] | Surrogate, *,
                 budget: int, goal: str = "min", model: Any = "forest",
                 acquisition: str | AcquisitionFunction | Portfolio = "ucb", slots: int = 1, retrain_after: int = 8,
                 min_train: int = 8, diversity: float = 0.0, pool: str = "simulate", train_pool: str = "train",
                 infer_pool: str = "infer", infer_chunks: int = 1, name: str = "learner", seed: int = 0,
                 verify_top: int = 0, verify_margin: float = 0.0,
                 args: Callable[[Any], tuple] = lambda c: (c,), task_options: dict[str, Any] | None = None) -> None:
        self.candidates = list(candidates)
        self.x = np.asarray(features, dtype=float)
        _check(self.x, simulate, budget, goal, model, slots, retrain_after, min_train, diversity, infer_chunks, name)
        if len(self.x) != len(self.candidates):
            raise ValueError(f"ActiveLearner: {len(self.candidates)} candidates but {len(self.x)} feature rows.")
        self.simulate, self.budget, self.goal, self.model = simulate, budget, goal, model
        self.acquisition = acquisition if isinstance(acquisition, Portfolio) else get(acquisition)
        self.slots, self.retrain_after, self.min_train = slots, retrain_after, min_train
        self.diversity, self.pool, self.train_pool, self.infer_pool = diversity, pool, train_pool, infer_pool
        self.infer_chunks, self.name, self.args = infer_chunks, name, args
        self.verify_top, self.verify_margin = verify_top, verify_margin
        self.verified = 0
        self.task_options = dict(task_options or {})
        self.rng = np.random.default_rng(seed)
        self.queue: list[int] = [int(i) for i in self.rng.permutation(len(self.candidates))]
        self.submitted: set[int] = set()
        self.keys: dict[int, int] = {}  # task key -> candidate index
        self.in_flight = 0
        self.simulations = 0
        self.values: dict[int, float] = {}        # simulated for real
        self.substituted: dict[int, float] = {}   # answered by the surrogate
        self.order: list[tuple[int, str]] = []    # (index, "simulated" | "surrogate") in the order they came back
        self._train_x: list[int] = []
        self._new = 0
        self.training = False  # a model is training or ranking the pool
        self._ranking: dict[int, Any] = {}
        self._rank_round = 0
        self._rank_parts = 0
        self._rank_rows: np.ndarray | None = None
        self.registry: Any = None
        self.models = 0
        self.rankings = 0
        self.failed_trainings = 0
        self.failed_rankings = 0  # inference tasks that failed (a model whose predict raised or answered nonsense)
        self.not_finite = 0  # simulations that returned no finite number: NaN, inf, None, text (no training label)

    # ---- handlers ------------------------------------------------------------------------------
    @agents.on_start
    def _begin(self, ctx: Any) -> None:
        from .registry import ModelRegistry

        self.registry = ModelRegistry(ctx.campaign)
        self._fill(ctx)

    @agents.on_result()
    def _on_result(self, result: Any, ctx: Any) -> None:
        tags = result.tags
        if f"learner:{self.name}" in tags:
            self._simulated(result, ctx)
        elif f"learner:{self.name}:train" in tags:
            self._trained(result, ctx)
        elif f"learner:{self.name}:infer" in tags:
            self._ranked(result, ctx)

    def _simulated(self, result: Any, ctx: Any) -> None:
        index = self.keys.pop(result.key)
        self.in_flight -= 1
        if result.ok and (value := _label(result.value)) is None:  # no label: it would fail every fit
            self.not_finite += 1  # (None, a string or an array stopped the campaign, and each resume of it)
            if self.not_finite == 1:
                _say(f"learner {self.name!r}: the simulation of candidate {index} returned {result.value!r:.80}, "
                     "which is no training label (a finite number); such results are left out of the model "
                     "(counted in .not_finite).")
        elif result.ok:
            self.values[index] = value
            self.order.append((index, "simulated"))
            self._train_x.append(index)
            self._new += 1
            if isinstance(self.acquisition, Portfolio):
                self.acquisition.record(index, value)
        self._maybe_train(ctx)
        self._fill(ctx)

    def _trained(self, result: Any, ctx: Any) -> None:
        if not result.ok:  # the next try waits for retrain_after new results (not at once: the same data failed)
            self.training = False
            self.failed_trainings += 1
            if self.failed_trainings == 1:
                _say(f"learner {self.name!r}: training failed ({type(result.error).__name__}: {result.error}); it "
                     f"tries again after {self.retrain_after} new results (failures counted in .failed_trainings).")
            self._maybe_train(ctx)
            return
        version = self.registry.register(self.name, result.value, metrics={"points": float(len(self._train_x))},
                                         source=result.key)
        self.models += 1
        if isinstance(self.simulate, Surrogate) and self.simulate.retrain_every == 0:
            self.simulate.set_model(result.value, version.version)  # one model serves both
        remaining = np.array([i for i in range(len(self.candidates)) if i not in self.submitted], dtype=int)
        if len(remaining):
            self._rank_round += 1
            self._ranking = {}
            self._rank_rows = remaining
            members = self._needs_members()
            parts = [p for p in np.array_split(remaining, max(1, min(self.infer_chunks, len(remaining)))) if len(p)]
            self._rank_parts = len(parts)
            for n, part in enumerate(parts):
                ctx.submit(Function(predict_rows, ((version.path, version.sha256), self.x[part], members),
                                    pool=self.infer_pool,
                                    tags=(f"learner:{self.name}:infer", f"round={self._rank_round}", f"part={n}")))
        else:
            self.training = False
            self._maybe_train(ctx)

    def _ranked(self, result: Any, ctx: Any) -> None:
        round_ = int(next(t for t in result.tags if t.startswith("round="))[6:])
        if round_ != self._rank_round:
            return
        if not result.ok:  # this ranking failed: keep the current queue, let the next model try
            self.failed_rankings += 1
            if self.failed_rankings == 1:  # (before: without a word; the run went on in random order)
                _say(f"learner {self.name!r}: ranking the pool with the new model failed ({type(result.error).__name__}: "
                     f"{result.error}); the current order stands until the next model (failures counted in "
                     ".failed_rankings).")
            self._rank_round += 1
            self.training = False
            self._maybe_train(ctx)
            return
        self._ranking[int(next(t for t in result.tags if t.startswith("part="))[5:])] = result.value
        if len(self._ranking) < self._rank_parts:
            return
        parts = [self._ranking[i] for i in sorted(self._ranking)]
        mean = np.concatenate([p[0] for p in parts])
        std = np.concatenate([p[1] for p in parts])
        members = np.concatenate([p[2] for p in parts], axis=1) if len(parts[0]) > 2 else None
        rows = self._rank_rows
        assert rows is not None
        exclude = [k for k, i in enumerate(rows.tolist()) if i in self.submitted]
        depth = min(len(rows) - len(exclude), max(2 * self.retrain_after, 2 * self.slots))
        seen = list(self.values.values())
        if isinstance(self.acquisition, Portfolio):
            picks = self.acquisition.select(mean, std, depth, seen=seen, members=members, features=self.x[rows],
                                            diversity=self.diversity, exclude=exclude, ids=rows.tolist())
        else:
            best = (min(seen) if self.goal == "min" else max(seen)) if seen else None
            picks = select(self.acquisition, mean, std, depth, goal=self.goal, best=best, members=members,
                           features=self.x[rows] if self.diversity > 0 else None, diversity=self.diversity,
                           exclude=exclude, seed=self.rng)
        head = [int(rows[p]) for p in picks]
        chosen = set(head)
        self.queue = head + [i for i in self.queue if i not in chosen]
        self.rankings += 1
        self.training = False  # train -> rank -> select is one step; the next model may start now
        self._maybe_train(ctx)
        self._fill(ctx)

    # ---- helpers -------------------------------------------------------------------------------------
    def _promising(self, answer: float) -> bool:
        """Could this surrogate answer enter the best ``verify_top`` values so far (give or take ``verify_margin``)?"""
        if self.verify_top <= 0:
            return False
        ranked = sorted(self.values.values(), reverse=self.goal == "max")
        if len(ranked) < self.verify_top:
            return True
        edge = ranked[self.verify_top - 1]
        if self.goal == "min":
            return answer < edge + self.verify_margin
        return answer > edge - self.verify_margin

    def _needs_members(self) -> bool:
        acqs = (self.acquisition.members.values() if isinstance(self.acquisition, Portfolio)
                else [self.acquisition])
        return any(a.sequential for a in acqs)

    def _maybe_train(self, ctx: Any) -> None:
        if self.training or len(self._train_x) < self.min_train:
            return
        if (self.models or self.failed_trainings) and self._new < self.retrain_after:
            return
        if self.simulations >= self.budget and self.in_flight == 0:
            return  # nothing left to choose
        idx = np.asarray(self._train_x, dtype=int)
        y = np.asarray([self.values[i] for i in self._train_x])
        self.training = True
        self._new = 0
        ctx.submit(training_task(self.model, self.x[idx], y, pool=self.train_pool,
                                 tags=(f"learner:{self.name}:train",)))

    def _fill(self, ctx: Any) -> None:
        while self.in_flight < self.slots and self.simulations < self.budget and self.queue:
            index = self.queue.pop(0)
            if index in self.submitted:
                continue
            self.submitted.add(index)
            options = dict(self.task_options)
            options["pool"] = self.pool
            options["tags"] = (*options.get("tags", ()), f"learner:{self.name}", candidate_tag(index))
            args = self.args(self.candidates[index])
            if isinstance(self.simulate, Surrogate):
                future = self.simulate.submit_task(ctx, args, {}, **options)
                if future.substituted:
                    self.substituted[index] = answer = future.result()
                    self.order.append((index, "surrogate"))
                    if not self._promising(answer):
                        continue
                    self.verified += 1  # an answer good enough to matter is simulated anyway
                    future = self.simulate.submit_task(ctx, args, {}, force=True, **options)
            else:
                future = ctx.submit(Function(self.simulate, args, **options))
            self.keys[future.task_id] = index
            self.in_flight += 1
            self.simulations += 1

    # ---- results ---------------------------------------------------------------------------------------
    def best(self) -> tuple[Any, float] | None:
        """The best simulated candidate and its value."""
        return best_found(self.values, self.candidates, self.goal)
