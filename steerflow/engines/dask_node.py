"""The steerflow agent inside each Dask worker: one per node, it runs what the driver placed there.

The driver's `DaskEngine` installs `NodePlugin` on every worker (present and future). The
plugin declares the node (name, cores, GPUs, CPU and GPU ids, the host name launchers use)
and adds one comm handler, ``steerflow_session``, to the worker's server: the driver opens a
long-lived Dask comm to it and streams batches of launches and controls; the agent streams
back batches of events. No task goes through Dask's scheduler, so there is no batching
interval on the hot path.

Per session the agent runs a `NodeEngine` (the local engine, launching multi-node MPI with
a real host list) on the worker's own event loop (its epoll descriptor is a loop reader): warm
worker processes for functions, subprocesses for programs, with the same binding as the local
engine. When the driver's comm closes (the driver died or shut down), that session's processes
are killed.

Declaring a node (environment of the ``dask worker`` process, or ``--resources``):
``--resources "cores=8,gpus=2"`` (else SLURM_CPUS_ON_NODE, else the CPUs we may run on;
GPUs from CUDA_VISIBLE_DEVICES / nvidia-smi), ``STEERFLOW_NODE_NAME`` (default: the short
host name, which ``srun --nodelist`` needs), ``STEERFLOW_NODE_HOST`` (for ``mpirun --host``;
default: the host name), ``STEERFLOW_NODE_CPUS`` (physical CPU ids, ``0-3`` or ``0,2``) and
``STEERFLOW_NODE_GPU_IDS`` (see :mod:`steerflow.engines.dask_declare`).
"""

from __future__ import annotations

import asyncio
import os
import pickle
import sys
import traceback
import time
from pathlib import Path
from typing import Any

from .. import serialize
from distributed.diagnostics.plugin import WorkerPlugin

from ..resources import Allocation
from ..placement import Slot
from ..scheduler import Placement
from ..task import Function
from . import dask_fast, dask_refs, shared, wire
from .dask_copies import NodeCopies
from .dask_declare import declare_node  # noqa: F401 (imported from here too)
from .base import Event, Launch
from .local import DEFAULT_BINDING, Binding, LocalEngine

PLUGIN_NAME = "steerflow-node"
HANDLER = "steerflow_session"
#: an in-band result at least this large is checked against the worker's memory limit before it is sent
CHECK_RESULT_BYTES = 8 << 20


def resident_bytes() -> int:
    """This process's resident memory (what a Dask nanny compares with the worker's memory limit)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class NodeEngine(LocalEngine):
    """The local engine on one node of a multi-node allocation: MPI launches get a real host list."""

    local = False

    def __init__(self, workers: int | None = None) -> None:
        super().__init__(workers)
        self._prespawned: list = []

    def prespawn(self) -> None:
        """Start the warm workers now, before the driver sends the allocation (their imports are most
        of a node's start-up, and they overlap with the driver's discovery); `start` adopts them."""
        n = self.initial_workers or len(os.sched_getaffinity(0))
        self._prespawned.extend(LocalEngine._spawn_worker(self, DEFAULT_BINDING) for _ in range(n))

    def _spawn_worker(self, binding: Binding) -> Any:
        if binding == DEFAULT_BINDING and self._prespawned:
            return self._prespawned.pop()
        return super()._spawn_worker(binding)

    def _worker_died(self, worker: Any, events: list[Event]) -> None:
        if worker in self._prespawned:  # died before the allocation came: `start` must not adopt it
            self._prespawned.remove(worker)
            self._idle.append(worker)  # (so the base class removes it and starts its replacement)
        super()._worker_died(worker, events)

    def shutdown(self) -> None:
        self._idle.extend(self._prespawned)  # never started: stopped with the rest
        self._prespawned.clear()
        super().shutdown()

    def fileno(self) -> int:
        """The engine's epoll descriptor: readable when a worker, a child or a wake-up has something."""
        return self._sel.fileno()

    def running(self, task_id: int) -> bool:
        """The task runs here (its end not read yet)."""
        return task_id in self._busy or task_id in self._children

    def queued_attempt(self, task_id: int) -> int | None:
        """The attempt of a task queued behind another on a warm worker (`launch_behind`), else None."""
        worker = self._queued_on.get(task_id)
        queued = worker.queued if worker is not None else None
        return queued.launch.attempt if queued is not None else None

    def set_allocation(self, allocation: Allocation) -> None:
        """The driver's allocation grew: node indices in placements refer to this one now."""
        self._allocation = allocation
        self._binding_cache.clear()


