"""Models with an uncertainty: ``fit(X, y)`` and ``predict(X) -> (mean, std)``.

The uncertainty is what every other piece of the learning layer keys on: the surrogate's
decision rule, the acquisition functions, the promotion helper. The default is the per-tree
spread of a scikit-learn forest, which tracked the real error best in our calibration
(`SCIENCE.md`: Spearman 0.26-0.33 against 0.07-0.10 for a GP or Bayesian ridge) and costs one
fit. A Gaussian process is there for small, smooth problems; a PyTorch ensemble only when the
``torch`` extra is installed (never required).

Models are plain picklable objects, so they travel to training and inference tasks and into
the model registry unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["UncertainModel", "Forest", "GaussianProcess", "TorchEnsemble", "make_model", "fit_model",
           "as_matrix"]


@runtime_checkable
class UncertainModel(Protocol):
    """What the learning layer needs of a model. ``members`` (optional) gives per-member predictions."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> UncertainModel: ...

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def as_matrix(x: Any) -> np.ndarray:
    """Features as a 2-D float array (one row per input); a single 1-D vector becomes one row."""
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1) if arr.size else arr.reshape(0, 0)
    if arr.ndim != 2:
        raise ValueError(f"Features must be a 2-D array (rows = inputs), got shape {arr.shape}; "
                         "make the featurizer return one flat vector per input.")
    return arr


def _threads() -> int:
    """The cores this process was given (a task's OMP_NUM_THREADS), so a fit never oversubscribes."""
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "1")))
    except ValueError:
        return 1


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _float32_range(x: np.ndarray) -> np.ndarray:
    """Features clipped into float32's range, in which trees split (1e39 would be inf there); NaN kept (missing).

    Trees split on order only, so a value past float32's largest (an infinity too) lands where that
    largest one does, as at prediction; without this one such input fails every later fit of the forest.
    """
    if x.size and np.any(np.abs(np.where(np.isnan(x), 0.0, x)) > _FLOAT32_MAX):
        return np.where(np.isnan(x), x, np.clip(x, -_FLOAT32_MAX, _FLOAT32_MAX))
    return x


