"""The Dask engine's hot path: one plain (or TLS) stream per driver session, beside the Dask comm.

A Dask comm costs ~0.1-0.2 ms per message in Python (msgpack framing, its stream layer); a
length-prefixed asyncio stream costs ~15 us. So, after the session opens over the Dask comm
(which authenticates the driver, with TLS where the cluster uses it), the node's agent listens
once on a fresh port of the worker's own interface, with the worker's TLS settings, tells the
driver where, and accepts one connection that presents the session's random token; then it
stops listening. Batches of launches go down and batches of events come back on that stream.
The Dask comm stays open: its close still means the driver (or the node) is gone.
"""

from __future__ import annotations

import asyncio
import hmac
import pickle
import struct
import threading
from collections.abc import Callable
from typing import Any

_LEN = struct.Struct("<Q")
TOKEN_BYTES = 32  # hex of 16 random bytes
#: a batch at least this large is written after its length, not copied behind it. Every smaller one is written whole:
#: written apart (session 7), each batch cost a second send, a second segment on the wire (TCP_NODELAY) and often a
#: second wake-up of the reader, ~10 % of the engine's throughput on no-op tasks; a copy of 64 KiB costs less
APART_BYTES = 64 << 10


def frame(items: list) -> bytes:
    data = pickle.dumps(items, 5)
    return _LEN.pack(len(data)) + data


class FrameProtocol(asyncio.Protocol):
    """Reads length-prefixed pickled batches; the accepting side first checks the session's token."""

    def __init__(self, on_batch: Callable[[list], None], on_lost: Callable[[BaseException | None], None],
                 token: bytes | None = None) -> None:
        self.on_batch = on_batch
        self.on_lost = on_lost
        self.token = token  # expected first (accepting side); None once checked or when connecting
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.accepted: asyncio.Future | None = None
        self.on_accept: Callable[[FrameProtocol], None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if self.token is not None:
            if len(buffer) < TOKEN_BYTES:
                return
            if not hmac.compare_digest(bytes(buffer[:TOKEN_BYTES]), self.token):
                self.transport.close()  # type: ignore[union-attr]
                return
            del buffer[:TOKEN_BYTES]
            self.token = None
            if self.on_accept is not None:  # before the first batch: its replies go on this stream
                self.on_accept(self)
            if self.accepted is not None and not self.accepted.done():
                self.accepted.set_result(self)
        while len(buffer) >= 8:
            (size,) = _LEN.unpack_from(buffer, 0)
            if len(buffer) < 8 + size:
                return
            batch = pickle.loads(memoryview(buffer)[8:8 + size])
            del buffer[:8 + size]
            self.on_batch(batch)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.token is None:  # an accepted (or connecting) stream: its end is the session's
            self.on_lost(exc)


async def serve_once(host: str, ssl_context: Any, token: str, on_batch: Callable[[list], None],
                     on_lost: Callable[[BaseException | None], None], on_accept: Callable[[FrameProtocol], None],
                     timeout: float = 60.0) -> tuple[tuple[str, int], asyncio.Future]:
    """Listen on a fresh port of ``host`` for the one connection that presents ``token``.

    Returns the address to give the driver and a future of the accepted `FrameProtocol`
    (``on_accept`` runs first, before its first batch); the listening socket closes once that
    connection is in (or after ``timeout`` seconds).
    """
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future = loop.create_future()
    expected = token.encode()

    def factory() -> FrameProtocol:
        protocol = FrameProtocol(on_batch, on_lost, expected)
        protocol.accepted = accepted
        protocol.on_accept = on_accept
        return protocol

    server = await loop.create_server(factory, host, 0, ssl=ssl_context)
    address = server.sockets[0].getsockname()[:2]

    def stop(_: Any = None) -> None:
        server.close()

    accepted.add_done_callback(stop)
    loop.call_later(timeout, stop)
    return (address[0], address[1]), accepted


async def connect(address: tuple[str, int], ssl_context: Any, token: str, on_batch: Callable[[list], None],
                  on_lost: Callable[[BaseException | None], None]) -> asyncio.Transport:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(lambda: FrameProtocol(on_batch, on_lost), address[0], address[1],
                                                ssl=ssl_context)
    transport.write(token.encode())
    return transport  # type: ignore[return-value]


class StreamOutbox:
    """Batches written to a session stream in order, from any thread (the loop's own: written at once)."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self.loop = loop
        self.same_thread = False  # puts come from the thread that runs (or owns) the loop
        self.broken = False
        self._lock = threading.Lock()

    def put(self, items: list) -> None:
        data = pickle.dumps(items, 5)
        if self.same_thread:
            self._write(data)
        else:
            try:
                self.loop.call_soon_threadsafe(self._write, data)
            except RuntimeError:  # the loop closed
                self.broken = True

    def _write(self, data: bytes) -> None:
        if self.transport.is_closing():
            self.broken = True
            return
        if len(data) < APART_BYTES:  # one write, one send (and one wake-up on the other side)
            self.transport.write(_LEN.pack(len(data)) + data)
        else:  # its length apart: no copy of a large batch
            self.transport.write(_LEN.pack(len(data)))
            self.transport.write(data)
