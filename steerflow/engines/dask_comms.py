"""The Dask engine's side on its event loop: the cluster, the workers' discovery and one comm per node.

`ClusterSide` holds what runs as coroutines: starting or reaching the cluster, noticing workers
that join (by polling the scheduler) and leave (a broken comm, or gone from the scheduler),
opening a session with each worker's steerflow agent, and reading the batches of events it
streams back. `DaskEngine` (in `dask`) adds the Engine protocol the runtime calls. The state
they share is set up in `DaskEngine.__init__`; node indices are stable: a node that comes back
under the same name and shape gets its old index.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import sys
import threading
import time
from dataclasses import dataclass, field
from importlib.machinery import ModuleSpec
from typing import Any, Callable

from .. import serialize
from ..errors import AllocationError
from ..resources import Node
from . import dask_fast, dask_refs, wire
from .base import Event
from .dask_checks import ADDRESS_HINT, fail_if_refused, not_a_scheduler
from .dask_node import CHECK_RESULT_BYTES as CHECK_BYTES, HANDLER, NodePlugin
from .dask_quiet import stop_heartbeat
from .worker import KnownFunctions

log = logging.getLogger("steerflow.dask")


@dataclass
class NodeLink:
    """The comm to one node's agent."""

    index: int
    address: str
    comm: Any
    outbox: wire.Outbox
    pending: list = field(default_factory=list)
    known_fns: KnownFunctions = field(default_factory=KnownFunctions)  # (the node lets go of what this does)
    known_shared: set[str] = field(default_factory=set)
    online: bool = True
    ready: bool = False
    stream: Any = None  # the session's stream (dask_fast), when the node offered one
    clock: float = 0.0  # the node's clock minus the driver's (0 when within the measurement's error)
    memory: tuple = (0, 0, 0)  # (bytes its worker may hold before its nanny restarts it, in use, limit), or 0s
    here: bool = False  # its node runs on the driver's machine (it maps the driver's shared memory)


def send_function(link: NodeLink, key: int, fn_bytes: bytes) -> None:
    """A function's bytes to a node that does not hold them; the node lets go of what its table drops."""
    gone = link.known_fns.add(key, None, len(fn_bytes))
    if gone:
        link.pending.append(("fn_forget", gone))
    link.pending.append(("fn", key, fn_bytes))


#: what a node sends that is no event of a task for the runtime
_NOT_EVENTS = frozenset(("log", "ready", "late", "begun"))
#: how long the engine waits for the scheduler to install its plugin on the workers present (see `_install_plugin`)
PLUGIN_WAIT_S = 5.0
#: how long a worker may take to answer a session's opening (see `_open`); then it is asked again
HELLO_S = 20.0


