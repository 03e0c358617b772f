"""The Dask engine: one Dask worker per node runs what our scheduler placed on that node.

Dask supplies the workers (started by hand, by a `LocalCluster`, or as batch-system pilots by
dask-jobqueue), their discovery, comms and TLS. It does not schedule our tasks: the driver
opens one long-lived Dask comm to the steerflow agent in each worker (`dask_node`) and, beside
it, a session stream (`dask_fast`) on which it streams batches of launches and controls; results
stream back on the same stream (the Dask comm carries them when no stream could be set up). Everything a
runtime loop iteration launches goes out as one message per node (pipelining), and whatever
queues during a write goes with the next, so there is no batching timer anywhere.

Nodes: the allocation is what the workers declare (cores, GPUs, CPU/GPU ids, host name).
A worker that joins later becomes a new node (reported to the runtime as a ``"nodes"``
event, so the scheduler grows without a restart); a worker whose comm breaks or that leaves
the scheduler takes its node offline, and its tasks are reported lost (the runtime retries
them elsewhere). A node whose worker comes back under the same name and shape is online again.

Until the campaign starts, an event-loop thread of the engine connects and discovers the
nodes; then the runtime's loop thread takes the event loop over and runs it inside `wait`, so
a result is read, handled and the next launch written by one thread, with no hand-offs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from .. import serialize
from ..errors import AllocationError
from ..resources import Allocation, Node
from ..task import Function
from . import dask_refs, shared, wire
from .base import Event, FunctionKeys, Launch
from .dask_checks import ADDRESS_HINT, check_options
from .dask_comms import HELLO_S, ClusterSide, NodeLink, natural_key, send_function
from .dask_lost import NodeLoss
from .dask_remake import Remake
from .dask_timeouts import SoftTimeouts

log = logging.getLogger("steerflow.dask")


#: a node that has not ended a task within this long after being told to kill it is taken as gone (see
#: `DaskEngine._unanswered_kills`); a healthy node answers in milliseconds, one under heavy load in seconds
KILL_ANSWER_S = 30.0
SCHEDULER_CHECK_S = 2.0  # with no node left, how often `wait` looks whether the client gave up on the scheduler


class DaskEngine(Remake, NodeLoss, SoftTimeouts, ClusterSide):
    """Runs placed tasks on the nodes of a Dask cluster.

    Give exactly one of:
      ``address``: a running scheduler (``tcp://host:8786`` or ``tls://…``);
      ``cluster``: keyword arguments for a ``distributed.LocalCluster`` the engine starts
      (one worker process per node; ``n_workers`` nodes);
      ``jobqueue``: a dask-jobqueue spec, ``{"system": "slurm" | "pbs", "nodes": N,
      "cores": C, "gpus": G, "queue": …, "account": …, "walltime": …, "memory": …}``
      (further keys go to the jobqueue cluster class): one pilot job per node.
    With none, ``STEERFLOW_DASK_SCHEDULER`` names the scheduler, else a LocalCluster of one node.

    ``security``: a ``distributed.security.Security`` (TLS); a LocalCluster or jobqueue cluster
    that listens beyond loopback gets per-campaign temporary certificates when none is given.
    ``no_nodes_timeout``: once every node is gone for this long, `wait` raises, which fails the
    runtime's pending tasks with that cause instead of leaving them waiting forever.
    ``min_nodes``: how many nodes `discover` waits for (default: the cluster's size, or the
    workers the scheduler already has, at least 1), at most ``connect_timeout`` seconds.
    """

    local = False

    def __init__(self, address: str | None = None, *, cluster: dict[str, Any] | None = None,
                 jobqueue: dict[str, Any] | None = None, security: Any = None, min_nodes: int | None = None,
                 connect_timeout: float = 60.0, poll_interval: float = 0.5, no_nodes_timeout: float = 300.0) -> None:
        check_options(address, cluster, jobqueue, min_nodes, connect_timeout, poll_interval, no_nodes_timeout)
        self.address = address
        self.cluster_spec = cluster
        self.jobqueue_spec = jobqueue
        self.security = security
        self.min_nodes = min_nodes
        self.connect_timeout = connect_timeout
        self.poll_interval = poll_interval
        self.no_nodes_timeout = no_nodes_timeout
        self._none_since: float | None = None
        self.kill_answer_s = KILL_ANSWER_S
        self._kills: dict[int, tuple[float, int, int]] = {}  # task killed -> (answer due by, attempt, its node)
        self.cluster: Any = None
        self.client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._nodes: list[Node] = []
        self._links: dict[int, NodeLink] = {}        # node index -> link (online or not)
        self._by_address: dict[str, int] = {}
        self._connecting: set[str] = set()
        self._refused: dict[str, str] = {}  # worker address -> why it is no node (a wrong declaration)
        self._reached = False  # a connection to the scheduler's address was accepted (see discover's errors)
        self._scheduler_id: str | None = None  # the scheduler's id, as it answered (another: it was restarted)
        self._plugin_tasks: set[asyncio.Task] = set()  # registrations of our worker plugin still under way
        self.hello_s = HELLO_S  # a worker that has not answered a session's opening by then is asked again
        self._ended: set[tuple[int, int]] = set()  # (task, attempt) reported lost while a node of it lives on
        self._late: dict[int, tuple[int, float | None]] = {}  # tasks that waited for a warm worker (dask_timeouts)
        self._allocation: Allocation | None = None
        self._run_dir: Path | None = None
        self._started = False
        self._closed = False
        self._tasks: dict[int, tuple[int, int, frozenset[int]]] = {}  # task -> (node it runs on, attempt, nodes)
        self._fn_keys = FunctionKeys(wire.dumps_spec, on_clear=self._forget_functions)
        self._events: deque[Event] = deque()
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._poller = select.poll()
        self._poller.register(self._wake_fd, select.POLLIN)
        self._lock = threading.Lock()  # guards _nodes/_links between the comm thread and the runtime thread
        self._dirty = False               # nodes changed since the runtime last heard
        self._error: BaseException | None = None
        self._runtime_thread = 0
        self.shared_sent = 0  # shared objects sent to nodes (each at most once per node)
        self._owned = False     # True once the runtime's thread runs the event loop (in `wait`)
        self._waiting = False   # the runtime's thread is inside `wait`, running the loop
        self._present = 0  # workers the scheduler had when we connected: discover() waits for them all
        self._map: list[int] | None = None   # runtime node index -> our node index, for a declared allocation
        self._view: Allocation | None = None  # the allocation the runtime schedules on
        self._refs: dict[str, int] = {}  # large results kept on nodes (dask_refs): key -> the node keeping it
        self._copies: dict[str, set[int]] = {}  # key -> the other nodes that were told to copy it
        self._dropped: deque[str] = deque()  # keys whose last holder on the driver let go (any thread)
        self._launches: dict[int, Launch] = {}  # function tasks in flight: what a kept result is recomputed from
        self._recipes: dict[str, tuple[Any, Any, int, int]] = {}  # kept result -> (fn, payload, cores, gpus) of its task
        self._lost: dict[str, str] = {}  # kept results whose node is gone -> that node's name
        self._queued_on: dict[int, int] = {}  # task sent behind another (`launch_behind`) -> its node, till started/back
        self._behind: dict[int, int] = {}  # task -> the task sent behind it
        self._held_ends: dict[int, Event] = {}  # queued task -> the end of the one before, told with its start
        self._withdrawing: set[int] = set()  # of those, the ones the node was told to take back

    @classmethod
    def from_env(cls, address: str | None = None) -> DaskEngine:
        """``engine="dask"``: the scheduler in STEERFLOW_DASK_SCHEDULER (TLS files in STEERFLOW_DASK_TLS_*)."""
        address = address or os.environ.get("STEERFLOW_DASK_SCHEDULER") or None
        security = None
        ca = os.environ.get("STEERFLOW_DASK_TLS_CA")
        if ca:
            from distributed.security import Security

            security = Security(tls_ca_file=ca, tls_client_cert=os.environ.get("STEERFLOW_DASK_TLS_CERT"),
                                tls_client_key=os.environ.get("STEERFLOW_DASK_TLS_KEY"), require_encryption=True)
        min_nodes = int(os.environ.get("STEERFLOW_DASK_MIN_NODES", "0") or 0) or None
        if address is None:
            return cls(cluster={"n_workers": min_nodes or 1}, security=security, min_nodes=min_nodes)
        return cls(address, security=security, min_nodes=min_nodes)

    # ---- connecting --------------------------------------------------------------------------
    def discover(self) -> Allocation:
        """Connect (starting the cluster if this engine owns one) and return the nodes the workers declare."""
        if self._allocation is not None:
            return self._allocation
        self._ensure_loop()
        deadline = time.monotonic() + self.connect_timeout
        while True:
            want = self.min_nodes or max(self._expected_nodes(), self._present)
            if self._error is not None:
                self.shutdown()
                raise AllocationError(f"Could not start or reach the Dask cluster: {self._error}") from self._error
            with self._lock:
                online = sum(1 for link in self._links.values() if link.online)
            if online >= want:
                break
            if time.monotonic() > deadline:
                self.shutdown()
                if self.client is None:  # (the workers were never the question)
                    raise AllocationError(
                        f"No Dask scheduler answered at {self.address or 'the cluster being started'} within "
                        f"{self.connect_timeout:g} s" + (": something accepts connections there, but it did not answer "
                                                         f"as a Dask scheduler. {ADDRESS_HINT}" if self._reached
                                                         else ". Check that the scheduler runs and can be reached."))
                raise AllocationError(
                    f"Only {online} of {want} Dask worker(s) with the steerflow agent connected within "
                    f"{self.connect_timeout:g} s (scheduler {self.scheduler_address}). Check that the workers "
                    "started (their logs; for batch pilots: squeue/qstat), that they can import steerflow, "
                    "or lower min_nodes." + "".join(f" The worker at {address} is no node: {why}"
                                                    for address, why in sorted(self._refused.items())))
            time.sleep(0.02)
        with self._lock:  # the nodes present at the start are numbered by name, the same from run to run
            order = sorted(range(len(self._nodes)), key=lambda i: natural_key(self._nodes[i].name))
            new_index = {old: new for new, old in enumerate(order)}
            self._nodes = [self._nodes[i] for i in order]
            self._links = {new_index[i]: link for i, link in self._links.items()}
            for link in self._links.values():
                link.index = new_index[link.index]
            self._by_address = {a: new_index[i] for a, i in self._by_address.items()}
            self._allocation = Allocation(tuple(self._nodes), source="dask")
            self._dirty = False
        return self._allocation

    @property
    def scheduler_address(self) -> str:
        scheduler = getattr(self.client, "scheduler", None)
        return getattr(scheduler, "address", None) or self.address or "(not started)"

    def _expected_nodes(self) -> int:
        if self.cluster_spec is not None:
            return int(self.cluster_spec.get("n_workers", 1))
        if self.jobqueue_spec is not None:
            return int(self.jobqueue_spec.get("nodes", 1))
        return 1

    def _ensure_loop(self) -> None:
        if self._thread is not None:
            return
        if self.jobqueue_spec is not None and threading.current_thread() is threading.main_thread():
            import dask_jobqueue  # noqa: F401 - it installs a SIGINT handler on import: only the main thread may
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            self._main_task = loop.create_task(self._main(ready))
            loop.run_forever()  # until `start` hands the loop over to the runtime's thread

        self._thread = threading.Thread(target=run, name="steerflow-dask", daemon=True)
        self._thread.start()
        ready.wait(self.connect_timeout)

    # ---- the Engine protocol (runtime loop thread) -------------------------------------------------
    def start(self, allocation: Allocation, run_dir: Path) -> None:
        """Start the sessions. A declared allocation (not the discovered one) runs its node i on worker i."""
        known = self.discover()
        self._run_dir = Path(run_dir).resolve()
        if allocation is not known and allocation.nodes != known.nodes:
            try:
                self._map = self._map_declared(allocation)
            except AllocationError:
                self.shutdown()  # the runtime will not start: nothing else would close the cluster
                raise
        with self._lock:
            self._view = allocation
            self._started = True
            links = [link for link in self._links.values() if link.online]
            for link in links:
                link.pending.extend(self._hello(link.index))
        self._flush()
        deadline = time.monotonic() + self.connect_timeout  # warm workers up everywhere, as locally
        while not all(link.ready or not link.online for link in links) and time.monotonic() < deadline:
            time.sleep(0.005)
        self._hand_over()

    def _hand_over(self) -> None:
        """From now on the runtime's loop thread runs the event loop inside `wait`: one thread, no hand-offs."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        self._thread = None
        with self._lock:
            self._owned = True
            for link in self._links.values():
                link.outbox.same_thread = True

    def _map_declared(self, declared: Allocation) -> list[int]:
        online = [i for i in sorted(self._links) if self._links[i].online]
        if len(declared.nodes) > len(online):
            raise AllocationError(f"The allocation declares {len(declared.nodes)} nodes but the Dask cluster has "
                                  f"{len(online)}; declare fewer nodes or start more workers.")
        for want, i in zip(declared.nodes, online):
            have = self._nodes[i]
            if want.cores > have.cores or want.gpus > have.gpus:
                raise AllocationError(f"Declared node {want.name} ({want.cores} cores, {want.gpus} GPUs) does not "
                                      f"fit Dask node {have.name} ({have.cores} cores, {have.gpus} GPUs).")
        return online[:len(declared.nodes)]

    def _hello(self, index: int) -> list[tuple]:
        """What a node's agent needs before any launch: where the campaign lives and the nodes' view."""
        if self._map is None:
            nodes = [wire.node_fields(n) for n in self._nodes]
        else:  # declared nodes, bound to the real CPUs, GPUs and host of the worker each runs on
            nodes = []
            for want, i in zip(self._view.nodes, self._map):
                have = self._nodes[i]
                nodes.append((want.name, want.cores, want.gpus, want.memory_mb,
                              tuple(have.cpu_ids[c % len(have.cpu_ids)] for c in range(want.cores)),
                              have.gpu_ids[:want.gpus], have.host))
        mine = index if self._map is None else (self._map.index(index) if index in self._map else None)
        return [("run_dir", str(self._run_dir)), ("alloc", nodes, mine)]

    def _link(self, index: int) -> NodeLink | None:
        """The link that runs the runtime's node ``index``."""
        if self._map is not None:
            index = self._map[index] if index < len(self._map) else -1
        return self._links.get(index)

    def launch(self, launch: Launch) -> None:
        if not self._send_launch(launch):
            self._events.append(Event("lost", launch.task_id, launch.attempt,
                                      text="its node left the Dask cluster before it could start", code=-1))

    def launch_behind(self, launch: Launch, behind: int) -> bool:
        """Pipelining (`engines.base.Pipelining`): send ``launch`` to the node that runs ``behind``; its agent
        queues it on that task's warm worker (or holds it) and starts it the moment ``behind`` ends there,
        with no round trip to the driver. False (nothing sent) where the node is gone, the placement is
        elsewhere, or the task reads results that must first be copied from another node."""
        where = self._tasks.get(behind)
        if where is None or launch.task_id in self._tasks or where[2] != frozenset(s.node for s in launch.placement.slots):
            return False
        if not self._send_launch(launch, behind):
            return False
        self._queued_on[launch.task_id] = where[0]
        self._behind[behind] = launch.task_id
        return True

    def withdraw(self, task_id: int) -> bool:
        """Pipelining: always False here (whether the node started it is known only there); the node is told
        to take the task back, and answers ``"requeue"`` if it had not started (else it runs as usual)."""
        if task_id in self._queued_on and task_id not in self._withdrawing:
            self._withdrawing.add(task_id)
            self._control("withdraw", task_id)
        return False

    def _send_launch(self, launch: Launch, behind: int | None = None) -> bool:
        """Queue the launch (or, with ``behind``, the launch behind that task) for its node's next write."""
        slots = launch.placement.slots
        first = min(s.node for s in slots)
        link = self._link(first)
        nodes = frozenset(s.node for s in slots)
        if link is None or not all((other := self._link(n)) is not None and other.online for n in nodes):
            return False
        payload = launch.payload
        owners: list[tuple[str, int]] = []
        lost: list[str] = []
        if payload is not None and self._refs:  # results kept on other nodes that this task reads: copied first
            for key in dask_refs.keys_in(payload, self._refs):
                owner = self._refs[key]
                if key in self._lost:
                    lost.append(key)
                elif (owner != link.index and (owner_link := self._links.get(owner)) is not None
                        and self._nodes[owner].host != self._nodes[link.index].host):  # (else: its shm)
                    owners.append((key, owner))
        if (owners or lost) and behind is not None:
            return False  # (a copy or a recomputation before the start: not worth queueing)
        needs: list[tuple] = [(key, self._links[owner].address) for key, owner in owners]
        if lost:
            recomputed = self._recompute(launch, link, lost)
            if recomputed is None:
                return True  # failed with a clear error (an event)
            needs.extend(recomputed)
        for key, _, *_ in needs:
            self._copies.setdefault(key, set()).add(link.index)
        spec = launch.spec
        if isinstance(spec, Function):
            key, fn_bytes = self._fn_keys.get(spec.fn)
            if key not in link.known_fns:
                send_function(link, key, fn_bytes)
            what: Any = key
            if spec.args or spec.kwargs:
                for handle in shared.find(spec.args, spec.kwargs):  # shared objects: once per node
                    if handle.key not in link.known_shared and handle.blob is not None:
                        link.known_shared.add(handle.key)
                        link.pending.append(("shared", handle.key, handle.blob))
                        self.shared_sent += 1
        else:
            what = wire.dumps_spec(spec)
        if payload is not None and not (link.here and serialize.in_shared_memory(payload)):
            payload = wire.payload_for_wire(payload)  # (on this machine, the node maps the driver's files)
            if link.memory[0] and self._refuse_oversized(link, launch.task_id, launch.attempt, len(payload), behind):
                return behind is None  # failed at once, with why (one sent behind another: sent alone later, failed)
        if isinstance(spec, Function):
            self._launches[launch.task_id] = launch
        if behind is not None:
            link.pending.append(("behind", launch.task_id, launch.attempt, what, tuple(slots), payload, behind))
        else:
            op: tuple = ("launch", launch.task_id, launch.attempt, what, tuple(slots), payload)
            link.pending.append((*op, needs) if needs else op)
        self._tasks[launch.task_id] = (first, launch.attempt, nodes)
        return True

    def _forget_functions(self) -> None:
        """The function table was emptied: no node knows a number any more, so bytes go out again."""
        for link in self._links.values():
            if link.known_fns:
                link.pending.append(("fn_forget", list(link.known_fns.entries)))
            link.known_fns.clear()

    def _control(self, op: str, task_id: int) -> None:
        where = self._tasks.get(task_id)
        if where is None:
            return
        link = self._link(where[0])
        if link is not None and link.online:
            link.pending.append((op, task_id))

    def kill(self, task_id: int) -> None:
        self._control("kill", task_id)
        where = self._tasks.get(task_id)
        if where is not None and task_id not in self._kills:  # its node must answer (see KILL_ANSWER_S)
            self._kills[task_id] = (time.monotonic() + self.kill_answer_s, where[1], where[0])

    def preempt(self, task_id: int) -> None:
        self._control("preempt", task_id)

    def suspend(self, task_id: int) -> None:
        self._control("suspend", task_id)

    def resume(self, task_id: int) -> None:
        self._control("resume", task_id)

    def release_payload(self, task_id: int, payload: bytes) -> None:
        serialize.release(payload)  # the driver's copy; each node freed its own when the attempt ended

    def wakeup(self) -> None:
        """Any thread: make `wait` return (a pending wake-up if it is not waiting now)."""
        if self._owned:
            loop = self._loop
            if loop is None:
                return
            if self._waiting and threading.get_ident() == self._runtime_thread:
                loop.stop()
                return
            try:
                loop.call_soon_threadsafe(loop.stop)
            except RuntimeError:  # closed
                pass
            return
        try:
            os.eventfd_write(self._wake_fd, 1)
        except OSError:
            pass

    def _ref_dropped(self, key: str) -> None:
        """Any thread (a `RemoteBlob`'s last holder let go): the nodes free it at the next `wait`."""
        self._dropped.append(key)
        if not self._closed:
            self.wakeup()

    def _flush(self) -> None:
        while self._dropped:
            key = self._dropped.popleft()
            holders = self._copies.pop(key, set())
            owner = self._refs.pop(key, None)
            self._recipes.pop(key, None)
            self._lost.pop(key, None)
            if owner is not None:
                holders.add(owner)
            for index in holders:
                link = self._links.get(index)
                if link is not None and link.online:
                    link.pending.append(("drop", key))
        for link in self._links.values():
            if link.pending:
                items, link.pending = link.pending, []
                if link.online:
                    link.outbox.put(items)

    def wait(self, timeout: float | None) -> list[Event]:
        self._flush()
        events = self._events
        if self._owned:  # run the event loop here until an event, a wake-up or the timeout
            loop = self._loop
            assert loop is not None
            self._runtime_thread = threading.get_ident()
            if events or self._dirty:
                timeout = 0
            else:
                if self._none_since is not None:  # wake up in time to give up on a cluster with no workers
                    left = max(0.0, self._none_since + self.no_nodes_timeout - time.monotonic()) + 0.01
                    left = min(left, SCHEDULER_CHECK_S)  # (or on its scheduler, once its client gave up on it)
                    timeout = left if timeout is None else min(timeout, left)
                if self._kills:  # and to give up on a node that does not answer a kill
                    left = max(0.0, min(due for due, _, _ in self._kills.values()) - time.monotonic()) + 0.01
                    timeout = left if timeout is None else min(timeout, left)
            handle = loop.call_later(timeout, loop.stop) if timeout is not None else None
            self._waiting = True
            try:
                loop.run_forever()
            finally:
                self._waiting = False
                if handle is not None:
                    handle.cancel()
        else:
            if not events and not self._dirty:
                if self._kills:
                    left = max(0.0, min(due for due, _, _ in self._kills.values()) - time.monotonic()) + 0.01
                    timeout = left if timeout is None else min(timeout, left)
                self._poller.poll(None if timeout is None else max(0, int(timeout * 1000 + 0.999)))
            try:
                os.eventfd_read(self._wake_fd)
            except BlockingIOError:
                pass
        out: list[Event] = []
        if self._kills:
            self._unanswered_kills()
        if self._dirty:
            out.extend(self._nodes_changed())
            if any(link.online for link in self._links.values()):
                self._none_since = None
            elif self._none_since is None:
                self._none_since = time.monotonic()
        if self._none_since is not None and not self._closed and getattr(self.client, "status", "") == "closed":
            raise AllocationError(f"The Dask scheduler {self.scheduler_address} is gone (the client could not "
                                  f"reconnect within {self.connect_timeout:g} s), and every worker of this campaign "
                                  "with it; the tasks still waiting cannot run. Start the scheduler and its workers "
                                  "again and resume the campaign.")
        if self._none_since is not None and time.monotonic() - self._none_since > self.no_nodes_timeout:
            raise AllocationError(f"Every Dask worker of this campaign has been gone for more than "
                                  f"{self.no_nodes_timeout:g} s (scheduler {self.scheduler_address}); the tasks "
                                  "still waiting cannot run. Start workers (or pilots) again and resume the campaign.")
        while events:
            event = events.popleft()
            kind = event.kind
            if self._ended and (event.task_id, event.attempt) in self._ended and self._late_end(event):
                continue
            if self._queued_on and (kind == "started" or kind == "requeue"):
                self._queued_on.pop(event.task_id, None)
                self._withdrawing.discard(event.task_id)
                held = self._held_ends.pop(event.task_id, None)
                if held is not None:
                    out.append(held)
            where = self._tasks.get(event.task_id)
            if where is not None and where[1] == event.attempt and kind != "partial" and kind != "started":
                del self._tasks[event.task_id]
                self._launches.pop(event.task_id, None)
                if self._late:
                    self._late.pop(event.task_id, None)
                queued = self._behind.pop(event.task_id, None)
                if queued is not None and queued in self._queued_on:
                    # a task was sent behind this one after it had ended there: its start (or its return) is on
                    # its way. The runtime hears of this end together with it, as from the local engine.
                    self._held_ends[queued] = event
                    continue
            out.append(event)
        return out

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = self._loop
        if loop is not None and self._thread is not None:
            try:
                asyncio.run_coroutine_threadsafe(self._close(), loop).result(timeout=60)
            except Exception as exc:  # noqa: BLE001
                log.warning("closing the Dask engine: %s", exc)
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(timeout=10)
        elif loop is not None and not loop.is_running():  # handed over: close it from this thread
            closing = loop.create_task(asyncio.wait_for(self._close(), 60))
            while not closing.done():  # a wake-up queued earlier stops the loop early: run it again
                try:
                    loop.run_until_complete(closing)
                except RuntimeError:
                    continue
                except Exception as exc:  # noqa: BLE001
                    log.warning("closing the Dask engine: %s", exc)
                    break
        if loop is not None and not loop.is_running():
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            except Exception:  # noqa: BLE001
                pass
            loop.close()
        try:
            os.close(self._wake_fd)
        except OSError:
            pass
