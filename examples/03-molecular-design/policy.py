"""The learning policy of example 03, shared by the campaign and the offline replay (tune.py).

A random forest on cheap RDKit descriptors (optionally next to Morgan counts, ``bits``) (steerflow.learn's `Forest`: its
per-tree spread is the uncertainty), fitted on what a line on the QM9 prior (transfer.py) misses, ranks the pool by a lower confidence bound (UCB for a
minimisation, `steerflow.learn.select`), and the next batch is the best ``batch`` candidates
not yet simulated. The campaign pipelines it: batch k+2 is chosen by the model trained on the
results of batches 0..k while batch k+1 runs, so the simulation cores never wait for the model.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass

import numpy as np

import transfer
from steerflow import learn


@dataclass(frozen=True)
class PolicyConfig:
    """Everything that decides which molecules the policy picks (tuned offline with tune.py)."""

    batch: int = 4              # replays, seeds 11-16, half of the top 1 %: batch 4 -> 155, 8 -> 184, 16 -> 214, 2 -> 173
    initial: int = 8            # random molecules before the first model (two batches: the pipeline's depth)
    acquisition: str = "ucb"
    kappa: float = 1.0          # UCB: mean - kappa * std (we look for the LOWEST IP)
    kind: str = "rf"            # steerflow.learn.Forest: "rf" or "extra" (extra-trees: 228 vs 214 at batch 16)
    n_estimators: int = 100
    max_features: float = 0.3
    min_samples_leaf: int = 1
    bits: int = 0               # Morgan count bits; 0 = the cheap RDKit descriptors only (better in replays, ~20x cheaper fits)
    descriptors: bool = True
    transfer: bool = True       # the QM9 HOMO model (transfer.py) as the prior mean; replays, seeds 11-19: 155 -> 104

    def as_dict(self) -> dict:
        return asdict(self)


def make_forest(config: PolicyConfig, seed: int) -> learn.Forest:
    return learn.Forest(kind=config.kind, n_estimators=config.n_estimators, max_features=config.max_features,
                        min_samples_leaf=config.min_samples_leaf, seed=seed)


def pick(config: PolicyConfig, mean: np.ndarray, std: np.ndarray, exclude: list[int], k: int, seed: int) -> list[int]:
    """The next ``k`` pool indices by the acquisition function (lowest IP wanted), never one in ``exclude``."""
    params = {"kappa": config.kappa} if config.acquisition == "ucb" else {}
    acquisition = learn.acquisition.get(config.acquisition, **params)
    chosen = learn.select(acquisition, mean, std, k, goal="min", exclude=exclude, seed=seed)
    return [int(i) for i in chosen]


_FEATURES: dict[tuple[str, ...], np.ndarray] = {}
_PRIORS: dict[tuple[str, ...], np.ndarray] = {}


def load_features(paths: str | tuple[str, ...]) -> np.ndarray:
    """The pool's feature matrix from its chunk files (in pool order), read once per warm worker: the files are the data path."""
    key = (paths,) if isinstance(paths, str) else tuple(paths)
    x = _FEATURES.get(key)
    if x is None:
        x = _FEATURES[key] = np.concatenate([np.load(p) for p in key]) if len(key) > 1 else np.load(key[0], mmap_mode="r")
    return x


def load_prior(paths: str | tuple[str, ...]) -> np.ndarray:
    """The QM9 model's HOMO of each pool molecule (transfer.prior: a dot product with the descriptors), once per worker."""
    key = (paths,) if isinstance(paths, str) else tuple(paths)
    p = _PRIORS.get(key)
    if p is None:
        p = _PRIORS[key] = transfer.prior(load_features(paths))
    return p


def prior_line(prior: np.ndarray | None, train_idx: list[int], y: np.ndarray) -> np.ndarray | float:
    """The prior mean of the whole pool: a line a * prior + b fitted by least squares on the results so far (0 without a prior)."""
    if prior is None or len(y) < 2:
        return 0.0
    prior = np.asarray(prior, dtype=float)
    a, b = np.linalg.lstsq(np.vstack([prior[train_idx], np.ones(len(y))]).T, y, rcond=None)[0]
    return a * prior + b


def fit_and_rank(features_path: str | tuple[str, ...], train_idx: list[int], y: list[float], config: PolicyConfig, seed: int,
                 registry_dir: str | None = None, name: str = "ip-forest") -> dict:
    """Training + inference task: fit the forest on the results so far, score the whole pool.

    With ``config.transfer`` the forest fits what a line on the QM9 prior (transfer.py) misses, and
    the line is added back to its predictions (the registered forest is that residual model).
    Registers the model in the campaign's model registry (provenance: which model chose which
    batch) and returns the pool's predicted mean and std (float32), the fit and scoring seconds.
    """
    start = time.perf_counter()
    x = load_features(features_path)
    y_train = np.asarray(y, dtype=float)
    line = prior_line(load_prior(features_path) if config.transfer else None, list(train_idx), y_train)
    residual = y_train - (line[np.asarray(train_idx)] if isinstance(line, np.ndarray) else line)
    model = make_forest(config, seed).fit(np.asarray(x[np.asarray(train_idx)]), residual)
    fitted = time.perf_counter()
    mean, std = model.predict(np.asarray(x))
    mean = mean + line
    version = None
    if registry_dir is not None:
        registry = learn.ModelRegistry(registry_dir)
        version = registry.register(name, model, metrics={"n_train": float(len(y))}).version
    return {"mean": mean.astype(np.float32), "std": std.astype(np.float32), "n_train": len(y),
            "version": version, "fit_s": fitted - start, "score_s": time.perf_counter() - fitted,
            "threads": int(os.environ.get("OMP_NUM_THREADS", "0") or 0)}
