"""The ``acquire`` steering rule: a YAML pipeline chooses what to run next with an acquisition function.

The rule drives an on-demand stage with one parameter over a list of numeric candidates (numbers
or lists of numbers, which are also the model's features): it submits ``first`` random ones, and
after each batch fits a model with an uncertainty and submits the next ``batch`` picked by the
acquisition function named in the spec (any name `steerflow.learn.acquisition.names()` lists:
random, greedy, ucb, ei, pi, thompson), until ``budget`` tasks ran::

    stages:
      - name: evaluate
        function: mysteps:objective
        args: ["{x}"]
        when: on-demand
        params: [x]
    rules:
      - name: acquire
        params: {stage: evaluate, candidates: [[0.1, 2], [0.3, 1], ...], acquisition: ucb,
                 options: {kappa: 2}, budget: 40, batch: 4, goal: min}

The model is small and fits in the steering thread: this is for pipelines of modest pools; a
Python campaign with `steerflow.learn.ActiveLearner` trains as tasks instead.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..agents import Result, SteeringError, on_result, on_start
from ..learn.acquisition import best_found
from .rules import Rule, RuleError, register


@register("acquire")
class Acquire(Rule):
    """Run the on-demand ``stage`` on the ``candidates`` an acquisition function picks, ``batch`` at a time."""

    def __init__(self, stage: str, candidates: Sequence[Any], acquisition: str = "ucb",
                 options: Mapping[str, Any] | None = None, budget: int = 20, batch: int = 4, first: int | None = None,
                 goal: str = "min", key: str | None = None, model: str = "forest", seed: int = 0,
                 diversity: float = 0.0) -> None:
        from ..learn import acquisition as acq
        from ..learn import make_model

        if not isinstance(stage, str) or not stage:
            raise RuleError("stage", f"stage must name an on-demand stage, got {stage!r}.")
        try:
            self.x = np.array([np.atleast_1d(np.asarray(c, dtype=float)) for c in candidates])
        except (TypeError, ValueError):
            raise RuleError("candidates", "candidates must be numbers or lists of numbers of one length "
                                          "(they are the model's features).") from None
        if self.x.ndim != 2 or not len(self.x):
            raise RuleError("candidates", "give at least one candidate; every candidate needs the same length.")
        try:
            self.acquisition = acq.get(acquisition, **dict(options or {}))
        except (ValueError, TypeError) as exc:
            raise RuleError("acquisition", str(exc)) from None
        for name, value, low in (("budget", budget, 1), ("batch", batch, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise RuleError(name, f"{name} must be an integer >= {low}, got {value!r}.")
        if goal not in ("min", "max"):
            raise RuleError("goal", f"goal must be 'min' (lowest is best) or 'max', got {goal!r}.")
        self.stage, self.candidates, self.goal, self.key = stage, list(candidates), goal, key
        self.budget, self.batch = min(budget, len(self.candidates)), batch
        self.first = min(self.budget, first if first is not None else max(batch, 2))
        try:
            make_model(model)
        except (ValueError, TypeError) as exc:
            raise RuleError("model", str(exc)) from None
        self.model, self.seed, self.diversity = model, seed, diversity
        self._told_not_finite = False
        self.rng = np.random.default_rng(seed)
        self.submitted: list[int] = []
        self.values: dict[int, float] = {}
        self._index: dict[int, int] = {}  # task key -> candidate index
        self.in_flight = 0

    def check(self, spec: Any) -> None:
        stage = next((s for s in spec.stages if s.name == self.stage), None)
        if stage is None:
            raise RuleError("stage", f"There is no stage named {self.stage!r}; stages: "
                                     f"{', '.join(spec.stage_names())}.")
        if not stage.on_demand or len(stage.declared) != 1:
            raise RuleError("stage", f"Stage {self.stage!r} must be 'when: on-demand' with exactly one parameter "
                                     "(params: [x]): the rule gives it one candidate per task.")

    @on_start
    def _begin(self, ctx: Any) -> None:
        self._submit(self.rng.permutation(len(self.candidates))[:self.first].tolist())

    @on_result()
    def _collect(self, result: Result, ctx: Any) -> None:
        index = self._index.pop(result.key, None)
        if index is None:
            return
        self.in_flight -= 1
        if result.ok:
            score = self._score(result)
            if math.isfinite(score):
                self.values[index] = score
            elif not self._told_not_finite:  # no label for the model (it would fail every fit): left out
                self._told_not_finite = True
                print(f"steerflow: acquire: task {result.key} returned {score}, which the model cannot learn "
                      "from; such results are left out of its fits.", file=sys.stderr, flush=True)
            result.handled = True
        if self.in_flight == 0 and len(self.submitted) < self.budget:
            self._submit(self._next())

    def _next(self) -> list[int]:
        from ..learn import make_model, select

        done = [i for i in self.submitted if i in self.values]
        k = min(self.batch, self.budget - len(self.submitted))
        if len(done) < 2:
            rest = [i for i in self.rng.permutation(len(self.candidates)).tolist() if i not in self.submitted]
            return rest[:k]
        model = make_model(self.model).fit(self.x[done], np.array([self.values[i] for i in done]))
        mean, std = model.predict(self.x)
        members = model.members(self.x) if self.acquisition.sequential and hasattr(model, "members") else None
        seen = [self.values[i] for i in done]
        best = min(seen) if self.goal == "min" else max(seen)
        return select(self.acquisition, mean, std, k, goal=self.goal, best=best, members=members,
                      features=self.x if self.diversity else None, diversity=self.diversity,
                      exclude=self.submitted, seed=self.rng).tolist()

    def _submit(self, indices: list[int]) -> None:
        pipeline = self._need_pipeline()
        param = pipeline.stage(self.stage).declared[0]
        for i in indices:
            for future in pipeline.submit_stage(self.stage, {param: self.candidates[i]}):
                self._index[future.task_id] = i
                self.in_flight += 1
            self.submitted.append(i)

    def _score(self, result: Result) -> float:
        value = result.value
        if self.key is not None:
            if not isinstance(value, Mapping) or self.key not in value:
                raise SteeringError(f"acquire: task {result.key} returned {value!r:.60}, which has no key "
                                    f"{self.key!r}; return a dict with it or change the rule's key.")
            value = value[self.key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SteeringError(f"acquire: task {result.key} returned {value!r:.60}, not a number; return a number "
                                "(or a dict and give the rule a key).")
        return float(value)

    def best(self) -> tuple[Any, float] | None:
        """The best simulated candidate and its value."""
        return best_found(self.values, self.candidates, self.goal)