class Forest:
    """A random forest (``kind="rf"``) or extra-trees ensemble (``"extra"``); std = spread over trees.

    ``min_std`` keeps the uncertainty strictly positive (a forest whose trees all agree is not
    certain of the noise), so ratios error/uncertainty stay finite.
    """

    def __init__(self, kind: str = "rf", n_estimators: int = 100, min_samples_leaf: int = 1,
                 max_features: float | str | None = 1.0, seed: int = 0, min_std: float = 1e-9,
                 n_jobs: int | None = None) -> None:
        if kind not in ("rf", "extra"):
            raise ValueError(f"Forest(kind={kind!r}): choose 'rf' (random forest) or 'extra' (extra trees).")
        self.kind, self.n_estimators, self.min_samples_leaf = kind, n_estimators, min_samples_leaf
        self.max_features, self.seed, self.min_std, self.n_jobs = max_features, seed, min_std, n_jobs
        self.estimator: Any = None
        self.n_features = 0
        self.n_train = 0

    def fit(self, x: Any, y: Any) -> Forest:
        from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor

        x, y = _float32_range(as_matrix(x)), np.asarray(y, dtype=float).ravel()
        cls = RandomForestRegressor if self.kind == "rf" else ExtraTreesRegressor
        options: dict[str, Any] = {}
        if self.kind == "extra":
            options["bootstrap"] = True  # without resampling all trees fit the data exactly: no spread at the points
        self.estimator = cls(n_estimators=self.n_estimators, min_samples_leaf=self.min_samples_leaf,
                             max_features=self.max_features, random_state=self.seed,
                             n_jobs=self.n_jobs or _threads(), **options).fit(x, y)
        self.n_features, self.n_train = x.shape[1], len(y)
        return self

    def members(self, x: Any) -> np.ndarray:
        """Per-tree predictions, shape (trees, rows): samples for Thompson sampling."""
        if self.estimator is None:
            raise RuntimeError("This Forest has not been fitted yet; call fit(X, y) first.")
        with np.errstate(over="ignore"):  # (past float32's range is +-inf there: past every split, as fit clips it)
            x = np.ascontiguousarray(as_matrix(x), dtype=np.float32)  # trees predict in float32: convert once
        if x.shape[1] != self.n_features:
            raise ValueError(f"This Forest was fitted on {self.n_features} features; got rows of {x.shape[1]}.")
        return np.stack([tree.predict(x, check_input=False) for tree in self.estimator.estimators_])

    def predict(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        per_tree = self.members(x)
        return per_tree.mean(axis=0), np.maximum(per_tree.std(axis=0), self.min_std)


class GaussianProcess:
    """scikit-learn's GP (Matern 5/2 + white noise, normalised targets); std from the posterior.

    Fits cost O(n^3): keep n below ~1,000 (`SCIENCE.md`), or pass a fixed ``kernel``.
    """

    def __init__(self, kernel: Any = None, seed: int = 0, restarts: int = 1, min_std: float = 1e-9) -> None:
        self.kernel, self.seed, self.restarts, self.min_std = kernel, seed, restarts, min_std
        self.estimator: Any = None
        self.n_features = 0
        self.n_train = 0

    def fit(self, x: Any, y: Any) -> GaussianProcess:
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        x, y = as_matrix(x), np.asarray(y, dtype=float).ravel()
        kernel = self.kernel
        if kernel is None:
            kernel = ConstantKernel(1.0) * Matern(length_scale=np.ones(x.shape[1]), nu=2.5) + WhiteKernel(1e-3)
        self.estimator = GaussianProcessRegressor(kernel=kernel, normalize_y=True, random_state=self.seed,
                                                  n_restarts_optimizer=self.restarts).fit(x, y)
        self.n_features, self.n_train = x.shape[1], len(y)
        return self

    def predict(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        if self.estimator is None:
            raise RuntimeError("This GaussianProcess has not been fitted yet; call fit(X, y) first.")
        mean, std = self.estimator.predict(as_matrix(x), return_std=True)
        return mean, np.maximum(std, self.min_std)

    def members(self, x: Any, n: int = 16, seed: int = 0) -> np.ndarray:
        """Joint posterior samples, shape (n, rows)."""
        return self.estimator.sample_y(as_matrix(x), n_samples=n, random_state=seed).T


class TorchEnsemble:
    """A deep ensemble of small MLPs (PyTorch); std = spread over members. Needs ``pip install torch``.

    Optional by design: nothing else in steerflow imports torch.
    """

    def __init__(self, members: int = 5, hidden: int = 64, epochs: int = 200, lr: float = 1e-2,
                 seed: int = 0, min_std: float = 1e-9) -> None:
        self.n_members, self.hidden, self.epochs, self.lr = members, hidden, epochs, lr
        self.seed, self.min_std = seed, min_std
        self.nets: list[Any] = []
        self.scale: tuple[Any, ...] = ()
        self.n_features = 0
        self.n_train = 0

    @staticmethod
    def _torch() -> Any:
        try:
            import torch
        except ImportError as exc:
            raise ImportError("TorchEnsemble needs PyTorch: `pip install torch` (the CPU wheel is enough), or "
                              "use Forest() or GaussianProcess().") from exc
        return torch

    def fit(self, x: Any, y: Any) -> TorchEnsemble:
        torch = self._torch()
        x, y = as_matrix(x), np.asarray(y, dtype=float).ravel()
        mx, sx = x.mean(0), x.std(0) + 1e-12
        my, sy = y.mean(), y.std() + 1e-12
        self.scale = (mx, sx, my, sy)
        xt = torch.tensor((x - mx) / sx, dtype=torch.float32)
        yt = torch.tensor((y - my) / sy, dtype=torch.float32).unsqueeze(1)
        self.nets = []
        for m in range(self.n_members):
            torch.manual_seed(self.seed + m)
            net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], self.hidden), torch.nn.SiLU(),
                                      torch.nn.Linear(self.hidden, self.hidden), torch.nn.SiLU(),
                                      torch.nn.Linear(self.hidden, 1))
            opt = torch.optim.Adam(net.parameters(), lr=self.lr)
            for _ in range(self.epochs):
                opt.zero_grad()
                loss = torch.nn.functional.mse_loss(net(xt), yt)
                loss.backward()
                opt.step()
            self.nets.append(net)
        self.n_features, self.n_train = x.shape[1], len(y)
        return self

    def members(self, x: Any) -> np.ndarray:
        torch = self._torch()
        if not self.nets:
            raise RuntimeError("This TorchEnsemble has not been fitted yet; call fit(X, y) first.")
        mx, sx, my, sy = self.scale
        xt = torch.tensor((as_matrix(x) - mx) / sx, dtype=torch.float32)
        with torch.no_grad():
            return np.stack([net(xt).numpy().ravel() * sy + my for net in self.nets])

    def predict(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        per = self.members(x)
        return per.mean(axis=0), np.maximum(per.std(axis=0), self.min_std)


_FACTORIES: dict[str, Callable[..., Any]] = {
    "forest": Forest, "rf": Forest, "extra": lambda **kw: Forest(kind="extra", **kw),
    "gp": GaussianProcess, "torch": TorchEnsemble,
}


def checked_prediction(model: Any, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``model.predict(rows)`` as (mean, std): two 1-D float arrays of one value per row, std >= 0 or NaN.

    Checked here, in the inference task, so a model that answers something else fails that task with a sentence
    (an agent keeps its current order); before, a scalar, text, a 2-D array or a negative spread reached the
    learner's handler and stopped the campaign, and every resume of it again at the replayed ranking."""
    name = type(model).__name__
    answer = model.predict(rows)
    if not (isinstance(answer, (tuple, list)) and len(answer) == 2):
        raise TypeError(f"{name}.predict(x) returned {type(answer).__name__} {answer!r:.80}; a model for the learning "
                        "layer returns (mean, std): two arrays with one value per row of x.")
    out = []
    for label, value in zip(("mean", "std"), answer):
        try:
            arr = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise TypeError(f"{name}.predict(x) returned a {label} that is not numbers ({value!r:.80}); return "
                            "(mean, std) as float arrays with one value per row of x.") from None
        if arr.shape != (len(rows),):
            raise ValueError(f"{name}.predict(x) returned a {label} of shape {arr.shape} for {len(rows)} rows; "
                             f"return (mean, std) as 1-D arrays of {len(rows)} values each.")
        out.append(arr)
    if np.any(out[1] < 0):
        raise ValueError(f"{name}.predict(x) returned a negative std ({out[1][out[1] < 0][0]:g}); std is the "
                         "model's spread (>= 0), not a signed error.")
    return out[0], out[1]


def make_model(spec: str | UncertainModel | Callable[[], Any] = "forest", **options: Any) -> Any:
    """A fresh, unfitted model from a name ("forest", "extra", "gp", "torch"), a factory, or a template.

    A template object is copied (its parameters kept, its fit discarded by refitting), so one
    object can describe the model of every retrain.
    """
    if isinstance(spec, str):
        factory = _FACTORIES.get(spec)
        if factory is None:
            raise ValueError(f"Unknown model {spec!r}; choose one of {sorted(_FACTORIES)} or pass a model object.")
        return factory(**options)
    if hasattr(spec, "fit") and hasattr(spec, "predict"):
        import copy

        return copy.deepcopy(spec)
    if callable(spec):
        return spec(**options)
    raise TypeError(f"make_model({spec!r}): pass a model name, a model object with fit/predict, or a factory.")


def fit_model(spec: Any, x: Any, y: Any) -> Any:
    """Build and fit a model: the body of a training task (top-level, so it pickles by reference).

    A ``fit`` that returns None (fitting in place, as many hand-written models do) gives the model itself: before,
    None was registered as the model and every inference with it failed."""
    model = make_model(spec)
    fitted = model.fit(as_matrix(x), np.asarray(y, dtype=float).ravel())
    return model if fitted is None else fitted
