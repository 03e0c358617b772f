"""Named steering rules: agents that a YAML pipeline (or a Python campaign) switches on by name.

A rule is an `Agent` subclass registered under a name with `register`; it is built as
``cls(**params)`` with the parameters the spec gives, so its ``__init__`` signature is its
documentation (unknown or missing parameters are errors that name the parameter). Its handlers
are the usual decorated methods. Rules that act on pipeline *stages* get the built pipeline
through `Rule.attach` (every pipeline task is tagged with its stage's name) and may check a
loaded spec in `Rule.check`, so a wrong stage name fails when the spec loads, not mid-run.

Registered here: ``stop-when``, ``retry-failed``, ``top-k-refine`` and ``rebalance``; ``acquire`` (in
acquire.py) picks what an on-demand stage runs next with a `steerflow.learn` acquisition function.
"""

from __future__ import annotations

import difflib
import inspect
import math
import sys
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ..agents import Agent, Result, SteeringError, on_event, on_result
from ..errors import DependencyFailed, SteerflowError

STAGE_DONE = "stage-done"
"""The event a pipeline raises (payload: the stage's name) when every task of a stage has finished."""

_REGISTRY: dict[str, type[Rule]] = {}
P = TypeVar("P", bound="type[Rule]")


class RuleError(SteerflowError, ValueError):
    """A rule name or parameter is wrong; ``param`` names the parameter (None: the rule itself)."""

    def __init__(self, param: str | None, message: str) -> None:
        self.param = param
        super().__init__(message)


class Rule(Agent):
    """Base class of registered rules."""

    rule_name = ""
    pipeline: Any = None
    handles_failures = False  # rules watch results; one that deals with a failure sets result.handled

    def attach(self, pipeline: Any) -> None:
        """Called by a YAML pipeline before the run: the built pipeline (stages, their futures, resubmission)."""
        self.pipeline = pipeline

    def check(self, spec: Any) -> None:
        """Validate against a loaded spec (its stages); raise `RuleError` naming the parameter."""

    def _stage_of(self, result: Result) -> str | None:
        if self.pipeline is not None:
            return self.pipeline.stage_of(result)
        return result.tags[0] if result.tags else None

    def _need_pipeline(self) -> Any:
        if self.pipeline is None:
            raise SteeringError(f"Rule {self.rule_name!r} works on pipeline stages; use it from a YAML spec "
                                "(steerflow.pipelines.spec) or call attach(pipeline) first.")
        return self.pipeline


def register(name: str) -> Callable[[P], P]:
    """Class decorator: make an `Agent` subclass available to specs as ``rules: [{name: NAME}]``."""
    def add(cls: P) -> P:
        if not (isinstance(cls, type) and issubclass(cls, Agent)):
            raise TypeError(f"register({name!r}) decorates Agent subclasses, not {cls!r}.")
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"A rule named {name!r} is already registered ({_REGISTRY[name].__qualname__}).")
        cls.rule_name = name
        _REGISTRY[name] = cls
        return cls
    return add


def get(name: str) -> type[Rule]:
    """The rule class registered under ``name``; `RuleError` with a close match otherwise."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise RuleError(None, f"There is no rule named {name!r}.{hint} Known rules: "
                          f"{', '.join(sorted(_REGISTRY))}.") from None


def names() -> list[str]:
    """Registered rule names."""
    return sorted(_REGISTRY)


def describe() -> dict[str, str]:
    """Each registered rule's one-line description."""
    return {name: (inspect.getdoc(cls) or "").splitlines()[0] for name, cls in sorted(_REGISTRY.items())}


