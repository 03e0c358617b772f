"""UQ-gated surrogates (ML-in): a model answers instead of an expensive function where it is sure enough.

Follows Proxima (Zamora et al., ICS 2021): each real call made while a model exists is also a
check of the model, giving a pair (uncertainty u, observed error e). With the last ``window``
pairs, alpha = mean(e / u); the threshold starts at ``target / alpha / 2`` and after each check
moves by ``-(mean recent error - target) / alpha``, never below 0 (nor above twice the largest
recent uncertainty, where it would change no decision). ``target`` is ``aim`` (0.8) times the
bound: the recent mean error fluctuates around the target, so aiming at the bound itself
would overshoot it about half the time. A call whose uncertainty is
under the threshold gets the model's answer, except for a random ``audit_fraction`` of them
that run the real function anyway: their errors are the honest estimate of the substituted
answers' error, reported against the bound.

Guard rails: no substitution before ``min_points`` real points; inputs the model cannot judge
(the featurizer fails, NaN or infinite features, a wrong number of features, or features
outside the data's range while there are fewer than ``domain_points`` points) go to the real
function and are counted by reason, never answered by the model.

Retraining: every ``retrain_every`` new real points (0: never; models then come from
`set_model`, e.g. a learner's), in the background, so callers never wait: a thread when called in-process, or, once `attach`ed to a campaign, a training task in
its own pool whose result is swapped in by the surrogate's agent (so a resumed campaign makes
the same decisions again). Statistics are live (``.stats``) and, when attached, in the journal
(meta ``surrogate:NAME``, the latest; and the ``series`` table, name ``surrogate:NAME``, their
history: time, calls, audits, mean audited error, recent error, bound, substitution rate,
threshold, thinned so that a long run keeps a few thousand rows); trained models go to the
model registry.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .models import checked_prediction, fit_model, make_model

__all__ = ["Controller", "Surrogate", "SurrogateStats", "surrogate"]

SERIES_FIELDS = ("calls", "audits", "audit_error", "recent_error", "bound", "substitution_rate", "threshold")
SERIES_MIN_GAP_S = 1.0  # journaled history: at most one row a second,
SERIES_POINTS = 500  # and at most about this many per e-fold of run time (rows ~ 500 ln(T / 500 s) past 500 s)


def series_due(now: float, first: float | None, last: float | None) -> bool:
    """Whether a history row is due at ``now``: rows thin out as the run grows old, so a day keeps ~3,000."""
    if first is None or last is None:
        return True
    return now - last >= max(SERIES_MIN_GAP_S, (now - first) / SERIES_POINTS)


class Controller:
    """Proxima's error-bound controller: the uncertainty threshold under which the model answers."""

    def __init__(self, bound: float, window: int = 8, min_pairs: int = 3, aim: float = 0.8) -> None:
        if not bound > 0:
            raise ValueError(f"error_bound={bound!r}: give the largest acceptable mean error, a number > 0.")
        if not 0 < aim <= 1:
            raise ValueError(f"aim={aim!r}: give the fraction of the bound the controller aims at, in (0, 1].")
        self.bound, self.min_pairs, self.aim = float(bound), min_pairs, aim
        self.pairs: deque[tuple[float, float]] = deque(maxlen=window)
        self.threshold: float | None = None
        self.alpha = math.nan

    def observe(self, uncertainty: float, error: float) -> None:
        """One check of the model against the real function; moves the threshold."""
        self.pairs.append((max(float(uncertainty), 1e-12), abs(float(error))))
        if len(self.pairs) < self.min_pairs:
            return
        self.alpha = max(sum(e / u for u, e in self.pairs) / len(self.pairs), 1e-12)
        recent = sum(e for _, e in self.pairs) / len(self.pairs)
        target = self.aim * self.bound
        if self.threshold is None:
            self.threshold = target / self.alpha / 2.0
        else:
            self.threshold = max(0.0, self.threshold - (recent - target) / self.alpha)
        # Past the largest uncertainty seen, a higher threshold changes no decision; it would only
        # make the way back slow once errors grow.
        self.threshold = min(self.threshold, 2.0 * max(u for u, _ in self.pairs))

    def confident(self, uncertainty: float) -> bool:
        return self.threshold is not None and uncertainty <= self.threshold