class ClusterSide:
    """The coroutines of `DaskEngine` (see the module docstring); not used on its own."""

    # shared state, created by DaskEngine.__init__
    address: str | None
    cluster_spec: dict[str, Any] | None
    jobqueue_spec: dict[str, Any] | None
    security: Any
    connect_timeout: float
    poll_interval: float
    cluster: Any
    client: Any
    _loop: asyncio.AbstractEventLoop | None
    _nodes: list[Node]
    _links: dict[int, NodeLink]
    _by_address: dict[str, int]
    _connecting: set[str]
    _lock: threading.Lock
    _closed: bool
    _started: bool
    _owned: bool
    _dirty: bool
    _present: int
    _error: BaseException | None
    _map: list[int] | None
    _events: Any
    _main_task: asyncio.Task
    _refs: dict[str, int]
    _refused: dict[str, str]
    _reached: bool
    _scheduler_id: str | None
    scheduler_address: str  # DaskEngine's
    _plugin_tasks: set
    hello_s: float
    _tasks: dict[int, tuple[int, int, frozenset[int]]]
    _kills: dict[int, tuple[float, int, int]]
    kill_answer_s: float

    def wakeup(self) -> None:  # DaskEngine's
        raise NotImplementedError

    def _hello(self, index: int) -> list[tuple]:  # DaskEngine's
        raise NotImplementedError

    def _ref_dropped(self, key: str) -> None:  # DaskEngine's
        raise NotImplementedError

    def _keep_recipe(self, key: str, task_id: int) -> None:  # DaskEngine's
        raise NotImplementedError

    def _on_late(self, kind: str, task_id: int, attempt: int, times: Any) -> None:  # DaskEngine's (dask_timeouts)
        raise NotImplementedError

    async def _main(self, ready: threading.Event) -> None:
        try:
            await self._connect_client()
        except BaseException as exc:  # noqa: BLE001 - reported by discover()
            self._error = exc
            ready.set()
            return
        try:
            info = await self.client.scheduler.identity()
            self._present = len(info.get("workers", {}))
            self._scheduler_id = info.get("id")
        except Exception:  # noqa: BLE001
            pass
        ready.set()
        while not self._closed:
            try:
                await self._poll_workers()
            except Exception as exc:  # noqa: BLE001 - the scheduler may be briefly unreachable
                log.debug("polling the Dask scheduler failed: %s", exc)
            await asyncio.sleep(self.poll_interval)

    async def _connect_client(self) -> None:
        from distributed import Client

        address: Any = self.address
        if self.cluster_spec is not None or (self.address is None and self.jobqueue_spec is None):
            self.cluster, self.security = await start_local_cluster(dict(self.cluster_spec or {"n_workers": 1}),
                                                                    self.security)
            address = self.cluster
        elif self.jobqueue_spec is not None:
            self.cluster = await self._start_jobqueue(dict(self.jobqueue_spec))
            address = self.cluster
        if isinstance(address, str):
            self._reached = await fail_if_refused(address, self.security, min(5.0, self.connect_timeout))
        kwargs: dict[str, Any] = {"asynchronous": True, "timeout": self.connect_timeout}
        if self.security is not None and not hasattr(address, "scheduler_address"):
            kwargs["security"] = self.security
        try:
            self.client = await Client(address, **kwargs)
        except Exception as exc:
            if self._reached and not_a_scheduler(exc):
                raise ConnectionError(f"something listens at {address}, but it did not answer as a Dask scheduler "
                                      f"({type(exc).__name__}: {str(exc)[:200]}). {ADDRESS_HINT}") from exc
            raise
        if self.security is None:  # TLS set up in Dask's own configuration: the client took it, our comms need it too
            security = getattr(self.client, "security", None)
            if security is not None and security.get_connection_args("client").get("ssl_context") is not None:
                self.security = security
        await self._install_plugin()

    async def _install_plugin(self) -> None:
        """Register the agent (our worker plugin) with the scheduler, which installs it on every worker, present and
        future. Awaited only for a while: the scheduler waits for every present worker's answer, and a frozen
        worker never answers, so one hung worker held up every node's session, and the campaign's start ("Only
        0 of 1 Dask worker(s) ... connected" with a healthy worker there). Workers that have it get sessions as
        they come (a session opened before the plugin reached its worker fails, and is tried again at the next
        poll)."""
        task = asyncio.ensure_future(self.client.register_plugin(NodePlugin(), name=NodePlugin.name))
        self._plugin_tasks.add(task)  # (a task nobody holds may be collected before it ends)
        task.add_done_callback(self._plugin_tasks.discard)
        done, _ = await asyncio.wait({task}, timeout=PLUGIN_WAIT_S)
        if done and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]

    async def _start_jobqueue(self, spec: dict[str, Any]) -> Any:
        from .dask_batch import start_jobqueue

        cluster, self.security = await start_jobqueue(spec, self.security)
        return cluster

    async def _poll_workers(self) -> None:
        info = await self.client.scheduler.identity()
        if info.get("id") != self._scheduler_id:
            # another scheduler at the address (restarted; the client reconnected to it): its workers get our plugin,
            # the agent, only once it is registered there too (else they joined without it, and the tasks waited
            # for nodes, silently, while workers were there)
            restarted = self._scheduler_id is not None
            self._scheduler_id = info.get("id")
            await self._install_plugin()
            if restarted:
                log.warning("the Dask scheduler at %s was restarted; its workers join as nodes again",
                            self.scheduler_address)
        present = set(info.get("workers", {}))
        for address in present:
            if address not in self._by_address and address not in self._connecting:
                self._connecting.add(address)
                asyncio.ensure_future(self._open(address))
        for address, index in list(self._by_address.items()):
            if address not in present:
                self._node_gone(index, f"its Dask worker {address} left the scheduler")

    async def _open(self, address: str) -> None:
        from distributed.comm import connect

        comm = None
        try:
            kwargs = self.security.get_connection_args("client") if self.security is not None else {}
            comm = await connect(address, **kwargs)
            token = os.urandom(dask_fast.TOKEN_BYTES // 2).hex()
            sent = time.time()
            await comm.write({"op": HANDLER, "reply": False, "path": [p for p in sys.path if p], "token": token})
            # bounded: a worker that had no agent yet when the session's op came (a worker thawed, or one that
            # joined as the plugin was being installed) logs "No handler" and never answers, and the node never
            # joined (its address stayed in _connecting)
            hello = await asyncio.wait_for(comm.read(), self.hello_s)
            clock = clock_offset(hello.get("time"), sent, time.time())
        except Exception as exc:  # noqa: BLE001 - retried at the next poll
            log.debug("could not open a session with %s: %r", address, exc)
            if comm is not None:
                comm.abort()
            self._connecting.discard(address)
            return
        holder: list[NodeLink] = []  # the session's stream (dask_fast) is up before any op is sent on it
        stream = None
        if hello.get("fast"):
            try:
                stream = await dask_fast.connect(tuple(hello["fast"]), kwargs.get("ssl_context"), token,
                                                 lambda batch: self._on_batch(holder[0], batch),
                                                 lambda exc: self._stream_lost(holder, exc))
            except Exception as exc:  # noqa: BLE001 - the Dask comm carries the session then
                log.info("node at %s: no session stream (%s); using the Dask comm", address, exc)
        elif hello.get("fast_error"):
            log.info("node at %s: no session stream (%s); using the Dask comm", address, hello["fast_error"])
        try:
            if "refused" in hello:
                raise AllocationError(hello["refused"])
            node = _node_from(hello["node"])
        except (AllocationError, KeyError, TypeError, ValueError) as exc:  # not retried: it will not change
            self._refused[address] = str(exc)
            log.warning("the Dask worker at %s is no steerflow node: %s", address, exc)
            if stream is not None:
                stream.close()
            await comm.close()
            return
        link = self._adopt(address, node, comm, stream)
        self._connecting.discard(address)
        if link is None:
            if stream is not None:
                stream.close()
            await comm.close()
            return
        holder.append(link)
        link.clock = clock
        link.memory = tuple(hello.get("memory") or (0, 0, 0))
        await self._read(link)

    def _stream_lost(self, holder: list[NodeLink], exc: BaseException | None) -> None:
        if holder and not self._closed:
            link = holder[0]
            self._node_gone(link.index, f"the session stream to its Dask worker {link.address} closed ({exc or 'EOF'})")

    def _adopt(self, address: str, node: Node, comm: Any, stream: Any = None) -> NodeLink | None:
        with self._lock:
            index = next((i for i, n in enumerate(self._nodes) if n.name == node.name), None)
            if index is not None and (self._links[index].online or self._nodes[index] != node):
                base, k = node.name, 2  # another worker already declared this name, or its shape changed
                while any(n.name == f"{base}-{k}" for n in self._nodes):
                    k += 1
                node = Node(f"{base}-{k}", node.cores, node.gpus, node.memory_mb, node.cpu_ids, node.gpu_ids,
                            node.host)
                index = None
            if index is None:
                index = len(self._nodes)
                self._nodes.append(node)
            outbox: Any = (wire.Outbox(comm, self._loop) if stream is None  # type: ignore[arg-type]
                           else dask_fast.StreamOutbox(stream, self._loop))  # type: ignore[arg-type]
            link = NodeLink(index, address, comm, outbox, stream=stream, here=node.host == dask_refs.this_host())
            dask_refs.register(address, self.security)  # where `future.result()` fetches what this node keeps
            link.outbox.same_thread = self._owned
            self._links[index] = link
            self._by_address[address] = index
            self._dirty = True
            if self._started:
                link.pending.extend(self._hello(index))
                if self._map is None:  # the others learn of the new node (MPI host lists may include it)
                    nodes = [wire.node_fields(n) for n in self._nodes]
                    for other in self._links.values():
                        if other is not link and other.online:
                            other.pending.append(("alloc", nodes, other.index))
        if self._started:
            self.wakeup()
        log.info("node %s joined (%s)", node.name, address)
        return link

    async def _read(self, link: NodeLink) -> None:
        """The Dask comm: batches (when there is no session stream), and its close, which means the node left."""
        try:
            while True:
                msg = await link.comm.read()
                self._on_batch(link, pickle.loads(msg["b"]))
        except Exception as exc:  # noqa: BLE001 - the comm broke: the node is gone
            if not self._closed:
                self._node_gone(link.index, f"the comm to its Dask worker {link.address} closed ({exc or 'EOF'})")

    def _on_batch(self, link: NodeLink, batch: list) -> None:
        """A batch of events from a node (on the event loop): to the runtime, which is woken."""
        out = []
        clock = link.clock
        for kind, task_id, attempt, value, text, code, times in batch:
            if clock and times:  # the worker's timestamps, on the driver's clock
                times = tuple(t - clock for t in times)
            if kind in _NOT_EVENTS:
                if kind == "log":
                    log.warning("%s", text)
                elif kind == "ready":
                    link.ready = True
                else:  # "late", "begun": a task waited for its warm worker (dask_timeouts)
                    self._on_late(kind, task_id, attempt, times)
                continue
            if kind == "ok" and text:  # a large result kept on the node: our handle on it
                value = dask_refs.RemoteBlob(value, text, self._ref_dropped)
                self._refs[text] = link.index
                self._keep_recipe(text, task_id)
            out.append(Event(kind, task_id, attempt, value, text, code, times))
        self._events.extend(out)
        self.wakeup()

    def _refuse_oversized(self, link: NodeLink, task_id: int, attempt: int, size: int, behind: int | None) -> bool:
        """True, with the task failed at once, where arguments of ``size`` bytes sent in-band to the node would take
        its Dask worker past the point where its nanny restarts it (which ends every task on the node, and again
        at each retry: the task then failed as "WorkerLost", with nothing about memory). Unpacking them there takes
        about three times their size (the stream's buffer, the batch, the node's copy). A task to be sent behind
        another (``behind``) is only not sent so: the runtime launches it alone later, and it fails then."""
        budget, used, limit = link.memory
        if not budget or size < CHECK_BYTES or used + 3 * size <= budget:
            return False
        why = (f"Task {task_id} cannot start on node {self._nodes[link.index].name}: its arguments are "
               f"{size / 1e6:.0f} MB, sent to the node's Dask worker, whose memory limit is {limit / 1e6:.0f} MB "
               f"({used / 1e6:.0f} MB in use when the session began); unpacking them there takes about three times "
               "their size, past the point where the worker's nanny restarts it (ending every task on the node). "
               "Raise the workers' memory limit (DaskEngine(cluster={'memory_limit': ...}), jobqueue memory=...), or "
               "pass smaller arguments (on the driver's own machine, NumPy arrays are mapped from its shared memory, "
               "not sent).")
        if behind is None:
            self._events.append(Event("error", task_id, attempt, serialize.dumps_inband(MemoryError(why)), why, 0,
                                      None))
        return True

    def _unanswered_kills(self) -> None:
        """A node that has not ended a task it was told to kill within ``kill_answer_s`` is gone for this
        campaign (frozen, swapping, cut off: its comm may stay open for the worker-ttl, 5-10 minutes): its tasks
        are lost, so a timeout holds on it too, and what it may still send is no longer heard."""
        now = time.monotonic()
        for task_id, (due, attempt, index) in list(self._kills.items()):
            where = self._tasks.get(task_id)
            if where is None or where[1] != attempt:  # it ended (or runs again): answered
                del self._kills[task_id]
            elif due <= now:
                del self._kills[task_id]
                why = (f"it did not end task {task_id} within {self.kill_answer_s:g} s of being told to kill it "
                       "(the worker is frozen, swapping or cut off)")
                if self._owned:
                    self._node_gone(index, why)
                elif self._loop is not None:  # (its comms belong to the event loop's thread)
                    self._loop.call_soon_threadsafe(self._node_gone, index, why)

    def _node_gone(self, index: int, why: str) -> None:
        with self._lock:
            link = self._links.get(index)
            if link is None or not link.online:
                return
            link.online = False
            self._by_address.pop(link.address, None)
            dask_refs.gone(link.address)
            self._dirty = True
            name = self._nodes[index].name
        log.warning("node %s is gone: %s", name, why)
        try:
            link.comm.abort()
            if link.stream is not None:
                link.stream.abort()
        except Exception:  # noqa: BLE001
            pass
        self.wakeup()

    async def _close(self) -> None:
        self._main_task.cancel()
        for link in list(self._links.values()):
            if link.stream is not None:
                link.stream.close()
            if link.online:
                try:
                    await link.comm.close()
                except Exception:  # noqa: BLE001
                    pass
        if self.client is not None:
            if self.cluster is not None:  # ours to close: quietly (see stop_heartbeat)
                try:
                    await asyncio.wait_for(self.client.run(stop_heartbeat), 10)
                except Exception:  # noqa: BLE001 - the workers may be gone already
                    pass
            await self.client.close()
        if self.cluster is not None:
            await self.cluster.close()
            getattr(self.cluster, "_steerflow_undo", lambda: None)()


def keep_script_out_of_workers() -> Callable[[], None]:
    """Worker processes that a `LocalCluster`'s nannies start (multiprocessing spawn) must not run the
    driver's script again: a campaign file without ``if __name__ == "__main__":`` (run by ``steerflow run``
    or ``python camp.py``) would otherwise run once more inside each worker, and fail there. Spawn runs
    the parent's ``__main__`` again in the child unless its ``__spec__`` names ``__main__`` itself; the
    workers need nothing of it (functions defined there travel by value). Returns what undoes it."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if main is None or (spec is None and not getattr(main, "__file__", None)) or getattr(spec, "name", "") == "__main__":
        return lambda: None
    main.__spec__ = ModuleSpec("__main__", None)

    def undo() -> None:
        if getattr(main.__spec__, "name", "") == "__main__":
            main.__spec__ = spec

    return undo


async def start_local_cluster(spec: dict[str, Any], security: Any = None) -> tuple[Any, Any]:
    """A `distributed.LocalCluster` as the engine starts one, and its security (TLS off loopback).

    One single-threaded worker process per node on 127.0.0.1 unless ``spec`` says otherwise, and
    no HTTP port (dashboard, /metrics) on the scheduler or the workers unless asked for.
    """
    from distributed import LocalCluster

    spec.setdefault("n_workers", 1)
    spec.setdefault("threads_per_worker", 1)
    spec.setdefault("processes", True)
    spec.setdefault("host", "127.0.0.1")
    spec.setdefault("dashboard_address", None)
    if security is None and not _loopback(spec["host"]):
        from distributed.security import Security

        security = Security.temporary()
    if security is not None:
        spec.setdefault("security", security)
        spec.setdefault("protocol", "tls://")
    undo = keep_script_out_of_workers() if spec["processes"] else (lambda: None)
    try:
        cluster = LocalCluster(asynchronous=True, **spec)
    except BaseException:
        undo()
        raise
    cluster._steerflow_undo = undo  # (a nanny restarting a worker spawns again: undone when the cluster closes)
    if spec["dashboard_address"] is None:  # no HTTP port on the scheduler unless asked (see quiet_scheduler)
        from .dask_batch import quiet_scheduler

        cluster.scheduler_spec["cls"] = quiet_scheduler()
    if spec.get("worker_dashboard_address") is None and "worker_class" not in spec:
        from .dask_quiet import QuietNanny, QuietWorker  # nor on the workers

        if spec["processes"]:
            cluster.new_spec["options"]["worker_class"] = QuietWorker  # the Nanny starts it (the options
            if cluster.new_spec["cls"].__name__ == "Nanny":             # dict is every worker's)
                for worker in (cluster.new_spec, *cluster.worker_spec.values()):
                    worker["cls"] = QuietNanny
        else:
            for worker in (cluster.new_spec, *cluster.worker_spec.values()):
                worker["cls"] = QuietWorker
    try:
        return await cluster, security
    except BaseException:
        undo()
        raise


def clock_offset(node_time: float | None, sent: float, received: float, slack: float = 0.002) -> float:
    """The node's clock minus the driver's, from one exchange (the node read its clock between
    ``sent`` and ``received``); 0.0 when it is within the exchange's own error, as on one machine
    (shifting by a guess would put a worker's timestamps before the driver's launch)."""
    if node_time is None:
        return 0.0
    offset = node_time - (sent + received) / 2
    return offset if abs(offset) > (received - sent) / 2 + slack else 0.0


def _node_from(fields: dict[str, Any]) -> Node:
    return Node(fields["name"], int(fields["cores"]), int(fields["gpus"]), int(fields.get("memory_mb", 0)),
                cpu_ids=tuple(fields.get("cpu_ids") or ()), gpu_ids=tuple(fields.get("gpu_ids") or ()),
                host=fields.get("host") or "localhost")


def natural_key(name: str) -> list:
    """node2 before node10."""
    import re

    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _loopback(host: str | None) -> bool:
    return host in (None, "", "127.0.0.1", "localhost", "::1")
