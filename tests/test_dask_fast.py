"""The Dask engine's session stream (`engines.dask_fast`): only the driver that holds the token gets in, once."""

from __future__ import annotations

import asyncio

import pytest

from steerflow.engines import dask_fast


def test_session_stream_accepts_only_its_token_then_stops_listening():
    async def main() -> None:
        got: list = []
        lost: list = []
        accepted: list = []
        token = "ab" * (dask_fast.TOKEN_BYTES // 2)
        address, done = await dask_fast.serve_once("127.0.0.1", None, token, got.append, lost.append,
                                                   accepted.append)
        # a stranger with the wrong token is disconnected and its bytes are never read as a batch
        stranger = await dask_fast.connect(address, None, "cd" * (dask_fast.TOKEN_BYTES // 2), got.append,
                                           lambda exc: None)
        stranger.write(dask_fast.frame([("launch", 1)]))
        for _ in range(200):
            if stranger.is_closing():
                break
            await asyncio.sleep(0.01)
        assert stranger.is_closing() and got == [] and not done.done()
        # the driver: in, and batches flow both ways
        replies: list = []
        driver = await dask_fast.connect(address, None, token, replies.append, lambda exc: None)
        driver.write(dask_fast.frame([("alloc", 1)]))
        server_side = await asyncio.wait_for(done, 10)
        assert accepted == [server_side]
        for _ in range(200):
            if got:
                break
            await asyncio.sleep(0.01)
        assert got == [[("alloc", 1)]]
        server_side.transport.write(dask_fast.frame([("ok", 1, 1, b"x" * 100_000)]))  # spans several reads
        for _ in range(200):
            if replies:
                break
            await asyncio.sleep(0.01)
        assert replies == [[("ok", 1, 1, b"x" * 100_000)]]
        # no longer listening: nobody else can connect to that port
        await asyncio.sleep(0.05)
        with pytest.raises(OSError):
            await dask_fast.connect(address, None, token, got.append, lambda exc: None)
        driver.close()
        for _ in range(200):
            if lost:
                break
            await asyncio.sleep(0.01)
        assert len(lost) == 1  # the driver's end reaches the node's side (it ends the session)

    asyncio.run(main())