@dataclass
class SurrogateStats:
    """What the surrogate did; ``mean_audit_error`` is the estimate to compare with ``error_bound``."""

    name: str
    error_bound: float
    real_calls: int = 0
    surrogate_calls: int = 0
    audits: int = 0
    checks: int = 0  # real calls whose model prediction fed the controller (audits included)
    fallbacks: dict[str, int] = field(default_factory=dict)
    points: int = 0
    retrains: int = 0
    retrain_errors: int = 0
    model_version: int = 0
    threshold: float | None = None
    alpha: float | None = None
    real_s: float = 0.0
    surrogate_s: float = 0.0
    audit_error_sum: float = 0.0
    audit_error_max: float = 0.0

    @property
    def calls(self) -> int:
        return self.real_calls + self.surrogate_calls

    @property
    def substitution_rate(self) -> float:
        return self.surrogate_calls / self.calls if self.calls else 0.0

    @property
    def mean_real_s(self) -> float:
        return self.real_s / self.real_calls if self.real_calls else 0.0

    @property
    def mean_audit_error(self) -> float | None:
        return self.audit_error_sum / self.audits if self.audits else None

    @property
    def time_saved_s(self) -> float:
        return self.surrogate_calls * self.mean_real_s - self.surrogate_s

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(calls=self.calls, substitution_rate=self.substitution_rate, mean_real_s=self.mean_real_s,
                   mean_audit_error=self.mean_audit_error, time_saved_s=self.time_saved_s)
        return out


