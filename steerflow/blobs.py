"""Large task arguments in the journal, stored once: a content-addressed folder ``DIR/blobs/``.

The journal keeps each task's description for provenance (``tasks.spec``: the function and its
arguments, or the command line). An argument whose pickle is larger than `THRESHOLD` is written
to ``blobs/<sha256>.pkl`` once, and the row keeps a `BlobRef` in its place: the same matrix sent
to a thousand tasks costs one copy on disk and a few dozen bytes per row. Resume never reads
these (the script submits its tasks again); `steerflow show` and provenance readers do.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import serialize
from .task import Executable, Function, TaskSpec

THRESHOLD = 64 * 1024  # bytes of pickle above which an argument is stored as a blob
FOLDER = "blobs"


@dataclass(frozen=True)
class BlobRef:
    """An argument stored in ``blobs/<digest>.pkl`` (``size``: bytes of its pickle)."""

    digest: str
    size: int

    def path(self, directory: Path) -> Path:
        return Path(directory) / FOLDER / f"{self.digest}.pkl"

    def __repr__(self) -> str:
        return f"<argument stored once in {FOLDER}/{self.digest[:12]}….pkl, {_size(self.size)}>"


def spec_blob(directory: Path, spec: TaskSpec) -> bytes | None:
    """A task's description for the journal, large arguments replaced by references (best effort)."""
    try:
        if isinstance(spec, Function):
            args = tuple(_by_reference(directory, a) for a in spec.args)
            kwargs = {k: _by_reference(directory, v) for k, v in spec.kwargs.items()}
            return serialize.dumps_inband({"fn": spec.label(), "args": args, "kwargs": kwargs})
        if isinstance(spec, Executable):
            return serialize.dumps_inband({"argv": spec.argv, "ranks": spec.ranks, "cwd": spec.cwd})
    except Exception:  # noqa: BLE001 - args with futures or unpicklable objects: keep what we can
        return None
    return None


def load_spec(directory: Path, blob: bytes, resolve: bool = False) -> dict[str, Any]:
    """A journaled description; with ``resolve``, references are replaced by the stored arguments."""
    spec = serialize.loads(blob)
    if resolve and isinstance(spec, dict) and "args" in spec:
        spec["args"] = tuple(load(directory, a) if isinstance(a, BlobRef) else a for a in spec["args"])
        spec["kwargs"] = {k: load(directory, v) if isinstance(v, BlobRef) else v for k, v in spec["kwargs"].items()}
    return spec


def load(directory: Path, ref: BlobRef) -> Any:
    with open(ref.path(directory), "rb") as f:
        return serialize.loads(f.read())


def _by_reference(directory: Path, value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, complex)):
        return value
    if isinstance(value, (str, bytes)) and len(value) < THRESHOLD // 4:
        return value
    data = serialize.dumps_inband(value)
    if len(data) <= THRESHOLD:
        return value
    ref = BlobRef(hashlib.sha256(data).hexdigest(), len(data))
    path = ref.path(directory)
    if not path.exists():
        path.parent.mkdir(mode=0o700, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)  # atomic: a reader never sees half a blob
    return ref


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n} bytes"
