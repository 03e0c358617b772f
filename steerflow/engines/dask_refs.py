"""Large task results of the Dask engine stay on the node that made them; the rest get a reference.

A function's result that a warm worker put into its node's shared memory (a large one) does
not travel back: the node's agent keeps it and sends the driver a small reference, a pickle
that, when loaded, calls `resolve`. Where it is loaded decides what happens:

- in a task on the node that made it: the node's shared-memory files are mapped (no copy);
- in a task on another machine: that node's agent fetched a copy from the owner's agent before
  the task started (driver-told, node to node over the workers' Dask comms) into its own shared
  memory, and the task maps that copy;
- in the driver (``future.result()``) or anywhere else: mapped if on the owner's machine (nodes
  that declare the same host share its shared memory), else fetched from the owner's agent then.

So the driver holds a reference until it asks for the value. The reference's bytes on the driver
are a `RemoteBlob`: when the last holder lets go of it (the runtime once no dependent still
reads it, and the future once loaded or dropped), the owner and every node with a copy are told
to drop theirs. A node that is lost takes its results with it: a task that reads one and starts
later gets it recomputed on its own node first (the driver keeps the function and arguments of
each task whose result is kept, `DaskEngine._recompute`), and the driver's ``future.result()``
of such a result fails with a `LookupError` that says so.
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
REFUSED = "refused: "  # a fetch's answer that begins so: the node keeps the result but will not send it (why follows)

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


def reference(key: str, host: str, owner_pid: int, address: str, envelope: bytes) -> bytes:
    """The driver's handle on a result kept by the agent ``owner_pid`` (at worker ``address``) on ``host``."""
    return pickle.dumps(_Remote(key, host, owner_pid, address, envelope), 5)


def this_host() -> str:
    """The machine this process runs on, named as nodes declare theirs (`dask_node.declare_node`)."""
    return os.environ.get("STEERFLOW_NODE_HOST") or socket.gethostname().split(".")[0] or "localhost"


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
    parent = serialize.owner_pid()  # the node agent that runs this worker (its parent is the worker's guard)
    same_host = host == this_host()
    if same_host and owner_pid in (parent, os.getpid()):
        return serialize.loads(envelope, consume=False)  # a task on the node that made it: map its files
    try:
        with open(copy_index(key, parent), "rb") as f:  # a task on a node whose agent fetched a copy
            return serialize.loads(f.read(), consume=False)
    except FileNotFoundError:
        pass
    if same_host:  # the same machine (another node's worker, or the driver): its shared memory, no copy
        try:
            return serialize.loads(envelope, consume=False)
        except FileNotFoundError:
            pass
    try:
        if address in _gone:
            raise ConnectionError("the driver saw that node leave")
        data = fetch(address, key)
    except (LookupError, MemoryError):  # (MemoryError: the node keeps it, but would be restarted sending it)
        raise
    except Exception as exc:  # noqa: BLE001 - the node is gone (refused, reset, timed out)
        raise LookupError(f"Result {key} was kept on the Dask worker at {address}, which cannot be reached "
                          f"({type(exc).__name__}: {exc}): it was lost with that node. Tasks that still read "
                          "it get it recomputed on their own node; for this value, rerun the task that made it."
                          ) from exc
    return pickle.loads(data)


def register(address: str, security: Any) -> None:
    """How this process reaches the worker at ``address`` (the driver registers each node it adopts)."""
    _security[address] = security
    _gone.discard(address)


def gone(address: str) -> None:
    """The worker at ``address`` left: what it kept is lost (said at once, not after a connect timeout)."""
    _gone.add(address)


_gone: set[str] = set()


async def fetch_async(address: str, key: str, connection_args: dict[str, Any], comm: Any = None) -> bytes:
    """A kept result's value (a self-contained pickle) from the agent of the worker at ``address``.

    With ``comm`` (an open comm to that worker), the request goes over it and it stays open.
    """
    from distributed.comm import connect

    own = comm is None
    if own:
        comm = await connect(address, **connection_args)
    try:
        await comm.write({"op": FETCH_HANDLER, "key": key, "reply": True})
        data = await comm.read()
    finally:
        if own:
            await comm.close()
    if isinstance(data, str) and data.startswith(REFUSED):
        raise MemoryError(data[len(REFUSED):])
    if not isinstance(data, bytes):
        raise LookupError(f"The node at {address} no longer holds result {key}: {data}. It was dropped after "
                          "its last consumer, or its node restarted; rerun the task that made it.")
    return data


class _Fetcher:
    """A thread with its own event loop and one open comm per node: `fetch` from any thread, no set-up per call."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.comms: dict[str, Any] = {}
        self.locks: dict[str, asyncio.Lock] = {}
        threading.Thread(target=self.loop.run_forever, name="steerflow-fetch", daemon=True).start()

    async def get(self, address: str, key: str) -> bytes:
        from distributed.comm import connect

        lock = self.locks.setdefault(address, asyncio.Lock())
        async with lock:  # one request at a time per comm
            comm = self.comms.get(address)
            if comm is None or comm.closed():
                security = _security.get(address)
                args = security.get_connection_args("client") if security is not None else {}
                comm = self.comms[address] = await connect(address, **args)
            try:
                return await fetch_async(address, key, {}, comm)
            except Exception:
                self.comms.pop(address, None)
                comm.abort()
                raise


_fetcher: _Fetcher | None = None
_fetcher_lock = threading.Lock()


def fetch(address: str, key: str, timeout: float = 600.0) -> bytes:
    """`fetch_async` from any thread, even one running an event loop (it runs on the fetcher's thread)."""
    global _fetcher
    with _fetcher_lock:
        if _fetcher is None:
            _fetcher = _Fetcher()
    return asyncio.run_coroutine_threadsafe(_fetcher.get(address, key), _fetcher.loop).result(timeout)


class _Every:
    """Contains every key (`keys_in(payload, EVERY_KEY)`: each reference a payload carries, known or not)."""

    def __contains__(self, key: object) -> bool:
        return True

    def __bool__(self) -> bool:
        return True


EVERY_KEY: Any = _Every()


def keys_in(payload: bytes | None, known: Any) -> list[str]:
    """The references to ``known`` kept results that a payload carries (their keys appear verbatim in its pickle)."""
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
