"""Checkpoints for preemptible tasks: save from inside a task, load when it runs again.

Each task gets a private path in ``STEERFLOW_CHECKPOINT`` (executables may write there
whatever they like); these helpers pickle an object to it atomically.
"""

from __future__ import annotations

import os
import pickle
from typing import Any


def path() -> str:
    """Where this task's checkpoint lives; only valid inside a task."""
    try:
        return os.environ["STEERFLOW_CHECKPOINT"]
    except KeyError:
        raise RuntimeError("steerflow.checkpoint works only inside a task run by steerflow.") from None


def save(obj: Any) -> None:
    """Replace the task's checkpoint with ``obj`` (atomic: a crash leaves the old or the new one)."""
    target = path()
    os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
    tmp = f"{target}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb", opener=_private) as f:
            pickle.dump(obj, f, protocol=5)
        os.replace(tmp, target)
    except BaseException:  # an object that does not pickle, a full disk: the old checkpoint stays, no partial file
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _private(name: str, flags: int) -> int:
    return os.open(name, flags, 0o600)


def load(default: Any = None) -> Any:
    """The task's last checkpoint, or ``default`` when it has none (first run)."""
    try:
        with open(path(), "rb") as f:
            return pickle.load(f)
    except FileNotFoundError:
        return default
