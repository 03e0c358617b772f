"""A portfolio of acquisition functions: a bandit that shifts the simulation budget to the one that finds more.

Each batch is split into slices, one per member, by Thompson sampling over each member's
success rate (Beta(1 + successes, 1 + failures)), with at least ``min_share`` picks each so no
member starves. A pick succeeds when its simulated value lands in the best ``quantile`` of
everything seen when it was chosen. Deterministic for a seed, so a resumed campaign that
replays the same results makes the same choices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .acquisition import AcquisitionFunction, get, select

__all__ = ["Portfolio"]


class Portfolio:
    """Several acquisition functions on slices of each batch; the slices follow their successes."""

    def __init__(self, members: Mapping[str, str | AcquisitionFunction], goal: str = "min", quantile: float = 0.1,
                 min_share: int = 1, seed: int = 0) -> None:
        if not isinstance(members, Mapping):
            raise TypeError(f"Portfolio(members=...): give a dict of name -> acquisition function ({{'ucb': 'ucb', "
                            f"'ts': 'thompson'}}), not {type(members).__name__}.")
        if not members:
            raise ValueError("A Portfolio needs at least one acquisition function, e.g. {'ucb': 'ucb'}.")
        if goal not in ("min", "max"):
            raise ValueError(f"Portfolio(goal={goal!r}): say 'min' (look for the lowest value) or 'max'.")
        if not 0.0 < quantile < 1.0:
            raise ValueError(f"Portfolio(quantile={quantile!r}): give the fraction of the best values that counts "
                             "as a success, between 0 and 1.")
        self.members = {name: get(acq) for name, acq in members.items()}
        self.goal, self.quantile, self.min_share = goal, quantile, min_share
        self.rng = np.random.default_rng(seed)
        self.successes = {name: 0 for name in self.members}
        self.failures = {name: 0 for name in self.members}
        self.origin: dict[Any, tuple[str, float]] = {}  # candidate -> (member, cutoff at selection)
        self.history: list[dict[str, int]] = []

    def shares(self, k: int) -> dict[str, int]:
        """How many of ``k`` picks each member gets this time."""
        names = list(self.members)
        base = min(self.min_share, k // len(names))
        counts = {n: base for n in names}
        for _ in range(k - base * len(names)):
            draws = {n: self.rng.beta(1 + self.successes[n], 1 + self.failures[n]) for n in names}
            counts[max(draws, key=draws.__getitem__)] += 1
        return counts

    def select(self, mean: Any, std: Any, k: int, *, seen: Sequence[float] = (), members: Any = None,
               features: Any = None, diversity: float = 0.0, exclude: Sequence[int] | None = None,
               ids: Sequence[Any] | None = None) -> np.ndarray:
        """Pick ``k`` indices: each member picks its share, skipping what earlier members took.

        ``seen``: the values simulated so far (for ``best`` and the success cutoff); ``ids``: the
        candidates' identities (default: the indices), used by `record`.
        """
        values = np.asarray(seen, dtype=float)
        best = None
        cutoff = np.inf if self.goal == "min" else -np.inf
        if values.size:
            best = float(values.min() if self.goal == "min" else values.max())
            q = self.quantile if self.goal == "min" else 1 - self.quantile
            cutoff = float(np.quantile(values, q))
        taken = list(exclude or [])
        picks: list[int] = []
        shares = self.shares(k)
        self.history.append(shares)
        for name, count in shares.items():
            if count <= 0:
                continue
            chosen = select(self.members[name], mean, std, count, goal=self.goal, best=best, members=members,
                            features=features, diversity=diversity, exclude=taken + picks, seed=self.rng)
            for i in chosen.tolist():
                picks.append(i)
                self.origin[ids[i] if ids is not None else i] = (name, cutoff)
        return np.asarray(picks, dtype=int)

    def record(self, candidate: Any, value: float) -> str | None:
        """Credit the member that picked ``candidate`` with its simulated ``value``; returns that member."""
        found = self.origin.pop(candidate, None)
        if found is None:
            return None
        name, cutoff = found
        good = value <= cutoff if self.goal == "min" else value >= cutoff
        if good:
            self.successes[name] += 1
        else:
            self.failures[name] += 1
        return name

    def summary(self) -> dict[str, dict[str, int]]:
        total = {n: sum(h.get(n, 0) for h in self.history) for n in self.members}
        return {n: {"picks": total[n], "successes": self.successes[n], "failures": self.failures[n]}
                for n in self.members}
