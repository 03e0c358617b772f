"""The session stream writes a small batch with its length in one write (one send, one segment, one wake-up of the
reader): session 7 wrote every batch's length apart, a second send per batch on both sides, and the Dask engine's
throughput on no-op tasks fell by ~10 %. A large batch still goes after its length, not copied behind it."""

from __future__ import annotations

import asyncio
from typing import Any

from steerflow.engines import dask_fast


class CountingTransport:
    """A real transport, with its writes counted (what was handed to it, in order)."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.writes: list[Any] = []

    def write(self, data: Any) -> None:
        self.writes.append(data)
        self.transport.write(data)

    def is_closing(self) -> bool:
        return self.transport.is_closing()


def test_a_small_batch_is_one_write_and_a_large_one_is_not_copied():
    async def main() -> tuple[list, list]:
        got: list = []
        token = "ab" * (dask_fast.TOKEN_BYTES // 2)
        address, done = await dask_fast.serve_once("127.0.0.1", None, token, got.append, lambda exc: None,
                                                   lambda protocol: None)
        driver = await dask_fast.connect(address, None, token, lambda batch: None, lambda exc: None)
        await asyncio.wait_for(done, 10)
        counted = CountingTransport(driver)
        outbox = dask_fast.StreamOutbox(counted, asyncio.get_running_loop())  # type: ignore[arg-type]
        outbox.same_thread = True
        small = [("launch", 1, 1, 7, ((0, (0,), (), 0),), b"x" * 100)]
        large = [("ok", 2, 1, b"y" * dask_fast.APART_BYTES, "", 0, None)]
        outbox.put(small)
        writes_small = list(counted.writes)
        counted.writes.clear()
        outbox.put(large)
        writes_large = list(counted.writes)
        for _ in range(500):
            if len(got) == 2:
                break
            await asyncio.sleep(0.01)
        assert got == [small, large]  # the reader takes both framings
        driver.close()
        return writes_small, writes_large

    writes_small, writes_large = asyncio.run(main())
    assert len(writes_small) == 1, [len(w) for w in writes_small]  # before: 2 (8 bytes, then the batch)
    assert len(writes_large) == 2 and len(writes_large[0]) == 8 and len(writes_large[1]) > dask_fast.APART_BYTES