def adopt_import_path(driver_path: list[str]) -> None:
    """Put the driver's import path entries that this node can see (a shared file system) first.

    In the driver's order and ahead of this worker's own entries, so a name resolves as it did
    where the function was pickled (a `tests` package that some library installs into
    site-packages must not shadow the campaign's own `tests`).
    """
    new = [entry for entry in driver_path if entry and entry not in sys.path and os.path.isdir(entry)]
    sys.path[0:0] = new


class NodePlugin(WorkerPlugin):
    """A Dask worker plugin: declares the node and serves driver sessions on the worker's comms."""

    name = PLUGIN_NAME
    idempotent = True

    def setup(self, worker: Any) -> None:
        position = worker.name if isinstance(worker.name, int) else 0
        try:
            agent = NodeAgent(declare_node(dict(worker.state.total_resources), position=position), worker)
        except ValueError as exc:  # a node declared wrong: each driver that opens a session is told why
            sys.stderr.write(f"steerflow: {exc}\n")
            agent = NodeAgent({}, worker, refused=str(exc))
        worker.handlers[HANDLER] = agent.session
        worker.handlers[dask_refs.FETCH_HANDLER] = agent.fetch
        worker._steerflow_agent = agent  # noqa: SLF001 - kept alive with the worker

    def teardown(self, worker: Any) -> None:
        agent = getattr(worker, "_steerflow_agent", None)
        if agent is not None:
            agent.close()


def dask_setup(worker: Any) -> None:
    """``dask worker --preload steerflow.engines.dask_node``: the agent without waiting for a driver."""
    NodePlugin().setup(worker)