class Surrogate:
    """An expensive function with a model in front of it. Call it, or `submit` it to a campaign.

    ``featurize(*args, **kwargs)`` gives one flat feature vector per call (default: the
    positional arguments as floats); ``target(output)`` the number the model learns (default:
    ``float``). ``model``: a name ("forest", "extra", "gp"), a model object, or a factory.
    """

    def __init__(self, fn: Callable[..., Any], *, error_bound: float,
                 featurize: Callable[..., Any] | None = None, model: Any = "forest",
                 target: Callable[[Any], float] = float, audit_fraction: float = 0.1, min_points: int = 20,
                 retrain_every: int = 10, window: int = 8, domain_points: int = 100, domain_margin: float = 0.05,
                 seed: int = 0, name: str | None = None) -> None:
        if not 0.0 <= audit_fraction <= 1.0:
            raise ValueError(f"audit_fraction={audit_fraction}: give a fraction between 0 and 1.")
        for label, value, low in (("min_points", min_points, 2), ("retrain_every", retrain_every, 0),
                                  ("window", window, 1), ("domain_points", domain_points, 0)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"Surrogate: {label}={value!r}; give a whole number >= {low}"
                                 + (" (0: models come from set_model)." if label == "retrain_every" else "."))
        if not (isinstance(domain_margin, (int, float)) and 0.0 <= domain_margin < math.inf):
            raise ValueError(f"Surrogate: domain_margin={domain_margin!r}; give a fraction >= 0 of the data's range.")
        if not callable(fn):
            raise TypeError(f"Surrogate: {fn!r} is not a function; give the expensive function to stand in for.")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "surrogate")
        self.featurize = featurize or (lambda *args, **kwargs: [float(a) for a in args])
        self.model_spec = model
        self.target = target
        self.audit_fraction, self.min_points, self.retrain_every = audit_fraction, min_points, retrain_every
        self.domain_points, self.domain_margin = domain_points, domain_margin
        self.controller = Controller(error_bound, window)
        self.stats = SurrogateStats(self.name, float(error_bound))
        self.model: Any = None
        self._rng = np.random.default_rng(seed)
        self._x: list[np.ndarray] = []
        self._y: list[float] = []
        self._dim: int | None = None
        self._new_points = 0
        self._training = False
        self._lock = threading.RLock()
        self._campaign: Any = None
        self._train_options: dict[str, Any] = {}
        self._task_options: dict[str, Any] = {}
        self._pending: dict[int, tuple[np.ndarray | None, float | None, float | None, bool]] = {}
        self._registry: Any = None
        self._last_journal = 0.0
        self._series_first: float | None = None  # monotonic times of the first and the latest history row
        self._series_last: float | None = None
        self._series_calls = -1  # calls at the latest history row: a row only when something happened
        self._thread: threading.Thread | None = None
        self.__wrapped__ = fn
        self.__doc__ = getattr(fn, "__doc__", None)

    # ---- in-process use ----------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        x, decision, mean, std = self._decide(args, kwargs)
        if decision == "surrogate":
            return float(mean)  # type: ignore[arg-type]
        started = time.perf_counter()
        value = self.fn(*args, **kwargs)
        self._record(x, value, time.perf_counter() - started, mean, std, decision == "audit")
        self._maybe_retrain()
        return value

    def predict(self, *args: Any, **kwargs: Any) -> tuple[float, float] | None:
        """The current model's (mean, std) for these arguments, or None when it cannot judge them."""
        x, reason = self._features(args, kwargs, count=False)
        model = self.model
        if reason is not None or model is None:
            return None
        mean, std = checked_prediction(model, x.reshape(1, -1))
        return float(mean[0]), float(std[0])

    def observe(self, args: tuple, kwargs: dict, value: Any, seconds: float = 0.0) -> None:
        """Add a real result obtained elsewhere (it trains the model, it is not a check)."""
        x, reason = self._features(args, kwargs, count=False)
        if reason in (None, "domain"):  # a point outside the data so far widens it (before: it was dropped, so
            self._add_point(x, value)   # only the first observed point, and those near it, were ever kept)
            self._maybe_retrain()

    # ---- as campaign tasks ---------------------------------------------------------------------
    def attach(self, campaign: Any, train_pool: str = "train", registry: Any = True,
               train_options: dict[str, Any] | None = None, **task_options: Any) -> Surrogate:
        """Retrain as tasks of ``campaign`` in ``train_pool``; journal the statistics; keep models in the registry.

        ``task_options`` (pool, cores, timeout …) describe the real function's tasks for `submit`.
        ``registry``: True for the campaign's own `ModelRegistry`, a registry, or None.
        """
        from .. import agents
        from ..task import Function
        from .registry import ModelRegistry

        Function(print, pool=train_pool, **(train_options or {}))  # validate now, with the usual messages
        if task_options:
            Function(print, **task_options)
        self._campaign = campaign
        self._train_options = {"pool": train_pool, **(train_options or {})}
        self._task_options = dict(task_options)
        self._registry = ModelRegistry(campaign) if registry is True else registry
        tag = f"surrogate:{self.name}"
        surrogate = self

        class _Agent(agents.Agent):
            @agents.on_result(tag=tag)
            def real(self, result: Any, ctx: Any) -> None:
                surrogate._on_real_result(result)

            @agents.on_result(tag=f"{tag}:train")
            def trained(self, result: Any, ctx: Any) -> None:
                surrogate._on_trained(result)

            @agents.on_end
            def end(self, ctx: Any) -> None:
                surrogate._journal(force=True, final=True)

        campaign.add_agent(_Agent())
        return self

    def submit(self, where: Any, *args: Any, **kwargs: Any) -> Future:
        """A campaign task for ``fn(*args, **kwargs)``, or a future the model resolves at once (no task runs).

        ``where``: the Campaign or a handler's ctx. The returned future has ``substituted`` True
        when the model answered; such answers are journaled as steering events
        ``surrogate:NAME`` (with the task's tags), so the run can be read back.
        """
        return self.submit_task(where, args, kwargs)

    def submit_task(self, where: Any, args: tuple, kwargs: dict, force: bool = False, **options: Any) -> Future:
        """`submit` with task options for this call (pool, tags, timeout …) on top of ``attach``'s.

        ``force``: run the real function whatever the model says (e.g. to verify a promising
        answer); the model's prediction still checks it.
        """
        from ..task import Function

        if self._campaign is None:
            raise RuntimeError(f"Surrogate {self.name!r} is not attached to a campaign: call "
                               f".attach(campaign, pool=...) first, or call it in-process.")
        merged = {**self._task_options, **options}
        merged["tags"] = (*self._task_options.get("tags", ()), *options.get("tags", ()), f"surrogate:{self.name}")
        x, decision, mean, std = self._decide(args, kwargs, force)
        if decision == "surrogate":
            done: Future = Future()
            done.set_result(float(mean))  # type: ignore[arg-type]
            done.substituted = True  # type: ignore[attr-defined]
            ctx = getattr(where, "ctx", where)
            ctx.emit(f"surrogate:{self.name}", {"tags": list(merged["tags"]), "value": float(mean),  # type: ignore
                                                "std": float(std), "time": time.time()})  # type: ignore[arg-type]
            return done
        future = where.submit(Function(self.fn, tuple(args), dict(kwargs), **merged))
        future.substituted = False
        self._pending[future.task_id] = (x, mean, std, decision == "audit")
        return future

    def _on_real_result(self, result: Any) -> None:
        x, mean, std, audit = self._pending.pop(result.key, (None, None, None, False))
        if x is None:  # e.g. submitted before a resume: recompute what we can
            x, reason = self._features(tuple(result.args), dict(result.kwargs), count=False)
            if reason is not None:
                x = None
        if result.ok:
            self._record(x, result.value, result.duration, mean, std, audit)
            self._maybe_retrain()

    # ---- the decision ----------------------------------------------------------------------------
    def _features(self, args: tuple, kwargs: dict, count: bool = True) -> tuple[np.ndarray, str | None]:
        reason = None
        try:
            x = np.asarray(self.featurize(*args, **kwargs), dtype=float).ravel()
        except Exception:  # noqa: BLE001 - an input the featurizer cannot read goes to the real function
            x, reason = np.zeros(0), "featurize"
        if reason is None:
            if self._dim is not None and x.size != self._dim:
                reason = "shape"
            elif not np.all(np.isfinite(x)):
                reason = "nan"
            elif len(self._y) < self.domain_points and self._x and self._outside(x):
                reason = "domain"
        if reason is not None and count:
            with self._lock:
                self.stats.fallbacks[reason] = self.stats.fallbacks.get(reason, 0) + 1
        return x, reason

    def _outside(self, x: np.ndarray) -> bool:
        data = np.asarray(self._x)
        low, high = data.min(axis=0), data.max(axis=0)
        pad = self.domain_margin * np.maximum(high - low, 1e-12)
        return bool(np.any(x < low - pad) or np.any(x > high + pad))

    def _decide(self, args: tuple, kwargs: dict,
                force: bool = False) -> tuple[np.ndarray | None, str, float | None, float | None]:
        """("surrogate" | "audit" | "check" | "real", prediction) for one call."""
        x, reason = self._features(args, kwargs)
        if reason in ("featurize", "shape", "nan"):
            return None, "real", None, None  # not a point the model could learn from
        model = self.model
        if reason is not None or model is None or len(self._y) < self.min_points:
            return x, "real", None, None
        started = time.perf_counter()
        try:
            mean, std = checked_prediction(model, x.reshape(1, -1))
            m, s = float(mean[0]), float(std[0])
        except Exception as exc:  # noqa: BLE001 - the user's model: it raised, or answered nonsense
            self._model_failed(exc)  # (before: raised in the caller, an agent: it stopped the campaign, each resume)
            m = s = math.nan
        with self._lock:
            self.stats.surrogate_s += time.perf_counter() - started
            if not (math.isfinite(m) and math.isfinite(s)):
                self.stats.fallbacks["model"] = self.stats.fallbacks.get("model", 0) + 1
                return x, "real", None, None
            if not force and self.controller.confident(s):
                if self._rng.random() >= self.audit_fraction:
                    self.stats.surrogate_calls += 1
                    self._journal()
                    return x, "surrogate", m, s
                return x, "audit", m, s
        return x, "check", m, s

    def _model_failed(self, exc: Exception) -> None:
        """Say once that the model's prediction failed; the call is answered by the real function (a fallback)."""
        if not self.stats.fallbacks.get("model"):
            import sys

            print(f"steerflow: surrogate {self.name!r}: its model's prediction failed ({type(exc).__name__}: {exc}); "
                  "such calls run the real function (counted in fallbacks['model']).", file=sys.stderr, flush=True)

    def _record(self, x: np.ndarray | None, value: Any, seconds: float, mean: float | None, std: float | None,
                audit: bool) -> None:
        with self._lock:
            self.stats.real_calls += 1
            self.stats.real_s += seconds
            if x is None:
                self._journal()
                return
            y = self._add_point(x, value)
            if y is not None and mean is not None and std is not None:
                error = abs(mean - y)
                self.controller.observe(std, error)
                self.stats.checks += 1
                if audit:
                    self.stats.audits += 1
                    self.stats.audit_error_sum += error
                    self.stats.audit_error_max = max(self.stats.audit_error_max, error)
                self.stats.threshold = self.controller.threshold
                self.stats.alpha = None if math.isnan(self.controller.alpha) else self.controller.alpha
            self._journal()

    def _add_point(self, x: np.ndarray, value: Any) -> float | None:
        try:
            y = float(self.target(value))
        except Exception:  # noqa: BLE001 - an output the model cannot learn is not a point
            return None
        if not math.isfinite(y):
            return None
        with self._lock:
            if self._dim is None:
                self._dim = x.size
            self._x.append(x)
            self._y.append(y)
            self._new_points += 1
            self.stats.points = len(self._y)
        return y

    # ---- retraining ------------------------------------------------------------------------------
    def set_model(self, model: Any, version: int | None = None) -> None:
        """Answer with ``model`` from now on (e.g. a learner's newest registered version).

        With ``retrain_every=0`` this is the only way the surrogate gets a model: one model
        serves the learner and the surrogate, trained once.
        """
        with self._lock:
            self.model = model
            self.stats.retrains += 1
            self.stats.model_version = version if version is not None else self.stats.model_version + 1
        self._journal(force=True)

    def _maybe_retrain(self) -> None:
        if self.retrain_every == 0:
            return
        with self._lock:
            n = len(self._y)
            due = n >= self.min_points and (self.model is None or self._new_points >= self.retrain_every)
            if not due or self._training:
                return
            self._training = True
            self._new_points = 0
            x, y = np.asarray(self._x), np.asarray(self._y)
        if self._campaign is not None:
            from ..task import Function

            options = dict(self._train_options)
            options["tags"] = (*options.get("tags", ()), f"surrogate:{self.name}:train")
            self._campaign.submit(Function(fit_model, (self.model_spec, x, y), **options))
        else:
            thread = threading.Thread(target=self._train_here, args=(x, y), daemon=True,
                                      name=f"steerflow-surrogate-{self.name}")
            thread.start()
            self._thread = thread

    def _train_here(self, x: np.ndarray, y: np.ndarray) -> None:
        try:
            model = make_model(self.model_spec).fit(x, y)
        except Exception as exc:  # noqa: BLE001 - keep the old model; the count and a first warning say so
            self._retrain_failed(f"{type(exc).__name__}: {exc}")
            return
        self._swap(model, None)

    def _on_trained(self, result: Any) -> None:
        if result.ok:
            self._swap(result.value, result.key)
        else:
            self._retrain_failed(f"training task {result.key}: {type(result.error).__name__}: {result.error}")

    def _retrain_failed(self, why: str) -> None:
        """Keep the old model; say so on the first failure, since the same data will likely fail again."""
        with self._lock:
            self.stats.retrain_errors += 1
            self._training = False
            first = self.stats.retrain_errors == 1
        if first:
            import sys

            text = why.strip().splitlines()[-1] if why.strip() else why
            print(f"steerflow: surrogate {self.name!r} could not retrain its model ({text[:500]}); it keeps "
                  f"answering with its previous model, if any, and counts failures in stats.retrain_errors.",
                  file=sys.stderr, flush=True)

    def _swap(self, model: Any, source: int | None) -> None:
        with self._lock:
            self.model = model
            self._training = False
            self.stats.retrains += 1
            self.stats.model_version += 1
        if self._registry is not None:
            version = self._registry.register(self.name, model, metrics={"points": float(len(self._y))},
                                              source=source)
            self.stats.model_version = version.version
        self._journal(force=True)
        self._maybe_retrain()  # points that came in while it trained may already call for the next one

    def wait_trained(self, timeout: float = 60.0) -> bool:
        """Wait until no in-process retrain is running (for tests and scripts; callers never need to)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._training:
                    return True
            thread = self._thread
            if thread is not None and thread.is_alive():
                thread.join(timeout=0.05)
            else:
                time.sleep(0.005)
        return False

    def _journal(self, force: bool = False, final: bool = False) -> None:
        campaign = self._campaign
        if campaign is None:
            return
        now = time.monotonic()
        if force or now - self._last_journal > 0.5:
            import json

            self._last_journal = now
            stats = self.stats.as_dict()
            campaign.journal.put("meta", f"surrogate:{self.name}", json.dumps(stats))
            if stats["calls"] != self._series_calls and (final or series_due(now, self._series_first,
                                                                              self._series_last)):
                self._journal_series(campaign, stats, now)

    def _journal_series(self, campaign: Any, stats: dict[str, Any], now: float) -> None:
        from ..journal import pack_series

        if self._series_first is None:
            import json

            self._series_first = now
            campaign.journal.put("meta", f"series:surrogate:{self.name}", json.dumps(SERIES_FIELDS))
        self._series_last, self._series_calls = now, stats["calls"]
        pairs = list(self.controller.pairs)
        recent = sum(e for _, e in pairs) / len(pairs) if pairs else None
        row = (stats["calls"], stats["audits"], stats["mean_audit_error"], recent, stats["error_bound"],
               stats["substitution_rate"], stats["threshold"])
        campaign.journal.put("series", f"surrogate:{self.name}", time.time(), pack_series(row))


def surrogate(fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """Decorator: ``@surrogate(error_bound=0.1, featurize=...)`` turns a function into a `Surrogate`."""
    def wrap(f: Callable[..., Any]) -> Surrogate:
        wrapped = Surrogate(f, **options)
        # The module attribute now names the Surrogate; pickling the real function by reference
        # (to run it as a task) finds it as NAME.__wrapped__.
        if "<locals>" not in getattr(f, "__qualname__", "<locals>"):
            f.__qualname__ = f"{f.__qualname__}.__wrapped__"
        return wrapped

    return wrap(fn) if fn is not None else wrap
