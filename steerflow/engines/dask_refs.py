"""Large task results of the Dask engine stay on the node that made them; the rest get a reference.

A function's result that a warm worker put into its node's shared memory (a large one) does
not travel back: the node's agent keeps it and sends the driver a small reference, a pickle
that, when loaded, calls `resolve`. Where it is loaded decides what happens:

- in a task on the node that made it: the node's shared-memory files are mapped (no copy);
- in a task on another node: that node's agent fetched a copy from the owner's agent before
  the task started (driver-told, node to node over the workers' Dask comms) into its own shared
  memory, and the task maps that copy;
- in the driver (``future.result()``) or anywhere else: fetched from the owner's agent then.

So the driver holds a reference until it asks for the value. The reference's bytes on the driver
are a `RemoteBlob`: when the last holder lets go of it (the runtime once no dependent still
reads it, and the future once loaded or dropped), the owner and every node with a copy are told
to drop theirs. A node that is lost takes its results with it: their dependents fail to fetch them.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .. import serialize

MARK = b"sfref-"
KEY_LENGTH = len(MARK) + 32  # "sfref-" and 32 hex digits
FETCH_HANDLER = "steerflow_fetch"

_security: dict[str, Any] = {}  # worker address -> the driver's Dask Security for it (None: plain TCP)
_keeping = threading.local()


def new_key() -> str:
    return MARK.decode() + os.urandom(16).hex()


def copy_index(key: str, agent_pid: int) -> str:
    """The small file naming a node's copy of another node's result (written by that node's agent)."""
    return os.path.join(serialize.SHM_DIR, f"{serialize.PREFIX}{agent_pid}-{key}")


class _Remote:
    """What a reference unpickles to while `keeping` (re-encoding a payload): it pickles back to itself."""

    def __init__(self, *args: Any) -> None:
        self.args = args

    def __reduce__(self) -> tuple:
        return resolve, self.args


def reference(key: str, owner_pid: int, address: str, envelope: bytes) -> bytes:
    """The driver's handle on a result kept by the agent ``owner_pid`` (at worker ``address``) on this host."""
    return pickle.dumps(_Remote(key, socket.gethostname(), owner_pid, address, envelope), 5)


@contextmanager
def keeping() -> Iterator[None]:
    """Load payloads without resolving their references (to re-encode them for the wire)."""
    _keeping.on = True
    try:
        yield
    finally:
        _keeping.on = False


def resolve(key: str, host: str, owner_pid: int, address: str, envelope: bytes) -> Any:
    """A kept result's value here: the owner's files on its node, a node's copy, else fetched (see the module)."""
    if getattr(_keeping, "on", False):
        return _Remote(key, host, owner_pid, address, envelope)
    parent = os.getppid()
    if host == socket.gethostname() and owner_pid in (parent, os.getpid()):
        return serialize.loads(envelope, consume=False)  # a task on the node that made it: map its files
    try:
        with open(copy_index(key, parent), "rb") as f:  # a task on a node whose agent fetched a copy
            return serialize.loads(f.read(), consume=False)
    except FileNotFoundError:
        pass
    return pickle.loads(fetch(address, key))


def register(address: str, security: Any) -> None:
    """How this process reaches the worker at ``address`` (the driver registers each node it adopts)."""
    _security[address] = security


async def fetch_async(address: str, key: str, connection_args: dict[str, Any]) -> bytes:
    """A kept result's value (a self-contained pickle) from the agent of the worker at ``address``."""
    from distributed.comm import connect

    comm = await connect(address, **connection_args)
    try:
        await comm.write({"op": FETCH_HANDLER, "key": key, "reply": True})
        data = await comm.read()
    finally:
        await comm.close()
    if not isinstance(data, bytes):
        raise LookupError(f"The node at {address} no longer holds result {key}: {data}. It was dropped after "
                          "its last consumer, or its node restarted; rerun the task that made it.")
    return data


def fetch(address: str, key: str) -> bytes:
    """`fetch_async` from any thread, even one running an event loop (it runs on a thread of its own)."""
    security = _security.get(address)
    args = security.get_connection_args("client") if security is not None else {}
    box: list[Any] = []

    def run() -> None:
        try:
            box.append(asyncio.run(fetch_async(address, key, args)))
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
            box.append(exc)

    thread = threading.Thread(target=run, name="steerflow-fetch", daemon=True)
    thread.start()
    thread.join()
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


def keys_in(payload: bytes | None, known: dict[str, Any]) -> list[str]:
    """The references to kept results that a payload carries (their keys appear verbatim in its pickle)."""
    if not payload or not known:
        return []
    out: list[str] = []
    start = payload.find(MARK)
    while start >= 0:
        key = bytes(payload[start:start + KEY_LENGTH]).decode("ascii", "replace")
        if key in known and key not in out:
            out.append(key)
        start = payload.find(MARK, start + KEY_LENGTH)
    return out


class RemoteBlob(serialize.Elsewhere):
    """The driver's copy of a reference (its bytes); when the last holder drops it, ``on_drop(key)`` runs."""

    key: str
    _on_drop: Callable[[str], None] | None

    def __new__(cls, data: bytes, key: str, on_drop: Callable[[str], None]) -> RemoteBlob:
        self = super().__new__(cls, data)
        self.key = key
        self._on_drop = on_drop
        return self

    def __reduce__(self) -> tuple:
        return bytes, (bytes(self),)  # in a dependent's payload: plain bytes (the key stays verbatim)

    def __del__(self) -> None:
        on_drop, self._on_drop = self._on_drop, None
        if on_drop is not None:
            try:
                on_drop(self.key)
            except Exception:  # noqa: BLE001 - at interpreter exit, or after the engine closed
                pass
