"""What crosses between the driver and the node agents of the Dask engine, and how.

Messages are batches: a list of operation tuples pickled into one bytes object and written
as one Dask comm message, so several launches (or several results) share one round trip.
An `Outbox` coalesces whatever is queued while a write is in flight into the next write.

Payloads and results that live in shared memory on one machine (`serialize` envelopes) are
made self-contained before they leave it, and put back into the receiving node's shared
memory when they are large, so a warm worker still maps them instead of reading a pipe.
"""

from __future__ import annotations

import asyncio
import pickle
import threading
from typing import Any

import cloudpickle

from .. import serialize
from . import dask_refs
from ..resources import Allocation, Node

LOCAL_SHM_MIN = serialize.SHM_THRESHOLD


def node_fields(node: Node) -> tuple:
    return (node.name, node.cores, node.gpus, node.memory_mb, node.cpu_ids, node.gpu_ids, node.host)


def allocation_from(nodes: list[tuple] | tuple) -> Allocation:
    return Allocation(tuple(Node(*fields) for fields in nodes), source="dask")


def dumps_spec(obj: Any) -> bytes:
    """A function or an Executable description, by value where it must be (cloudpickle)."""
    return cloudpickle.dumps(obj, serialize.PROTOCOL)


def loads_spec(data: bytes) -> Any:
    return pickle.loads(data)


def payload_for_wire(payload: bytes) -> bytes:
    """A self-contained copy of a task's arguments (the driver's shared memory stays where it is)."""
    if serialize.in_shared_memory(payload):
        with dask_refs.keeping():  # references to results kept on nodes stay references
            return serialize.dumps_inband(serialize.loads(payload, consume=False))
    return payload


def payload_here(payload: bytes) -> bytes:
    """Arguments that came over the wire: large ones go back into this node's shared memory."""
    if len(payload) >= LOCAL_SHM_MIN:
        try:
            with dask_refs.keeping():
                return serialize.dumps(serialize.loads(payload))
        except Exception:  # noqa: BLE001 - the worker loads it (and reports the error) itself
            return payload
    return payload


def release_local(payload: bytes) -> None:
    serialize.release(payload)


def result_for_wire(blob: bytes) -> bytes:
    """A result or exception made self-contained (its shared-memory files on this node are freed)."""
    if serialize.in_shared_memory(blob):
        return serialize.dumps_inband(serialize.loads(blob, consume=True))
    return blob


class Outbox:
    """Batches written to one comm in order, from any thread; what queues during a write goes in the next."""

    def __init__(self, comm: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.comm = comm
        self.loop = loop
        self._items: list = []
        self._lock = threading.Lock()
        self._scheduled = False
        self.broken = False
        self._loop_thread: int | None = None  # learnt on the first drain
        self.same_thread = False  # puts come from the thread that runs the loop (and not while it runs)

    def put(self, items: list) -> None:
        """Queue items (any thread); the loop writes them as soon as the comm is free."""
        with self._lock:
            self._items.extend(items)
            if self._scheduled:
                return
            self._scheduled = True
        if self.same_thread or threading.get_ident() == self._loop_thread:
            # the loop's own thread: the write task's first step (the socket write) runs in the loop's
            # next iteration, not two iterations later (a call_soon that then creates the task)
            self.loop.create_task(self._drain())
        else:
            self.loop.call_soon_threadsafe(self._start)

    def _start(self) -> None:
        self.loop.create_task(self._drain())

    async def _drain(self) -> None:
        self._loop_thread = threading.get_ident()
        try:
            while True:
                with self._lock:
                    items, self._items = self._items, []
                    if not items:
                        self._scheduled = False
                        return
                await self.comm.write({"b": pickle.dumps(items, 5)})
        except Exception:  # noqa: BLE001 - the comm closed: the reader side reports it
            self.broken = True
            with self._lock:
                self._scheduled = False
