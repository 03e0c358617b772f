"""The model registry: versioned trained models in the campaign directory, recorded in the journal.

Layout: ``DIR/models/NAME/v0001.pkl`` (the pickled model) and ``v0001.json`` (version, sha256,
time, metrics, the task that trained it). Files are written to a temporary name and renamed,
so a crash never leaves half a model. Registering the same bytes again (a resumed campaign
replays its training results to its agents) returns the existing version instead of adding
one, so versions survive crash-resume unchanged.

After the run, one call brings any version back::

    model = steerflow.learn.load("runs/search", "ip-forest")          # newest (or the pinned one)
    model = steerflow.learn.load("runs/search", "ip-forest", version=3)

Where MLflow is installed and ``mlflow=True``, each version's metrics are logged there too.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ModelRegistry", "ModelVersion", "load"]

MAX_NAME_BYTES = 200  # a folder name (255 at most on common file systems), with room for the version files


@dataclass
class ModelVersion:
    """One registered version of a named model."""

    name: str
    version: int
    path: str
    sha256: str
    created: float
    metrics: dict[str, float] = field(default_factory=dict)
    source: int | None = None  # the campaign task that trained it, if any

    def load(self) -> Any:
        with open(self.path, "rb") as f:
            blob = f.read()
        if self.sha256 and hashlib.sha256(blob).hexdigest() != self.sha256:  # (before: pickle's "data was truncated")
            raise ValueError(f"Version {self.version} of model {self.name!r} is damaged: {self.path} no longer holds "
                             "what was registered (its sha256 differs). Load another version (learn.load(DIR, "
                             f"{self.name!r}, version=N)), or train it again.")
        return _loads(blob)


def _dumps(model: Any) -> bytes:
    try:
        data = pickle.dumps(model, 5)
    except Exception:  # noqa: BLE001 - closures and local classes: cloudpickle handles them
        data = b"__main__"
    if b"__main__" in data:  # a model class of the campaign script: by value, so that an inference task's worker
        import cloudpickle  # (and `learn.load` in another process) can load it; by reference it failed there with

        return cloudpickle.dumps(model, 5)  # "Can't get attribute 'Model' on <module 'steerflow.engines.worker'>"
    return data


def _loads(blob: bytes) -> Any:
    return pickle.loads(blob)


class ModelRegistry:
    """Versions of named models under ``DIR/models``; ``where`` is a Campaign or a directory.

    With a Campaign, every new version is also recorded in its journal (meta ``model:NAME:vN``).
    ``newest`` or a ``pin``ned version is what `latest` (and `load` without a version) returns.
    """

    def __init__(self, where: Any, mlflow: bool = False) -> None:
        directory = getattr(where, "directory", where)
        self.root = Path(directory) / "models"
        self._journal = getattr(where, "journal", None)
        self._lock = threading.Lock()
        self._mlflow = mlflow

    # ---- writing -----------------------------------------------------------------------
    def register(self, name: str, model: Any, metrics: dict[str, float] | None = None,
                 source: int | None = None) -> ModelVersion:
        """Store ``model`` as the next version of ``name`` (or return the version holding the same bytes)."""
        check_name(name)
        values = _metrics(metrics)
        blob = _dumps(model)
        digest = hashlib.sha256(blob).hexdigest()
        with self._lock:
            existing = self.versions(name)
            for version in existing:
                if version.sha256 == digest or (source is not None and version.source == source):
                    return version
            number = (existing[-1].version + 1) if existing else 1
            folder = self.root / name
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = folder / f"v{number:04d}.pkl"
            _atomic_write(path, blob)
            info = ModelVersion(name, number, str(path), digest, time.time(),
                                values, source)
            _atomic_write(folder / f"v{number:04d}.json", json.dumps(asdict(info)).encode())
        if self._journal is not None:
            self._journal.put("meta", f"model:{name}:v{number}", json.dumps(asdict(info)))
        if self._mlflow:
            _log_mlflow(info)
        return info

    def pin(self, name: str, version: int | None) -> None:
        """Make ``version`` what `latest` returns (None: back to the newest)."""
        folder = self.root / name
        if version is None:
            (folder / "pinned").unlink(missing_ok=True)
            return
        if not any(v.version == version for v in self.versions(name)):
            raise KeyError(f"Model {name!r} has no version {version}; versions: "
                           f"{[v.version for v in self.versions(name)]}.")
        _atomic_write(folder / "pinned", str(version).encode())

    # ---- reading -----------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir()) if self.root.exists() else []

    def versions(self, name: str) -> list[ModelVersion]:
        folder = self.root / name
        found = []
        for meta in sorted(folder.glob("v*.json")) if folder.exists() else []:
            try:
                info = ModelVersion(**json.loads(meta.read_text()))
            except (ValueError, TypeError):
                continue  # a foreign file: skip it
            info.path = str(folder / Path(info.path).name)  # the directory may have moved since
            if os.path.exists(info.path):
                found.append(info)
        return sorted(found, key=lambda v: v.version)

    def pinned(self, name: str) -> int | None:
        try:
            return int((self.root / name / "pinned").read_text())
        except (OSError, ValueError):
            return None

    def latest(self, name: str) -> ModelVersion | None:
        """The pinned version if one is pinned, else the newest; None if there is none yet."""
        versions = self.versions(name)
        pin = self.pinned(name)
        if pin is not None:
            for v in versions:
                if v.version == pin:
                    return v
        return versions[-1] if versions else None

    def get(self, name: str, version: int | None = None) -> ModelVersion:
        if version is None:
            found = self.latest(name)
        else:
            found = next((v for v in self.versions(name) if v.version == version), None)
        if found is None:
            have = [v.version for v in self.versions(name)]
            raise KeyError(f"No version {version if version is not None else '(any)'} of model {name!r} under "
                           f"{self.root}; versions there: {have or 'none'}. Models: {self.names() or 'none'}.")
        return found

    def load(self, name: str, version: int | None = None) -> Any:
        """The model object of a version (default: pinned, else newest)."""
        return self.get(name, version).load()


def load(directory: str | os.PathLike[str], name: str, version: int | None = None) -> Any:
    """Load a registered model after the run, in one call (default: pinned, else newest version)."""
    return ModelRegistry(directory).load(name, version)


def check_name(name: str) -> None:
    """A model name the registry can hold (a folder name, and text the journal can store)."""
    if not isinstance(name, str) or not name or any(c in name for c in "/\\:\0") or name.startswith("."):
        raise ValueError(f"Model name {name!r}: use a non-empty name without '/', '\\', ':' or a leading dot.")
    try:  # it names a folder and the journal's record of each version
        size = len(name.encode())
    except UnicodeEncodeError:
        raise ValueError(f"Model name {name!r} is not valid Unicode text (it holds a lone surrogate, as a file "
                         "name decoded with errors='surrogateescape' does); give it a plain text name.") from None
    if size > MAX_NAME_BYTES:
        raise ValueError(f"Model name {name[:40]!r}... is {size} bytes long; give one of at most {MAX_NAME_BYTES} "
                         "bytes (it names a folder).")


def _metrics(metrics: dict[str, float] | None) -> dict[str, float]:
    if metrics is not None and not isinstance(metrics, Mapping):
        raise TypeError(f"metrics={metrics!r:.60}: give a model version's metrics as a dict of name -> number "
                        "(e.g. {'mae': 0.21}), or None.")
    out = {}
    for key, value in (metrics or {}).items():
        try:
            out[str(key)] = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"Metric {key!r} = {value!r}: a model version's metrics are numbers "
                             "(e.g. {'mae': 0.21}).") from None
    return out


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _log_mlflow(info: ModelVersion) -> None:
    try:
        import mlflow
    except ImportError:
        return
    with mlflow.start_run(run_name=f"{info.name}-v{info.version}"):
        mlflow.log_params({"name": info.name, "version": info.version, "sha256": info.sha256})
        if info.metrics:
            mlflow.log_metrics(info.metrics)
        mlflow.log_artifact(info.path)