class NodeAgent:
    """Serves driver sessions; each has its own processes, killed when its driver's comm closes.

    Each driver schedules the nodes as if it owned them: give concurrent campaigns their own workers.
    """

    def __init__(self, node: dict[str, Any], worker: Any = None, refused: str = "") -> None:
        self.node = node
        self.worker = worker
        self.refused = refused  # why this worker is no node (its declaration is wrong), told to drivers
        self._sessions: set[_Session] = set()

    def address(self) -> str:
        """This worker's address, where other nodes and the driver fetch the results kept here."""
        return getattr(self.worker, "contact_address", None) or getattr(self.worker, "address", "")

    def memory_room(self) -> tuple[int, int, int]:
        """(what this worker may hold before its nanny restarts it, what it holds now, its memory limit) in bytes;
        (0, 0, 0) where no nanny enforces a limit. The driver hears it in the session's hello."""
        worker = self.worker
        limit = getattr(getattr(worker, "memory_manager", None), "memory_limit", None)
        if not limit or not getattr(worker, "nanny", None):
            return 0, 0, 0
        import dask

        fraction = dask.config.get("distributed.worker.memory.terminate", 0.95)
        return (int(fraction * limit), resident_bytes(), int(limit)) if fraction else (0, 0, 0)

    def memory_past(self, size: int, copies: int) -> str:
        """"" where holding ``copies`` times ``size`` bytes more keeps this worker under its nanny's limit; else the
        numbers, as a phrase for an error (past the limit the nanny restarts the worker: every task on the node
        ends, and again at each retry, and the task failed as "WorkerLost", with nothing about memory)."""
        budget, rss, limit = self.memory_room()
        if not budget or rss + copies * size <= budget:
            return ""
        return (f"the Dask worker of node {self.node.get('name')} has a memory limit of {limit / 1e6:.0f} MB "
                f"({rss / 1e6:.0f} MB in use), and that would take it past {budget / limit:.0%} of it, where its nanny "
                "restarts it and every task on the node ends")

    def connection_args(self) -> dict[str, Any]:
        security = getattr(self.worker, "security", None)
        return security.get_connection_args("worker") if security is not None else {}

    async def fetch(self, key: str = "") -> bytes | str:
        """A result kept on this node (or this node's copy of one), as a self-contained pickle."""
        for session in self._sessions:
            envelope = session.kept.get(key) or session.copies.get(key, (None, None))[1]
            if envelope is not None:
                size = len(envelope) + sum(os.path.getsize(path) for path in serialize.shm_paths(envelope))
                why = self.memory_past(size, 3) if size >= CHECK_RESULT_BYTES else ""  # (mapped, pickled, sent)
                if why:  # refused, and kept: not the node restarted, the result lost with it
                    return (f"{dask_refs.REFUSED}result {key} is {size / 1e6:.0f} MB, and sending it from node "
                            f"{self.node['name']} to another machine copies it into its Dask worker's memory; {why}. "
                            "It is left on that node for the tasks that read it there (they map it); to have it "
                            "here, raise the workers' memory limit (DaskEngine(cluster={'memory_limit': ...}), "
                            "jobqueue memory=...).")
                return serialize.dumps_inband(serialize.loads(envelope, consume=False))
        return f"node {self.node['name']} holds no result {key}"

    async def session(self, comm: Any, run_dir: str = "", nodes: Any = None, path: list[str] | None = None,
                      token: str | None = None) -> None:
        if self.refused:
            await comm.write({"refused": self.refused})
            return
        adopt_import_path(path or [])
        loop = asyncio.get_running_loop()
        session = _Session(self.node, run_dir, nodes, comm, loop, self)
        self._sessions.add(session)
        hello: dict[str, Any] = {"node": self.node}
        if token and len(token) == dask_fast.TOKEN_BYTES:  # the session's stream (dask_fast), beside this comm
            try:
                from distributed.comm.addressing import get_address_host

                ssl = None
                if getattr(self.worker, "security", None) is not None:
                    ssl = self.worker.security.get_listen_args("worker").get("ssl_context")
                hello["fast"], _ = await dask_fast.serve_once(
                    get_address_host(self.address()), ssl, token, session.post, lambda exc: comm.abort(),
                    session.use_stream)
            except Exception as exc:  # noqa: BLE001 - the Dask comm carries the session then
                hello["fast_error"] = f"{type(exc).__name__}: {exc}"
        hello["time"] = time.time()  # the driver puts our timestamps on its clock
        hello["memory"] = self.memory_room()  # (the driver sends no arguments that would get us restarted)
        await comm.write(hello)
        try:
            while True:
                msg = await comm.read()
                session.post(pickle.loads(msg["b"]))
        except Exception:  # noqa: BLE001 - a closed comm: the driver is gone or done
            pass
        finally:
            session.stop()
            self._sessions.discard(session)
            await loop.run_in_executor(None, session.close)

    def close(self) -> None:
        for session in list(self._sessions):
            session.stop()
            session.close()


