"""A node's copies of other nodes' results, and results made again here when their node is gone.

A launch that reads a result kept on another node waits (parked) until that result is copied
into this node's shared memory (`dask_refs.fetch_async`), or, when its node is lost, until its
function runs again here on the same arguments, unseen by the driver (nested when what it read
was lost too). The functions the driver let go of are dropped only once no copy or
recomputation may still need them.
"""

from __future__ import annotations

import asyncio
import os
import pickle
from typing import Any

from .. import serialize
from . import dask_refs


class NodeCopies:
    """The copy and recompute side of a node's session (`dask_node._Session`), on the worker's event loop."""

    def _forget_functions(self) -> None:
        """Drop what the driver let go of, unless a copy or recomputation is under way (a launch parked
        behind it, or its recipe, may still need a function): then when the last one ends."""
        if self.forget and not self.fetching:
            for key in self.forget:
                self.functions.pop(key, None)
                self.fn_errors.pop(key, None)
            self.forget.clear()

    async def _copy(self, key: str, owner: str | None, recipe: list | None = None, slots: tuple = ()) -> None:
        """Copy another node's result into this node's shared memory (or, with ``recipe``, recompute a result
        whose node is gone: its function and arguments, run here in ``slots``), then start the launches
        waiting for it."""
        error: BaseException | None = None
        try:
            if recipe:
                if len(recipe) > 2 and recipe[2]:  # what its maker read: copied, or made again, here first
                    await self._first(recipe[2], slots)
                envelope = await self._recompute(recipe[0], recipe[1], slots[:1])
            else:
                data = await dask_refs.fetch_async(owner, key, self.agent.connection_args() if self.agent else {})
                envelope = serialize.dumps(pickle.loads(data))
                del data
            index = dask_refs.copy_index(key, os.getpid())
            with open(index, "xb", opener=_private) as f:
                f.write(envelope)
            self.copies[key] = (index, envelope)
        except BaseException as exc:  # noqa: BLE001 - the waiting launches fail with it
            error = exc
        finally:
            self.fetching.pop(key, None)
        if self.stopping:
            return
        waiting, self.parked = self.parked, []
        for op, missing in waiting:
            if error is not None and key in missing:
                self._failed(op, RuntimeError(f"its input {key} could not be copied from {owner}: {error}" if not recipe
                                              else f"its input {key}, lost with its node, could not be recomputed "
                                                   f"here: {error}"))
                continue
            missing.discard(key)
            if missing:
                self.parked.append((op, missing))
                continue
            try:
                self._apply(op)
            except Exception as exc:  # noqa: BLE001
                self._failed(op, exc)
        self._forget_functions()  # (the launches it held have their functions now)
        self._on_ready()

    async def _first(self, needs: tuple, slots: tuple) -> None:
        """The kept results a result to make again here reads: copied (or made again) here first."""
        for key, owner, *recipe in needs:
            if key in self.kept or key in self.copies:
                continue
            future = self.fetching.get(key)
            if future is None:
                future = self.fetching[key] = asyncio.ensure_future(self._copy(key, owner, recipe, slots))
            await future
            if key not in self.copies:
                raise RuntimeError(f"its own input {key} could not be {'made again' if recipe else 'copied'} here")

    async def _recompute(self, fn_key: int, payload: Any, slots: tuple) -> bytes:
        """Run a function task's function and arguments here, unseen by the driver; its result's envelope."""
        self.hidden -= 1
        task_id = self.hidden
        done = self.loop.create_future()
        self.recomputing[task_id] = done
        try:
            self.engine.launch(self._launch_of(task_id, 1, fn_key, slots, payload))
            self.engine.send_all()  # (the session defers sends to the end of a batch: this is no batch)
        except BaseException:
            self.recomputing.pop(task_id, None)
            raise
        event = await done
        if event.kind != "ok":
            error = event.text or event.kind
            if event.kind == "error":
                try:
                    error = repr(serialize.loads(event.value))
                except Exception:  # noqa: BLE001
                    pass
            raise RuntimeError(f"the task that made it failed when run again: {error}")
        return event.value

    def _drop(self, key: str) -> None:
        """The driver let go of a kept result (no consumer left): free this node's files of it."""
        envelope = self.kept.pop(key, None)
        if envelope is not None:
            serialize.release(envelope)
        copy = self.copies.pop(key, None)
        if copy is not None:
            serialize.release(copy[1])
            try:
                os.unlink(copy[0])
            except FileNotFoundError:
                pass


def _private(name: str, flags: int) -> int:
    return os.open(name, flags, 0o600)
