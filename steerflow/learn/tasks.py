"""Learning as campaign tasks: training in its own pool, and batched inference in warm workers.

Training is a task (``training_task``) so it gets its own cores or GPU and never blocks the
steering thread. Inference requests are gathered (`BatchedInference`): one task per model
version scores many rows, in a warm worker that keeps the model loaded between tasks (the
local engine sends a function to a worker that already ran it), and a large pool is split
over the inference pool's slots (`rank`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np

from .models import as_matrix, checked_prediction, fit_model

__all__ = ["training_task", "predict_rows", "BatchedInference", "gather"]

_LOADED: dict[tuple[str, str], Any] = {}  # (path, sha256) -> model, kept warm in the worker process


def training_task(model: Any, x: Any, y: Any, pool: str = "train", **options: Any) -> Any:
    """A `Function` task that fits ``model`` (a name, template or factory) on (x, y) and returns it."""
    from ..task import Function

    options.setdefault("tags", ("train",))
    return Function(fit_model, (model, np.asarray(x, dtype=float), np.asarray(y, dtype=float)), pool=pool, **options)


def predict_rows(model: Any, x: Any, members: bool = False) -> tuple[np.ndarray, ...]:
    """(mean, std[, members]) for rows ``x``. ``model``: an object, or (path, sha256) of a registry version.

    A registry version is loaded once per worker process and kept, so repeated inference tasks
    of the same version pay the load once.
    """
    if isinstance(model, tuple):
        key = (str(model[0]), str(model[1]))
        loaded = _LOADED.get(key)
        if loaded is None:
            import pickle

            with open(key[0], "rb") as f:
                loaded = pickle.load(f)
            if len(_LOADED) > 8:
                _LOADED.clear()
            _LOADED[key] = loaded
        model = loaded
    rows = as_matrix(x)
    mean, std = checked_prediction(model, rows)
    if members and hasattr(model, "members"):
        return mean, std, model.members(rows)
    return mean, std


class BatchedInference:
    """Gather inference requests per model version into few tasks of ``pool``.

    ``request(row)`` returns a future of (mean, std); `flush` (or reaching ``max_batch``) sends
    one task per model version for everything gathered. ``rank(rows)`` scores a whole pool,
    split into ``chunks`` tasks (default: the pool's free slots) that run side by side.
    """

    def __init__(self, campaign: Any, registry: Any, name: str, pool: str = "infer", max_batch: int = 1024,
                 **options: Any) -> None:
        from ..task import Function

        Function(print, pool=pool, **options)  # validate now, with the usual messages
        self.campaign, self.registry, self.name, self.pool = campaign, registry, name, pool
        self.max_batch, self.options = max_batch, options
        self._lock = threading.Lock()
        self._waiting: dict[int, list[tuple[np.ndarray, Future]]] = {}
        self.tasks_sent = 0
        self.rows_sent = 0

    def _version(self, version: int | None) -> Any:
        found = self.registry.get(self.name, version)
        return found

    def request(self, row: Any, version: int | None = None) -> Future:
        """One row to score with ``version`` (default: pinned, else newest at this moment)."""
        v = self._version(version)
        future: Future = Future()
        features = np.asarray(row, dtype=float).ravel()
        with self._lock:
            batch = self._waiting.setdefault(v.version, [])
            if batch and batch[0][0].size != features.size:  # (it would fail the whole batch at flush)
                raise ValueError(f"request(row): this row has {features.size} features, the rows gathered for "
                                 f"version {v.version} of {self.name!r} have {batch[0][0].size}; give every row "
                                 "the model's features.")
            batch.append((features, future))
            full = len(batch) >= self.max_batch
        if full:
            self.flush()
        return future

    def flush(self) -> list[Any]:
        """Send what is gathered: one task per model version. Returns the task futures."""
        with self._lock:
            waiting, self._waiting = self._waiting, {}
        sent = []
        for number, items in waiting.items():
            futures = [f for _, f in items]
            try:
                task = self._submit(self._version(number), np.stack([row for row, _ in items]))
            except BaseException as exc:  # every request learns why; none is left waiting forever
                for f in futures:
                    f.set_exception(exc)
                continue

            def split(done: Any, futures: list[Future] = futures) -> None:
                try:
                    mean, std = done.result()[:2]
                except BaseException as exc:  # noqa: BLE001 - every request learns why
                    for f in futures:
                        f.set_exception(exc)
                    return
                for i, f in enumerate(futures):
                    f.set_result((float(mean[i]), float(std[i])))

            task.add_done_callback(split)
            sent.append(task)
        return sent

    def rank(self, rows: Any, version: int | None = None, chunks: int | None = None,
             members: bool = False) -> list[Any]:
        """Score a whole pool: ``chunks`` tasks side by side (default: the pool's free slots, at least 1).

        Returns the task futures in row order; concatenate their (mean, std) results.
        """
        v = self._version(version)
        rows = as_matrix(rows)
        if chunks is None:
            try:
                chunks = max(1, self.campaign.free_slots(self.pool))
            except Exception:  # noqa: BLE001 - a campaign that is not running yet
                chunks = 1
        parts = np.array_split(np.arange(len(rows)), max(1, min(chunks, len(rows))))
        return [self._submit(v, rows[idx], members) for idx in parts if len(idx)]

    def _submit(self, v: Any, rows: np.ndarray, members: bool = False) -> Any:
        from ..task import Function

        self.tasks_sent += 1
        self.rows_sent += len(rows)
        options = dict(self.options)
        options["tags"] = (*options.get("tags", ()), f"infer:{self.name}:v{v.version}")
        return self.campaign.submit(Function(predict_rows, ((v.path, v.sha256), rows, members), pool=self.pool,
                                             **options))


def gather(futures: Sequence[Any]) -> tuple[np.ndarray, ...]:
    """Concatenate the (mean, std[, members]) results of `BatchedInference.rank` tasks."""
    results = [f.result() for f in futures]
    out = [np.concatenate([r[i] for r in results], axis=-1) for i in range(len(results[0]))]
    return tuple(out)
