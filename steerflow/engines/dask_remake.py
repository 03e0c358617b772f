"""Results kept on a Dask node that left: made again on the node of a task that reads one.

For every result kept on a node (`dask_refs`), the driver keeps the function and the arguments of the
task that made it (a *recipe*). When that node leaves, its keys are marked lost. A task that reads a
lost result and starts later has it made again on its own node, in its own slot, before it starts:
that node's agent runs the function as a hidden task the driver never schedules, and keeps the result
as its copy under the same key (`dask_node`). This nests: where the maker read kept results itself,
those are copied to the reader's node first, or, lost too, made again there first. Where a result
cannot be made again (its maker is unknown, needed more cores or GPUs than the reader holds, or read
a kept result freed since), the reader fails at once with an error that says why.

A mixin of `steerflow.engines.dask.DaskEngine`; every method runs on the engine's event loop thread.
"""

from __future__ import annotations

from typing import Any

from .. import serialize
from ..task import Function
from . import dask_refs, wire
from .base import Event, FunctionKeys, Launch
from .dask_comms import NodeLink, send_function

MAX_DEPTH = 32  # makers of makers of ... made again, at most (a longer chain fails clearly)


class Remake:
    """Recipes of kept results, and the needs a launch sends to make lost ones again (see the module docstring)."""

    _refs: dict[str, int]
    _copies: dict[str, set[int]]
    _lost: dict[str, str]
    _launches: dict[int, Launch]
    _recipes: dict[str, tuple[Any, Any, int, int]]
    _links: dict[int, NodeLink]
    _nodes: list[Any]
    _events: Any
    _fn_keys: FunctionKeys

    def _keep_recipe(self, key: str, task_id: int) -> None:
        """A result kept on a node: remember how to make it again, should that node be lost."""
        launch = self._launches.get(task_id)
        if launch is None or not isinstance(launch.spec, Function):
            return
        payload = launch.payload
        if payload is not None and serialize.in_shared_memory(payload):
            payload = wire.payload_for_wire(payload)  # (the runtime frees the driver's copy once the task ends)
        slot = launch.placement.slots[0]
        self._recipes[key] = (launch.spec.fn, payload, len(slot.cores), len(slot.gpus))

    def _recompute(self, launch: Launch, link: NodeLink, lost: list[str]) -> list[tuple] | None:
        """Inputs kept on a node that is gone: made again on this task's node first, in its slot
        (``(key, None, fn key, payload, what to copy or make first)`` needs); None, with the task failed
        at once, where one cannot be made again."""
        slot = launch.placement.slots[0]
        needs: list[tuple] = []
        for key in lost:
            need = self._remake(key, link, len(slot.cores), len(slot.gpus), 0)
            if isinstance(need, str):
                self._events.append(Event("error", launch.task_id, launch.attempt, serialize.dumps_inband(RuntimeError(
                    f"Task {launch.task_id} cannot start: its input {key} was kept on node {self._lost[key]}, "
                    f"which left the Dask cluster, and it cannot be recomputed here ({need}). Rerun the task "
                    "that made it (or keep fewer results on nodes: return smaller values).")), "", 0, None))
                return None
            needs.append(need)
        return needs

    def _remake(self, key: str, link: NodeLink, cores: int, gpus: int, depth: int) -> tuple | str:
        """How ``link``'s node makes lost result ``key`` again, in a slot of ``cores`` and ``gpus``; or why it cannot."""
        recipe = self._recipes.get(key)
        if recipe is None:
            return "what made it is unknown here"
        fn, payload, need_cores, need_gpus = recipe
        if need_cores > cores or need_gpus > gpus:
            return "the task that made it needs more cores or GPUs than this one holds"
        if depth >= MAX_DEPTH:
            return f"more than {MAX_DEPTH} results, each made from the one before, were lost together"
        first: list[tuple] = []  # what its maker read: copied here, or (lost too) made again here, first
        for inner in dask_refs.keys_in(payload, dask_refs.EVERY_KEY):
            if inner not in self._refs:
                return f"the task that made it read {inner}, a result kept on a node and freed since"
            if inner in self._lost:
                sub = self._remake(inner, link, cores, gpus, depth + 1)
                if isinstance(sub, str):
                    return f"{sub}, for {inner}, which the task that made it read and was lost too"
                first.append(sub)
            else:
                owner = self._refs[inner]
                if owner != link.index and self._nodes[owner].host != self._nodes[link.index].host:
                    first.append((inner, self._links[owner].address))  # (same host: read from its shared memory)
                else:
                    continue
            self._copies.setdefault(inner, set()).add(link.index)  # (so that its drop reaches this node too)
        fn_key, fn_bytes = self._fn_keys.get(fn)
        if fn_key not in link.known_fns:
            send_function(link, fn_key, fn_bytes)
        return (key, None, fn_key, payload, tuple(first))
