"""Large task arguments in the journal, stored once: a content-addressed folder ``DIR/blobs/``.

The journal keeps each task's description for provenance (``tasks.spec``: the function and its
arguments, or the command line). An argument whose pickle is larger than `THRESHOLD` is written
to ``blobs/<sha256>.pkl`` once, and the row keeps a `BlobRef` in its place: the same matrix sent
to a thousand tasks costs one copy on disk and a few dozen bytes per row. A blob that compresses
well (fingerprint matrices: ~20x) is written zlib-compressed (``.pkl.zlib``). The submitting
thread only pickles and hashes; a writer thread of the campaign's `Store` compresses and writes,
and `Store.close` waits for it. Resume never reads these (the script submits its tasks again);
`steerflow show` and provenance readers do.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import queue
import threading
import weakref
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import serialize
from .task import Executable, Function, TaskSpec

THRESHOLD = 64 * 1024  # bytes of pickle above which an argument is stored as a blob
FOLDER = "blobs"
COMPRESSED = ".pkl.zlib"
_PROBE = 64 * 1024  # compress when the first 64 KB shrink below 80 %


@dataclass(frozen=True)
class BlobRef:
    """An argument stored in ``blobs/<digest>.pkl`` (``size``: bytes of its pickle)."""

    digest: str
    size: int

    def path(self, directory: Path) -> Path:
        """Where it is stored (compressed or not); the plain name when it is not written (yet)."""
        plain = Path(directory) / FOLDER / f"{self.digest}.pkl"
        packed = plain.with_name(self.digest + COMPRESSED)
        return packed if packed.exists() else plain

    def __repr__(self) -> str:
        return f"<argument stored once in {FOLDER}/{self.digest[:12]}….pkl, {_size(self.size)}>"


class Store:
    """A campaign's blob folder: `put` hashes on the caller's thread, a writer thread stores each new blob once."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._known: set[str] = set()
        self._queue: queue.SimpleQueue[tuple[Path, bytes] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.error: Exception | None = None

    def put(self, data: bytes) -> BlobRef:
        ref = BlobRef(hashlib.sha256(data).hexdigest(), len(data))
        if ref.digest in self._known:
            return ref
        self._known.add(ref.digest)
        path = ref.path(self.directory)
        if path.exists():  # stored by an earlier run of this campaign
            return ref
        if self._thread is None:
            path.parent.mkdir(mode=0o700, exist_ok=True)
            self._thread = threading.Thread(target=self._writer, name="steerflow-blobs", daemon=True)
            self._thread.start()
        self._queue.put((path, data))
        return ref

    def close(self) -> None:
        """Wait until every blob put so far is on disk."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _writer(self) -> None:
        while (item := self._queue.get()) is not None:
            path, data = item
            tmp = None
            try:
                probe = data[:_PROBE]
                if len(zlib.compress(probe, 1)) < 0.8 * len(probe):
                    path, data = path.with_name(path.name[:-4] + COMPRESSED), zlib.compress(data, 1)
                tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)  # atomic: a reader never sees half a blob
            except OSError as exc:  # e.g. disk full: provenance only, the campaign goes on
                self.error = exc
                if tmp is not None:  # (before: the partial file stayed, holding the space a resume needs)
                    try:
                        tmp.unlink(missing_ok=True)
                    except OSError:
                        pass


#: a function's description without arguments, by function and label: a campaign of many calls of one function
#: without arguments pickles it once (weak keys: a function defined and dropped in a loop is not kept)
_BARE: weakref.WeakKeyDictionary[Any, tuple[str, bytes]] = weakref.WeakKeyDictionary()


def spec_blob(store: Store, spec: TaskSpec) -> bytes | None:
    """A task's description for the journal, large arguments replaced by references (best effort)."""
    try:
        if isinstance(spec, Function):
            if not spec.args and not spec.kwargs:
                try:
                    label, blob = _BARE.get(spec.fn, ("", b""))
                except TypeError:  # not weakly referenceable: describe it each time
                    label, blob = "", b""
                if blob and label == spec.label():
                    return blob
            args = tuple(_by_reference(store, a) for a in spec.args)
            kwargs = {k: _by_reference(store, v) for k, v in spec.kwargs.items()}
            fn = f"{getattr(spec.fn, '__module__', '?')}:{getattr(spec.fn, '__qualname__', type(spec.fn).__name__)}"
            blob = serialize.dumps_inband({"fn": spec.label(), "function": fn, "args": args, "kwargs": kwargs})
            if len(blob) > THRESHOLD:  # many arguments each under the bound (100 strings of 15 KB made 1.5 MB a
                # task in the journal): all of them stored once as one blob, the journal keeps a reference
                whole = store.put(serialize.dumps_inband((args, kwargs)))
                blob = serialize.dumps_inband({"fn": spec.label(), "function": fn, "args": whole, "kwargs": {}})
            if not args and not kwargs:
                try:
                    _BARE[spec.fn] = (spec.label(), blob)
                except TypeError:
                    pass
            return blob
        if isinstance(spec, Executable):
            blob = serialize.dumps_inband({"argv": spec.argv, "ranks": spec.ranks, "cwd": spec.cwd})
            if len(blob) > THRESHOLD:  # a command line of up to ARG_MAX (2 MB): stored once, referenced
                blob = serialize.dumps_inband({"argv": store.put(serialize.dumps_inband(spec.argv)),
                                               "ranks": spec.ranks, "cwd": spec.cwd})
            return blob
    except Exception:  # noqa: BLE001 - args with futures or unpicklable objects: keep what we can
        return None
    return None


def load_spec(directory: Path, blob: bytes, resolve: bool = False) -> dict[str, Any]:
    """A journaled description; with ``resolve``, references are replaced by the stored arguments."""
    spec = serialize.loads(blob)
    if resolve and isinstance(spec, dict) and isinstance(spec.get("args"), BlobRef):  # every argument in one blob
        spec["args"], spec["kwargs"] = load(directory, spec["args"])
    if resolve and isinstance(spec, dict) and isinstance(spec.get("argv"), BlobRef):
        spec["argv"] = load(directory, spec["argv"])
    if resolve and isinstance(spec, dict) and "args" in spec:
        spec["args"] = tuple(load(directory, a) if isinstance(a, BlobRef) else a for a in spec["args"])
        spec["kwargs"] = {k: load(directory, v) if isinstance(v, BlobRef) else v for k, v in spec["kwargs"].items()}
    return spec


_SAFE_GLOBALS = {
    ("builtins", name) for name in ("list", "dict", "tuple", "set", "frozenset", "bytearray", "bytes", "str", "int",
                                     "float", "complex", "bool", "slice", "range")
} | {(module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray")
     for name in ("_reconstruct", "scalar")} | {("numpy", "ndarray"), ("numpy", "dtype"), (__name__, "BlobRef")}


class _ShowingUnpickler(pickle.Unpickler):
    """Unpickles a journaled description for display without running anything it names: any class or
    function outside a short list of data types becomes a stand-in that prints as ``<module.name>``."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        return _stand_in(f"{module}.{name}")


def _stand_in(label: str) -> type:
    def new(cls: type, *args: Any, **kwargs: Any) -> Any:
        return object.__new__(cls)

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def setstate(self: Any, state: Any) -> None:
        pass

    def show(self: Any) -> str:
        return f"<{label}>"

    return type(label, (), {"__new__": new, "__init__": init, "__setstate__": setstate, "__repr__": show})


def describe(blob: bytes) -> Any:
    """A journaled task description, safe to read from any journal (nothing it names is imported or run)."""
    return _ShowingUnpickler(io.BytesIO(blob)).load()


def load(directory: Path, ref: BlobRef) -> Any:
    path = ref.path(directory)
    with open(path, "rb") as f:
        data = f.read()
    return serialize.loads(zlib.decompress(data) if path.name.endswith(COMPRESSED) else data)


def _by_reference(store: Store, value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, complex)):
        return value
    if isinstance(value, (str, bytes)) and len(value) < THRESHOLD // 4:
        return value
    data = serialize.dumps_inband(value)
    if len(data) <= THRESHOLD:
        return value
    return store.put(data)


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n} bytes"