def create(name: str, params: Mapping[str, Any] | None = None) -> Rule:
    """Build a registered rule from its parameters, checking their names against its ``__init__``."""
    cls = get(name)
    params = dict(params or {})
    signature = inspect.signature(cls.__init__)
    accepted = [p for p in list(signature.parameters.values())[1:]
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    known = [p.name for p in accepted]
    if not any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        for param in params:
            if param not in known:
                close = difflib.get_close_matches(str(param), known, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise RuleError(param, f"Rule {name!r} has no parameter {param!r}.{hint} "
                                  f"Its parameters: {', '.join(known) or 'none'}.")
    for p in accepted:
        if p.default is p.empty and p.name not in params:
            raise RuleError(p.name, f"Rule {name!r} needs the parameter {p.name!r}.")
    try:
        return cls(**params)
    except RuleError:
        raise
    except (TypeError, ValueError) as exc:
        raise RuleError(None, f"Rule {name!r}: {exc}") from exc


# ---- parameter checks ------------------------------------------------------------------------

def _name(param: str, value: Any, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise RuleError(param, f"{param} must name a stage (a non-empty string), got {value!r}.")
    return value


def _number(param: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        hint = ""
        if isinstance(value, str):
            try:
                float(value)
                hint = " (YAML reads a number like 1e3 as text: write 1000 or 1.0e+3)"
            except ValueError:
                pass
        raise RuleError(param, f"{param} must be a number, got {value!r}{hint}.")
    return value


def _int(param: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise RuleError(param, f"{param} must be an integer >= {low}, got {value!r}.")
    return value


def _stage_exists(spec: Any, param: str, name: str | None) -> Any:
    if name is None:
        return None
    stage = spec.stage(name)
    if stage is None:
        close = difflib.get_close_matches(name, spec.stage_names(), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise RuleError(param, f"There is no stage named {name!r}.{hint} Stages: {', '.join(spec.stage_names())}.")
    return stage


def _score(rule: str, result: Result, key: str | None) -> float:
    value = result.value
    if key is not None:
        if not isinstance(value, Mapping) or key not in value:
            raise SteeringError(f"{rule}: task {result.key} ({result.name}) returned {_short(value)}, which has no "
                                f"key {key!r}; return a dict with it or change the rule's key.")
        value = value[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        where = f"[{key!r}]" if key is not None else ""
        raise SteeringError(f"{rule}: task {result.key} ({result.name}) returned{where} {_short(value)}, not a "
                            "number; return a number (or a dict and give the rule a key).")
    return float(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---- the rules ------------------------------------------------------------------------------

@register("stop-when")
class StopWhen(Rule):
    """Stop the campaign once a result of ``stage`` (or its ``key`` field) is above ``above`` or below ``below``."""

    def __init__(self, stage: str, above: float | None = None, below: float | None = None,
                 key: str | None = None) -> None:
        self.stage = _name("stage", stage)
        self.above = _number("above", above)
        self.below = _number("below", below)
        if self.above is None and self.below is None:
            raise RuleError("above", "stop-when needs a threshold: give above, below or both.")
        if key is not None and not isinstance(key, str):
            raise RuleError("key", f"key must be a string naming a field of the results, got {key!r}.")
        self.key = key
        self.triggered: Result | None = None

    def check(self, spec: Any) -> None:
        _stage_exists(spec, "stage", self.stage)

    @on_result()
    def _watch(self, result: Result, ctx: Any) -> None:
        if not result.ok or self.triggered is not None or self._stage_of(result) != self.stage:
            return
        value = _score("stop-when", result, self.key)
        what = f"{self.stage} result {value:g} (task {result.key})"
        if self.above is not None and value > self.above:
            self.triggered = result
            ctx.stop(f"stop-when: {what} is above {self.above:g}")
        elif self.below is not None and value < self.below:
            self.triggered = result
            ctx.stop(f"stop-when: {what} is below {self.below:g}")


@register("retry-failed")
class RetryFailed(Rule):
    """Resubmit each failed task of ``stage`` (default: all) up to ``times`` more times, timeout × ``timeout_factor``.

    A failure it resubmits counts as handled (`steerflow run` exits 0 for it)."""

    def __init__(self, stage: str | None = None, times: int = 1, timeout_factor: float = 1.0) -> None:
        self.stage = _name("stage", stage, optional=True)
        self.times = _int("times", times, 1)
        factor = _number("timeout_factor", timeout_factor)
        if factor is None or factor < 1:
            raise RuleError("timeout_factor", f"timeout_factor must be a number >= 1, got {timeout_factor!r}.")
        self.timeout_factor = float(factor)
        self._origin: dict[int, int] = {}  # task key -> key of the first attempt
        self.retried: dict[int, int] = {}  # first attempt's key -> retries submitted

    def check(self, spec: Any) -> None:
        _stage_exists(spec, "stage", self.stage)

    @on_result()
    def _retry(self, result: Result, ctx: Any) -> None:
        if result.ok or result.cancelled or isinstance(result.error, DependencyFailed):
            return  # a cancelled task was meant to stop; a dependency's failure would only repeat
        pipeline = self._need_pipeline()
        stage = pipeline.stage_of(result)
        if stage is None or (self.stage is not None and stage != self.stage):
            return
        origin = self._origin.get(result.key, result.key)
        done = self.retried.get(origin, 0)
        if done >= self.times:
            return
        overrides: dict[str, Any] = {}
        timeout = pipeline.stage(stage).options.get("timeout")
        if timeout is not None and self.timeout_factor != 1.0:
            overrides["timeout"] = timeout * self.timeout_factor ** (done + 1)
        future = pipeline.resubmit(result, **overrides)
        result.handled = True
        self.retried[origin] = done + 1
        self._origin[future.task_id] = origin


@register("top-k-refine")
class TopKRefine(Rule):
    """When ``stage`` is done, submit the on-demand stage ``refine`` for each of its ``k`` best results."""

    def __init__(self, stage: str, refine: str, k: int = 1, key: str | None = None, order: str = "max") -> None:
        self.stage = _name("stage", stage)
        self.refine = _name("refine", refine)
        self.k = _int("k", k, 1)
        if key is not None and not isinstance(key, str):
            raise RuleError("key", f"key must be a string naming a field of the results, got {key!r}.")
        self.key = key
        if order not in ("max", "min"):
            raise RuleError("order", f"order must be 'max' (largest is best) or 'min', got {order!r}.")
        self.order = order
        self._scored: list[tuple[float, int, Any]] = []
        self.chosen: list[int] = []  # keys of the results that were refined
        self._fired = False
        self._told_nan = False

    def check(self, spec: Any) -> None:
        source = _stage_exists(spec, "stage", self.stage)
        target = _stage_exists(spec, "refine", self.refine)
        if not target.on_demand:
            raise RuleError("refine", f"Stage {self.refine!r} runs at the start; declare it with 'when: on-demand' "
                              "so that only this rule submits it.")
        offered = set(source.param_names) | {"result", "rank"}
        missing = sorted(set(target.declared) - offered)
        if missing:
            raise RuleError("refine", f"Stage {self.refine!r} expects the parameter(s) {', '.join(missing)}, but "
                              f"top-k-refine passes only {', '.join(sorted(offered))} (the parameters of "
                              f"{self.stage!r}, its result and its rank).")

    @on_result()
    def _collect(self, result: Result, ctx: Any) -> None:
        if result.ok and self._stage_of(result) == self.stage:
            score = _score("top-k-refine", result, self.key)
            if math.isnan(score):  # no rank (a NaN sorts anywhere: it was picked as the best)
                if not self._told_nan:
                    self._told_nan = True
                    print(f"steerflow: top-k-refine: task {result.key} ({result.name}) scored NaN; such results "
                          "are not ranked.", file=sys.stderr, flush=True)
                return
            self._scored.append((score, result.key, result.value))

    @on_event(STAGE_DONE)
    def _refine(self, stage: str, ctx: Any) -> None:
        pipeline = self._need_pipeline()
        if stage != self.stage or self._fired or not pipeline.complete(stage):
            return  # not complete any more: a retry of one of its tasks was submitted meanwhile
        self._fired = True
        sign = -1.0 if self.order == "max" else 1.0
        best = sorted(self._scored, key=lambda item: (sign * item[0], item[1]))[:self.k]
        for rank, (_, key, value) in enumerate(best, start=1):
            self.chosen.append(key)
            pipeline.submit_stage(self.refine, {**pipeline.params_of(key), "result": value, "rank": rank})


@register("rebalance")
class Rebalance(Rule):
    """When ``stage`` is done, set the pool quotas ``{pool: {cores: N, gpus: M}}``: its resources go to the next."""

    def __init__(self, stage: str, quotas: Mapping[str, Any]) -> None:
        self.stage = _name("stage", stage)
        if not isinstance(quotas, Mapping) or not quotas:
            raise RuleError("quotas", f"quotas must map pool names to {{cores: N, gpus: M}}, got {quotas!r}.")
        self.quotas: dict[str, tuple[int | None, int | None]] = {}
        for pool, quota in quotas.items():
            if not isinstance(quota, Mapping) or set(quota) - {"cores", "gpus"} or not quota:
                raise RuleError("quotas", f"quotas.{pool} must be a mapping with cores and/or gpus, got {quota!r}.")
            for field, value in quota.items():
                if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                    raise RuleError("quotas", f"quotas.{pool}.{field} must be an integer >= 0 or null, "
                                      f"got {value!r}.")
            self.quotas[str(pool)] = (quota.get("cores"), quota.get("gpus"))
        self._fired = False

    def check(self, spec: Any) -> None:
        _stage_exists(spec, "stage", self.stage)

    @on_event(STAGE_DONE)
    def _move(self, stage: str, ctx: Any) -> None:
        if stage != self.stage or self._fired or not self._need_pipeline().complete(stage):
            return
        self._fired = True
        for pool, (cores, gpus) in self.quotas.items():
            ctx.set_quota(pool, cores=cores, gpus=gpus)


from . import acquire  # noqa: E402,F401 - registers the "acquire" rule (acquisition functions from steerflow.learn)
