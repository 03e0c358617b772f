"""Large objects shared by many tasks, by reference: sent to each node once, mapped by every task there.

``share(obj)`` returns a small `Shared` handle; pass it as a task argument (top level, or in a
list/tuple/dict at the top level) instead of the object. The object is pickled once. On this
machine it is written to shared memory at once (``/dev/shm``: large NumPy buffers become
files that every task maps without copying). The Dask engine sends its bytes to a node the
first time a task placed there needs it; the node's agent keeps them in the worker's memory
and puts them in that node's shared memory, where every later task on the node maps them.
Inside the task the handle has turned back into the object (its large buffers are private
copy-on-write mappings: a task that writes changes only its own copy). The same campaign file works with the local and the Dask engine.

``release()`` frees it here (tasks still running keep their mappings); a node frees its copy
when the driver's session ends.
"""

from __future__ import annotations

import atexit
import os
import uuid
from typing import Any

from .. import serialize

_FILE_PREFIX = f"{serialize.PREFIX}shared-"


class Shared:
    """A handle to an object shared by reference; a task receives the object itself."""

    __slots__ = ("key", "blob")

    def __init__(self, key: str, blob: bytes | None) -> None:
        self.key = key
        self.blob = blob  # the pickled object (the driver's copy, for nodes that lack it); None in a task

    def __reduce__(self) -> tuple:
        return (load, (self.key,))

    @property
    def nbytes(self) -> int:
        return len(self.blob or b"")

    def release(self) -> None:
        """Free this machine's copy (the object stays valid in tasks that loaded it)."""
        _owned.pop(self.key, None)
        drop(self.key)

    def __repr__(self) -> str:
        return f"Shared({self.key}, {self.nbytes} bytes)"


_owned: dict[str, Shared] = {}


def share(obj: Any) -> Shared:
    """Pickle ``obj`` once and return a handle that tasks receive as the object itself."""
    blob = serialize.dumps_inband(obj)
    handle = Shared(uuid.uuid4().hex, blob)
    place(handle.key, blob)
    _owned[handle.key] = handle
    return handle


def path_of(key: str) -> str:
    return os.path.join(serialize.SHM_DIR, f"{_FILE_PREFIX}{key}")


def place(key: str, blob: bytes) -> bool:
    """Put a shared object into this machine's shared memory; False if it was there already."""
    target = path_of(key)
    if os.path.exists(target):
        return False
    envelope = serialize.dumps(serialize.loads(blob))  # large buffers become their own shm files
    tmp = f"{target}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(envelope)
    os.replace(tmp, target)
    return True


def drop(key: str) -> None:
    """Delete this machine's copy of a shared object (its buffer files too)."""
    target = path_of(key)
    try:
        with open(target, "rb") as f:
            envelope = f.read()
    except OSError:
        return
    serialize.release(envelope)
    try:
        os.unlink(target)
    except OSError:
        pass


def load(key: str) -> Any:
    """In a task: the shared object, mapped from this machine's shared memory."""
    try:
        with open(path_of(key), "rb") as f:
            envelope = f.read()
    except FileNotFoundError:
        raise RuntimeError(f"The shared object {key} is not on this machine: it was released, or the engine "
                           "running this task does not ship shared objects.") from None
    return serialize.loads(envelope, consume=False)


def find(args: tuple, kwargs: dict) -> list[Shared]:
    """The handles among a task's arguments (top level and one container deep)."""
    found: list[Shared] = []
    for value in (*args, *kwargs.values()):
        if value.__class__ is Shared:
            found.append(value)
        elif isinstance(value, (list, tuple)):
            found.extend(v for v in value if v.__class__ is Shared)
        elif isinstance(value, dict):
            found.extend(v for v in value.values() if v.__class__ is Shared)
    return found


@atexit.register
def _drop_owned() -> None:
    for key in list(_owned):
        drop(key)
    _owned.clear()
