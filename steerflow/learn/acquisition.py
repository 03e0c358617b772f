"""Acquisition functions: which candidates to simulate next, given a model's mean and uncertainty.

Not to be confused with the YAML layer's *steering rules* (``stop-when``, ``retry-failed``):
those react to task outcomes; these rank candidates by a model. Each is registered by name
(``get("ucb", kappa=2)``), so a YAML pipeline or a command line can name one.

Conventions: ``goal`` is ``"min"`` or ``"max"`` (what the campaign looks for); scores are
always "higher = pick first". ``select`` picks a batch of ``k`` distinct indices from a discrete
pool, optionally trading score for diversity; ``propose`` does the same in a continuous box by
scoring random candidates drawn inside it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["AcquisitionFunction", "RandomChoice", "Greedy", "UCB", "ExpectedImprovement", "ProbabilityOfImprovement",
           "Thompson", "register", "get", "names", "select", "propose", "promote", "batch_spread",
           "best_found"]

_REGISTRY: dict[str, type[AcquisitionFunction]] = {}


def register(name: str) -> Callable[[type[AcquisitionFunction]], type[AcquisitionFunction]]:
    """Class decorator: make an acquisition function available by ``name`` (``get(name, **params)``)."""
    def add(cls: type[AcquisitionFunction]) -> type[AcquisitionFunction]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"An acquisition function named {name!r} is already registered ({_REGISTRY[name]}).")
        _REGISTRY[name] = cls
        cls.name = name
        return cls
    return add


def get(name: str | AcquisitionFunction, **params: Any) -> AcquisitionFunction:
    """An acquisition function by name (``"ucb"``, ``"ei"`` …) or the object itself."""
    if isinstance(name, AcquisitionFunction):
        return name
    cls = _REGISTRY.get(str(name).lower())
    if cls is None:
        raise ValueError(f"Unknown acquisition function {name!r}; registered: {', '.join(sorted(_REGISTRY))}.")
    return cls(**params)


def names() -> list[str]:
    return sorted(_REGISTRY)


class AcquisitionFunction:
    """Scores candidates for maximisation; ``select`` flips signs for ``goal="min"`` before calling it.

    ``sequential`` functions (Thompson sampling) are asked again for every pick of a batch.
    """

    name = "base"
    sequential = False

    def score(self, mean: np.ndarray, std: np.ndarray, best: float, rng: np.random.Generator,
              members: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"


@register("random")
class RandomChoice(AcquisitionFunction):
    """Random order: the baseline every other function must beat."""

    def score(self, mean, std, best, rng, members=None):  # type: ignore[override]
        return rng.random(len(mean))


@register("greedy")
class Greedy(AcquisitionFunction):
    """Exploit: the best predicted mean."""

    def score(self, mean, std, best, rng, members=None):  # type: ignore[override]
        return np.asarray(mean, dtype=float)


@register("ucb")
class UCB(AcquisitionFunction):
    """Upper confidence bound: mean + kappa * std (for a minimisation, the lower bound)."""

    def __init__(self, kappa: float = 1.0) -> None:
        if kappa < 0:
            raise ValueError(f"UCB(kappa={kappa}): kappa must be >= 0 (0 is greedy).")
        self.kappa = float(kappa)

    def score(self, mean, std, best, rng, members=None):  # type: ignore[override]
        return np.asarray(mean, dtype=float) + self.kappa * np.asarray(std, dtype=float)


def _normal_cdf_pdf(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    erf = np.vectorize(math.erf, otypes=[float])
    return 0.5 * (1.0 + erf(z / math.sqrt(2.0))), np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


@register("ei")
class ExpectedImprovement(AcquisitionFunction):
    """Expected improvement over the best value seen, with margin ``xi`` (Gaussian predictive)."""

    def __init__(self, xi: float = 0.0) -> None:
        self.xi = float(xi)

    def score(self, mean, std, best, rng, members=None):  # type: ignore[override]
        mean, std = np.asarray(mean, dtype=float), np.maximum(np.asarray(std, dtype=float), 1e-12)
        if not np.isfinite(best):
            return mean + std  # nothing seen yet: any improvement is infinite; fall back to optimism
        gain = mean - best - self.xi
        z = gain / std
        cdf, pdf = _normal_cdf_pdf(z)
        return gain * cdf + std * pdf


@register("pi")
class ProbabilityOfImprovement(AcquisitionFunction):
    """Probability of improving on the best value seen by more than ``xi``."""

    def __init__(self, xi: float = 0.0) -> None:
        self.xi = float(xi)

    def score(self, mean, std, best, rng, members=None):  # type: ignore[override]
        mean, std = np.asarray(mean, dtype=float), np.maximum(np.asarray(std, dtype=float), 1e-12)
        if not np.isfinite(best):
            return mean + std
        return _normal_cdf_pdf((mean - best - self.xi) / std)[0]


@register("thompson")
class Thompson(AcquisitionFunction):
    """Thompson sampling: each pick maximises one draw (a random ensemble member, else a Gaussian draw)."""

    sequential = True

    def score(self, mean, std, best, rng, members=None):  # type: ignore[override]
        if members is not None and len(members):
            return np.asarray(members[rng.integers(len(members))], dtype=float)
        return rng.normal(np.asarray(mean, dtype=float), np.asarray(std, dtype=float))


def _flip(goal: str, mean: Any, best: float | None, members: Any) -> tuple[np.ndarray, float, Any]:
    if goal not in ("min", "max"):
        raise ValueError(f"goal={goal!r}: say 'min' (look for the lowest value) or 'max'.")
    mean = np.asarray(mean, dtype=float)
    sign = -1.0 if goal == "min" else 1.0
    b = -math.inf if best is None else sign * float(best)
    return sign * mean, b, None if members is None else sign * np.asarray(members, dtype=float)


def select(acquisition: str | AcquisitionFunction, mean: Any, std: Any, k: int, *, goal: str = "min",
           best: float | None = None, members: Any = None, features: Any = None, diversity: float = 0.0,
           exclude: Sequence[int] | np.ndarray | None = None, seed: int | np.random.Generator | None = 0,
           ) -> np.ndarray:
    """Pick ``k`` distinct candidate indices (best first) from a pool's predictions.

    ``diversity`` in [0, 1] trades score for distance (``features`` needed): each pick after the
    first maximises ``(1 - diversity) * score rank + diversity * distance to the picks so far``,
    so a batch does not spend every simulation on near-duplicates. ``exclude``: indices already
    simulated or in flight.
    """
    acq = get(acquisition)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    up, best_up, members_up = _flip(goal, mean, best, members)
    sd = np.asarray(std, dtype=float)
    if up.ndim != 1:
        raise ValueError(f"mean must hold one prediction per candidate (a 1-D array), got shape {up.shape}.")
    n = len(up)
    if sd.shape != up.shape:
        raise ValueError(f"mean and std must have the same shape, got {up.shape} and {sd.shape}.")
    if np.any(sd < 0):
        raise ValueError(f"std must be a spread (>= 0); got {sd[sd < 0][0]!r} at index {int(np.argmax(sd < 0))}: "
                         "pass the model's standard deviation, not a signed error.")
    if not 0.0 <= diversity <= 1.0:
        raise ValueError(f"diversity={diversity}: give a number between 0 (pure score) and 1 (pure spread).")
    allowed = np.ones(n, dtype=bool)
    if exclude is not None and len(exclude):
        allowed[_indices("exclude", exclude, n)] = False
    k = int(min(k, allowed.sum()))
    if k <= 0:
        return np.zeros(0, dtype=int)
    feats = None
    if diversity > 0:
        if features is None:
            raise ValueError("select(diversity>0) needs features= (one row per candidate) to measure distance.")
        feats = _rows("features", features, n)
        scale = feats.std(axis=0)
        feats = feats / np.where(scale > 0, scale, 1.0)
    chosen: list[int] = []
    scores = None if acq.sequential else acq.score(up, sd, best_up, rng, members_up)
    min_dist = np.full(n, np.inf)
    for _ in range(k):
        s = acq.score(up, sd, best_up, rng, members_up) if acq.sequential else scores
        s = np.where(allowed, np.nan_to_num(np.asarray(s, dtype=float), nan=-np.inf), -np.inf)
        if feats is not None and chosen:
            valid = np.isfinite(s)
            ranks = np.zeros(n)
            order = np.argsort(s[valid])
            ranks_valid = np.empty(order.size)
            ranks_valid[order] = np.linspace(0.0, 1.0, order.size) if order.size > 1 else 1.0
            ranks[valid] = ranks_valid
            finite = np.isfinite(min_dist) & allowed
            spread = min_dist / (min_dist[finite].max() if finite.any() and min_dist[finite].max() > 0 else 1.0)
            s = np.where(valid, (1 - diversity) * ranks + diversity * np.minimum(spread, 1.0), -np.inf)
        pick = int(np.argmax(s))
        if not np.isfinite(s[pick]):
            break
        chosen.append(pick)
        allowed[pick] = False
        if feats is not None:
            min_dist = np.minimum(min_dist, np.linalg.norm(feats - feats[pick], axis=1))
    return np.asarray(chosen, dtype=int)


def propose(acquisition: str | AcquisitionFunction, model: Any, bounds: Sequence[tuple[float, float]], k: int, *,
            goal: str = "min", best: float | None = None, candidates: int = 2048, diversity: float = 0.2,
            seed: int | np.random.Generator | None = 0) -> np.ndarray:
    """``k`` points in a continuous box (``bounds`` = [(low, high)] per dimension), shape (k, dims).

    Scores ``candidates`` uniform random points with the model and selects among them, with
    some diversity by default so a batch spreads over the box.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    box = np.asarray(bounds, dtype=float)
    if box.ndim != 2 or box.shape[1] != 2 or not np.all(box[:, 1] > box[:, 0]) or not np.all(np.isfinite(box)):
        raise ValueError("bounds must be a list of (low, high) pairs of finite numbers with low < high, one per "
                         f"dimension; got {bounds!r}.")
    if not callable(getattr(model, "predict", None)):
        raise TypeError(f"propose needs a fitted model with predict(X) -> (mean, std) (learn.Forest().fit(X, y), "
                        f"learn.GaussianProcess(), ...), not {type(model).__name__}.")
    points = box[:, 0] + rng.random((candidates, len(box))) * (box[:, 1] - box[:, 0])
    mean, std = model.predict(points)
    members = model.members(points) if hasattr(model, "members") and get(acquisition).sequential else None
    idx = select(acquisition, mean, std, k, goal=goal, best=best, members=members, features=points,
                 diversity=diversity, seed=rng)
    return points[idx]