class _Session(NodeCopies):
    """One driver's work on this node: a NodeEngine driven by the worker's own event loop.

    No extra thread: the engine's epoll descriptor is watched by the loop, so a finished task
    is read and its result written to the driver's comm in one wake-up, and functions are
    unpickled (their modules imported) on the main thread, as some modules require.
    """

    def __init__(self, node: dict[str, Any], run_dir: str, nodes: Any, comm: Any,
                 loop: asyncio.AbstractEventLoop, agent: NodeAgent | None = None) -> None:
        self.node = node
        self.agent = agent
        self.kept: dict[str, bytes] = {}  # results kept here: key -> envelope (this node's shared memory)
        self.copies: dict[str, tuple[str, bytes]] = {}  # other nodes' results copied here: key -> (index, envelope)
        self.fetching: dict[str, asyncio.Future] = {}
        self.parked: list[tuple[tuple, set[str]]] = []  # launches waiting for copies: (op, keys still missing)
        self.run_dir = Path(run_dir) if run_dir else Path(os.environ.get("TMPDIR", "/tmp"))
        self.comm = comm
        self.loop = loop
        self.stopping = False
        self.engine = NodeEngine(workers=max(1, min(int(node["cores"]), len(os.sched_getaffinity(0)))))
        # a batch's task messages are written once the whole batch is applied (`post`: the engine's `wait` writes
        # them), as the runtime's loop does locally (see `WarmPool.send_all`): a worker woken by its message took the
        # CPU from the agent mid-batch, which stalled the rest of the batch and the results going back
        self.engine.defer_sends = True
        self.allocation = wire.allocation_from(nodes) if nodes else None
        self.functions: dict[int, Function] = {}
        self.fn_errors: dict[int, str] = {}
        self.forget: set[int] = set()  # functions the driver let go of, dropped once no copy is under way
        self.payloads: dict[int, bytes] = {}
        self.shared_keys: list[str] = []
        self.outbox = wire.Outbox(comm, loop)
        self.outbox.same_thread = True  # every put comes from the worker's event loop
        self.stream: Any = None
        self.warming = 0
        self.recomputing: dict[int, asyncio.Future] = {}  # hidden task (`_recompute`) -> its end event
        self.hidden = -(1 << 40)  # hidden tasks' ids: below every warm-up no-op's
        self.held: dict[int, list] = {}  # task still running here -> [Launch sent behind it, preempt asked]
        self.held_behind: dict[int, int] = {}  # such a held task -> the task it waits for
        self.late: dict[int, int] = {}  # task launched on a warm worker still starting -> its attempt (see `_late`)
        loop.add_reader(self.engine.fileno(), self._on_ready)
        if self.allocation is not None:
            self.engine.start(self.allocation, self.run_dir)
        else:
            self.engine.prespawn()

    def post(self, ops: list) -> None:
        """Apply a batch from the driver (on the loop thread), then report what it caused at once."""
        for op in ops:
            try:
                self._apply(op)
            except Exception as exc:  # noqa: BLE001 - reported, never fatal to the session
                self._failed(op, exc)
        self._on_ready()

    def use_stream(self, protocol: Any) -> None:
        """The driver connected the session's stream: events go back on it from now on."""
        self.stream = protocol.transport
        outbox = dask_fast.StreamOutbox(protocol.transport, self.loop)
        outbox.same_thread = True
        self.outbox = outbox  # type: ignore[assignment]

    def stop(self) -> None:
        if self.stopping:
            return
        if self.stream is not None:
            self.stream.close()
        self.stopping = True
        try:
            self.loop.remove_reader(self.engine.fileno())
        except (ValueError, OSError):
            pass

    def close(self) -> None:
        """Kill what the session runs and stop its warm workers (blocking: call off the loop)."""
        self.engine.shutdown()
        for payload in self.payloads.values():
            wire.release_local(payload)
        self.payloads.clear()
        for key in self.shared_keys:
            shared.drop(key)
        for key in [*self.kept, *self.copies]:
            self._drop(key)
        for future in self.fetching.values():
            future.cancel()

    def _on_ready(self) -> None:
        if self.stopping:
            return
        events = self.engine.wait(0)
        if self.late:
            self._begun()
        if not events:
            return
        out = []
        for e in events:
            if self.recomputing and e.task_id in self.recomputing and e.kind not in ("partial", "started"):
                payload = self.payloads.pop(e.task_id, None)
                if payload is not None:
                    self.engine.release_payload(e.task_id, payload)
                self.recomputing.pop(e.task_id).set_result(e)  # (a result a lost node kept, made again here)
                continue
            if e.task_id < 0:  # a warm-up no-op
                self.warming -= 1
                if self.warming == 0:
                    out.append(("ready", 0, 0, None, "", 0, None))
                continue
            out.append(self._encode(e))
            if self.payloads and e.kind != "partial" and e.kind != "started":
                payload = self.payloads.pop(e.task_id, None)
                if payload is not None:  # this node's copy of the arguments: done with
                    self.engine.release_payload(e.task_id, payload)
            if self.held and e.kind in ("ok", "error", "exit", "lost"):
                entry = self.held.pop(e.task_id, None)
                if entry is not None:  # the task held behind this one starts now, its start told after this end
                    self._start_held(entry, out)
        if out:
            self._send(out)

    def _apply(self, op: tuple) -> None:
        kind = op[0]
        engine = self.engine
        if kind == "launch":
            _, task_id, attempt, what, slots, payload, *rest = op
            needs = rest[0] if rest else ()
            missing = {key for key, *_ in needs if key not in self.kept and key not in self.copies}
            if missing:  # other nodes' results this task reads: copy (or recompute) them here first, then launch
                for key, owner, *recipe in needs:
                    if key in missing and key not in self.fetching:
                        self.fetching[key] = asyncio.ensure_future(self._copy(key, owner, recipe, slots))
                self.parked.append((op[:6], missing))
                return
            engine.launch(self._launch_of(task_id, attempt, what, slots, payload))
            if engine.late_start(task_id) is None:
                self._late(task_id, attempt)
        elif kind == "behind":  # pipelining: start it here the moment task `behind` ends, no driver round trip
            _, task_id, attempt, what, slots, payload, behind = op
            launch = self._launch_of(task_id, attempt, what, slots, payload)
            if engine.running(behind) and engine.launch_behind(launch, behind):
                return  # queued on that task's warm worker (it reports "started" or "requeue")
            if engine.running(behind):  # another binding, or too large to wait in its pipe: held here
                self.held[behind] = [launch, False]
                self.held_behind[task_id] = behind
                return
            out: list[tuple] = []  # it ended here already (its end went to the driver before this start)
            self._start_held([launch, False], out)
            self._send(out)
        elif kind == "withdraw":
            self._take_back(op[1])
        elif kind == "shared":  # a shared object: into this node's shared memory, once
            if shared.place(op[1], op[2]):
                self.shared_keys.append(op[1])
        elif kind == "fn":
            self.forget.discard(op[1])
            self.functions[op[1]] = Function(wire.loads_spec(op[2]))
        elif kind == "fn_forget":
            self.forget.update(op[1])
            self._forget_functions()
        elif kind == "alloc":
            allocation = wire.allocation_from(op[1])
            if self.allocation is None:
                self.allocation = allocation
                engine.start(allocation, self.run_dir)
                self._warm_up(op[2] if len(op) > 2 else None)
            else:
                self.allocation = allocation
                engine.set_allocation(allocation)
        elif kind == "run_dir":
            self.run_dir = Path(op[1])
        elif kind == "drop":
            self._drop(op[1])
        elif kind == "kill":
            if not self._take_back(op[1]):  # (a task queued here that has not started goes back unstarted)
                engine.kill(op[1])
        elif kind == "preempt":
            held = self.held_behind.get(op[1])
            if held is not None:  # held here: preempted as it starts (as the local engine does a queued task)
                self.held[held][1] = True
            else:
                engine.preempt(op[1])
        elif kind == "interrupt":  # a function past its timeout: `TimedOut` in it, its worker stays (dask_timeouts)
            if op[1] not in self.held_behind and not engine.interrupt(op[1]):
                engine.kill(op[1])  # (not a function's, or its worker is suspended or still starting)
        elif kind == "suspend":
            engine.suspend(op[1])
        elif kind == "resume":
            engine.resume(op[1])

    def _launch_of(self, task_id: int, attempt: int, what: Any, slots: tuple, payload: Any) -> Launch:
        if isinstance(what, int):
            spec: Any = self.functions.get(what)
            if spec is None:
                raise RuntimeError(self.fn_errors.get(what, "its function never arrived"))
        else:
            spec = wire.loads_spec(what)
        if payload is not None and not serialize.in_shared_memory(payload):  # (else: the driver's, on this
            payload = wire.payload_here(payload)                              # machine: it frees it)
            if serialize.in_shared_memory(payload):
                self.payloads[task_id] = payload
        return Launch(task_id, attempt, spec, Placement(None, slots), payload)  # type: ignore[arg-type]

    def _start_held(self, entry: list, out: list[tuple]) -> None:
        """Start a task sent behind another that has ended here; "started" follows that one's end."""
        launch, preempt = entry
        self.held_behind.pop(launch.task_id, None)
        try:
            self.engine.launch(launch)
            self.engine.send_all()  # (deferred sends: nothing else may write it soon)
        except Exception as exc:  # noqa: BLE001 - reported as its end, after its start
            out.append(("started", launch.task_id, launch.attempt, None, "", 0, (time.time(),)))
            out.append(("error", launch.task_id, launch.attempt, serialize.dumps_inband(RuntimeError(
                f"Node {self.node['name']} could not start task {launch.task_id}: {type(exc).__name__}: {exc}")),
                traceback.format_exc(), 0, None))
            return
        out.append(("started", launch.task_id, launch.attempt, None, "", 0, (time.time(),)))
        if self.engine.late_start(launch.task_id) is None:
            self._late(launch.task_id, launch.attempt)
        if preempt:
            self.engine.preempt(launch.task_id)

    def _take_back(self, task_id: int) -> bool:
        """A task sent behind another that has not started here: it goes back unstarted ("requeue")."""
        behind = self.held_behind.pop(task_id, None)
        if behind is not None:
            attempt = self.held.pop(behind)[0].attempt
        else:
            attempt = self.engine.queued_attempt(task_id)
            if attempt is None or not self.engine.withdraw(task_id):
                return False
        payload = self.payloads.pop(task_id, None)
        if payload is not None:
            self.engine.release_payload(task_id, payload)
        self._send([("requeue", task_id, attempt, None, f"taken back on node {self.node['name']}", 0, None)])
        return True

    def _late(self, task_id: int, attempt: int) -> None:
        """The task waits for its warm worker to start: the driver's timeout for it counts from its start, which
        `_begun` tells (see `dask_timeouts`)."""
        self.late[task_id] = attempt
        self._send([("late", task_id, attempt, None, "", 0, None)])

    def _begun(self) -> None:
        """Tell the driver when each task that waited for its warm worker began (or forget it: it ended)."""
        out = []
        for task_id, attempt in list(self.late.items()):
            began = self.engine.late_start(task_id)
            if began is None:
                continue
            del self.late[task_id]
            if began:  # (0.0: it ended, or it is no longer this worker's: its end tells the driver)
                out.append(("begun", task_id, attempt, None, "", 0, (time.time() - (time.monotonic() - began),)))
        if out:
            self._send(out)

    def _warm_up(self, index: int | None) -> None:
        """Run a no-op in each warm worker; the driver hears "ready" when all answered.

        (A preempt or cancel that reaches a worker still starting would otherwise find no task yet.)
        """
        if index is None:
            self._send([("ready", 0, 0, None, "", 0, None)])
            return
        node = self.allocation.nodes[index]  # type: ignore[union-attr]
        noop = Function(os.getpid)
        payload = serialize.dumps(((), {}))
        n = self.warming = self.engine.initial_workers or 1
        for k in range(n):
            slot = Slot(index, (k % node.cores,), (), 0)
            self.engine.launch(Launch(-(k + 1), 1, noop, Placement(None, (slot,)), payload))  # type: ignore[arg-type]

    def _failed(self, op: tuple, exc: BaseException) -> None:
        text = traceback.format_exc()
        if op[0] == "launch" or op[0] == "behind":
            blob = serialize.dumps_inband(RuntimeError(
                f"Node {self.node['name']} could not start task {op[1]}: {type(exc).__name__}: {exc}. "
                "Is its code importable there (installed, or on a shared file system)?"))
            started = [("started", op[1], op[2], None, "", 0, (time.time(),))] if op[0] == "behind" else []
            self._send([*started, ("error", op[1], op[2], blob, text, 0, None)])
        elif op[0] == "fn":
            self.fn_errors[op[1]] = f"its function could not be loaded here: {type(exc).__name__}: {exc}"
        else:
            self._send([("log", 0, 0, None, f"node {self.node['name']}: {op[0]} failed: {text}", 0, None)])

    def _encode(self, event: Event) -> tuple:
        value = event.value
        text = event.text
        if event.kind == "ok" and value is not None and serialize.in_shared_memory(value) and self.agent is not None:
            key = dask_refs.new_key()  # a large result stays here; the driver gets a reference (dask_refs)
            self.kept[key] = value
            value = dask_refs.reference(key, self.node["host"], os.getpid(), self.agent.address(), value)
            text = key
        elif event.kind in ("ok", "error") and value is not None:
            value = wire.result_for_wire(value)
            if len(value) >= CHECK_RESULT_BYTES and self.agent is not None:
                why = self.agent.memory_past(len(value), 2)  # (sending holds it twice more: the batch, the stream)
                if why:  # a clear error for this task, not the node restarted under every task it runs
                    why = (f"Task {event.task_id} failed on node {self.node['name']}: its result is "
                           f"{len(value) / 1e6:.0f} MB, held in the Dask worker's memory while it is sent, and {why}. "
                           "Raise the workers' memory limit (DaskEngine(cluster={'memory_limit': ...}), jobqueue "
                           "memory=...), or return large data as NumPy arrays (or other buffers), which stay in the "
                           "node's shared memory until read.")
                    return ("error", event.task_id, event.attempt, serialize.dumps_inband(MemoryError(why)), why, 0,
                            event.times)
        return (event.kind, event.task_id, event.attempt, value, text, event.code, event.times)

    def _send(self, events: list[tuple]) -> None:
        self.outbox.put(events)