def promote(scores: Any, k: int, goal: str = "max", exclude: Sequence[int] | None = None) -> np.ndarray:
    """The selection step of a funnel (MuMMI): indices of the ``k`` best cheap scores, best first."""
    s = np.asarray(scores, dtype=float)
    return select("greedy", s, np.zeros_like(s), k, goal=goal, exclude=exclude)


def _indices(name: str, values: Any, n: int) -> np.ndarray:
    """Candidate indices as an int array, each in [0, n) (a sentence, not numpy's IndexError, for others)."""
    if isinstance(values, (set, frozenset, dict)):  # the indices done so far, as a set: fine
        values = sorted(values)
    try:
        raw = np.asarray(values, dtype=float).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be candidate indices (integers), not {values!r:.80}.") from exc
    bad = ~np.isfinite(raw) | (raw != np.round(raw)) | (raw < 0) | (raw >= n)
    if bad.any():
        raise ValueError(f"{name} must be candidate indices, integers from 0 to {n - 1}; got {float(raw[bad][0]):g}.")
    return raw.astype(int)


def _rows(name: str, values: Any, n: int | None = None) -> np.ndarray:
    """A 2-D float array of features, one row per candidate (``n`` rows when given)."""
    try:
        feats = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numbers, one row per candidate; got {type(values).__name__}.") from exc
    if feats.ndim != 2 or feats.shape[1] == 0 or (n is not None and feats.shape[0] != n):
        want = f"{n} rows" if n is not None else "rows"
        raise ValueError(f"{name} must be a 2-D array of {want} (one per candidate) with at least one column; "
                         f"got shape {feats.shape}.")
    return feats


def batch_spread(features: Any, indices: Sequence[int]) -> float:
    """Mean pairwise Euclidean distance within a batch (standardised features): how diverse it is."""
    feats = _rows("features", features)
    scale = feats.std(axis=0)
    sub = feats[_indices("indices", indices, len(feats))] / np.where(scale > 0, scale, 1.0)
    if len(sub) < 2:
        return 0.0
    d = np.linalg.norm(sub[:, None, :] - sub[None, :, :], axis=2)
    return float(d.sum() / (len(sub) * (len(sub) - 1)))


def best_found(values: Mapping[int, float], candidates: Sequence[Any], goal: str) -> tuple[Any, float] | None:
    """The best candidate measured so far and its value (``None`` before the first result)."""
    if not values:
        return None
    pick = min if goal == "min" else max
    index = pick(values, key=values.__getitem__)
    return candidates[index], values[index]
