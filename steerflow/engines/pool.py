"""The local engine's warm worker pool: function tasks in warm worker processes.

A mixin of `LocalEngine` (and of the Dask node engine, which subclasses it): it starts, picks,
retires and replaces warm workers, sends them function tasks and reads their replies. The
engine's selector, its programs and its control of running tasks stay in `local.py`.
"""

from __future__ import annotations

import os
import pickle
import selectors
import signal
import subprocess
import sys
import time

from .. import proctree
from ..task import Function
from . import launchers
from .base import Event, Launch
from .worker import _HEADER, KnownFunctions, read_frames, write_all


# What a warm worker is started with and keeps for life: (CUDA_VISIBLE_DEVICES, threads). CUDA,
# OpenMP and BLAS read these once per process, so a worker only ever serves tasks bound alike.
Binding = tuple[str, str]
DEFAULT_BINDING: Binding = ("", "1")  # one core, no GPU: what the warm pool starts with


# A task is queued behind a running one only if both task messages fit in the pipe together (64 KiB on
# Linux): writing it must never block the runtime's loop until the running task ends.
QUEUE_MAX_BYTES = 60_000


class Queued:
    """A task written to a busy worker's pipe, to start when the running one ends (see `WarmPool.launch_behind`)."""

    __slots__ = ("launch", "number")

    def __init__(self, launch: Launch, number: int) -> None:
        self.launch, self.number = launch, number


class Worker:
    __slots__ = ("proc", "rfd", "wfd", "cfd", "gate", "binding", "known", "launch", "number", "stopped", "doomed",
                 "retired", "queued", "withdrawn", "sent", "current", "cpus", "env", "checkpoints", "unsent", "ready",
                 "began", "inner", "ran")

    def __init__(self, proc: subprocess.Popen, rfd: int, wfd: int, cfd: int, binding: Binding,
                 gate: tuple[int, int] = (-1, -1)) -> None:
        self.proc, self.rfd, self.wfd, self.cfd, self.binding = proc, rfd, wfd, cfd, binding
        self.gate = gate  # (read end, write end): one byte in it per queued task; whoever reads it decides
        self.queued: Queued | None = None  # the task waiting in its pipe behind ``launch``
        self.withdrawn = 0  # withdrawn tasks it has yet to skip (answered "withdrawn"): it takes no new one till then
        self.sent = 0  # size of the last task message written to it
        self.current = 0  # the number of the task message of ``launch`` (what a preempt names)
        self.cpus: list[int] | None = None  # the CPUs its last task was bound to (it stays bound to them)
        self.env: dict[str, str] | None = None  # the binding environment it was last given (it keeps it)
        self.checkpoints: str | None = None  # the checkpoint directory it was last told (it builds each task's path)
        self.unsent = b""  # a task message not written yet: sent as the loop's round ends (`WarmPool.send_all`)
        self.known = KnownFunctions()  # (as the worker's own table: see `KnownFunctions`)
        self.launch: Launch | None = None
        self.number = 0  # how many task messages it was sent (the control pipe names tasks by it)
        self.stopped = False  # SIGSTOPped by suspend: continued before it serves another task
        self.doomed = False  # killed: never handed another task, even if its last reply arrives
        self.retired = False  # stopped to make room for a worker of another binding: not replaced
        self.ready = False  # it said "ready" (its Python started): a task sent before waits for that
        # when ``launch`` began, where that was after it was sent (-1.0: not yet, its worker is still starting; see
        # `WarmPool.late_start`); 0.0: as it was sent
        self.began = 0.0
        self.inner = 0  # the worker's own pid, below its guard (``proc``), once it said "ready"
        self.ran = 0.0  # how long its last task's function ran (seconds, from its reply)


class WarmPool:
    """The warm-worker half of `LocalEngine` (its state is set in `LocalEngine.__init__`)."""

    # True: a task message is written when the engine next waits (`send_all`), not at once. The runtime's loop
    # turns it on (it waits after every round); a caller that launches and then does not wait must leave it off.
    defer_sends = False

    def _spawn_worker(self, binding: Binding) -> Worker:
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        control_r, control_w = os.pipe()
        gate_r, gate_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        env = dict(self._worker_env, CUDA_VISIBLE_DEVICES=binding[0], OMP_NUM_THREADS=binding[1],
                   OPENBLAS_NUM_THREADS=binding[1], MKL_NUM_THREADS=binding[1])
        # Its own process group (killed as one), in the driver's session: a session of its own would also be a
        # scheduler autogroup of its own, and the kernel then shares the CPU between the driver and each worker
        # as between unrelated jobs, so every hand-over of a short task waits for the other group's turn. The
        # 0 MB shapes ran 1.6-2.8x faster in the driver's autogroup at load 5-7 (paired, 20 runs each, session 6).
        # It is a background group: the terminal's Ctrl-C and hang-up reach the driver, not the workers.
        proc = subprocess.Popen(
            [sys.executable, "-m", "steerflow.engines.worker", str(to_worker_r), str(from_worker_w), str(control_r),
             str(gate_r)],
            pass_fds=(to_worker_r, from_worker_w, control_r, gate_r), process_group=0, env=env,
            stdin=subprocess.DEVNULL)
        os.close(to_worker_r)
        os.close(from_worker_w)
        os.close(control_r)
        os.set_blocking(from_worker_r, True)
        os.set_blocking(control_w, False)
        worker = Worker(proc, from_worker_r, to_worker_w, control_w, binding, (gate_r, gate_w))
        self._sel.register(from_worker_r, selectors.EVENT_READ, worker)
        return worker

    def _prepare(self, launch: Launch) -> tuple[int, bytes, Binding, list[int], dict[str, str]]:
        """What a function task's message needs: (function key, its bytes, binding, CPUs, the binding's
        environment). The task's own variables the worker builds (`steerflow.engines.worker`)."""
        spec = launch.spec
        assert isinstance(spec, Function)
        key, fn_bytes = self._fn_keys.get(spec.fn)
        slot = launch.placement.slots[0]  # (the cache's hit inline: this is every function task's path)
        cached = self._binding_cache.get((slot.node, slot.cores, slot.gpus)) or self._bound(launch)
        return key, fn_bytes, cached[2], cached[1], cached[0]

    def _bound(self, launch: Launch) -> tuple[dict[str, str], list[int], Binding]:
        """Where a one-slot task runs: (the binding's environment, its CPUs, its binding), once per slot."""
        slot = launch.placement.slots[0]
        cached = self._binding_cache.get((slot.node, slot.cores, slot.gpus))
        if cached is None:  # binding depends only on where it runs: compute once per slot
            bound = launchers.binding_env(self._allocation, launch.placement)  # type: ignore[arg-type]
            cached = (bound, self._allocation.nodes[slot.node].physical_cpus(slot.cores),  # type: ignore[union-attr]
                      (bound["CUDA_VISIBLE_DEVICES"], bound["OMP_NUM_THREADS"]))
            self._binding_cache[(slot.node, slot.cores, slot.gpus)] = cached
        return cached

    def _untold(self, worker: Worker) -> str | None:
        """The checkpoint directory, for a worker not told it yet (else None: it builds each task's path itself).
        The worker takes it from any message it reads, queued ones it skips too."""
        return None if worker.checkpoints is self._checkpoints else self._checkpoints

    def _launch_function(self, launch: Launch) -> None:
        key, fn_bytes, binding, cpus, bound = self._prepare(launch)
        worker = self._pick_worker(key, binding, cpus)  # last: nothing below raises, so no worker is lost to a failed launch
        # the binding's environment only if this worker was last given another binding's (it keeps it between
        # tasks, as it keeps its CPUs)
        env = _NONE if worker.env is bound else bound
        worker.cpus, worker.env = cpus, bound
        new = key not in worker.known
        msg = pickle.dumps((launch.task_id, key, fn_bytes if new else None, launch.payload, cpus, env, False,
                            self._untold(worker)), 5)
        worker.checkpoints = self._checkpoints
        if new:
            worker.known.add(key, None, len(fn_bytes))
        worker.launch = launch
        worker.began = 0.0 if worker.ready else -1.0
        worker.number += 1
        worker.current = worker.number
        worker.sent = len(msg)
        self._busy[launch.task_id] = worker
        if not worker.unsent:
            self._unsent.append(worker)
        worker.unsent += _HEADER.pack(len(msg)) + msg
        if not self.defer_sends:
            self.send_all()

    def late_start(self, task_id: int) -> float | None:
        """At a function task's deadline: None if it has not begun (its worker, new, is still starting: the
        task waits in its pipe), else the monotonic time it began when that was after it was sent, else 0.0.

        A new worker takes 0.1-0.5 s to start under load, and one is started whenever no idle worker fits
        (also to replace one killed at a timeout): a timeout counted from the send killed tasks that had
        not begun, and each kill started another worker (30 of 120 tasks of the mixed set with timeouts of
        1.3x their run time, at load 5).
        """
        worker = self._busy.get(task_id)
        if worker is None or worker.launch is None or worker.launch.task_id != task_id:
            return 0.0
        return None if worker.began < 0 else worker.began

    def send_all(self) -> None:
        """Write the task messages of this round, as the loop is about to sleep (`defer_sends`; `wait` calls it).

        Writing one wakes its worker, and a woken worker takes the CPU from the writer at once on a
        busy machine: written mid-round, each message stalled the rest of the round (the other
        workers' messages, the results, the next dispatch) by the worker's turn, ~25 us a task.
        """
        for worker in self._unsent:
            self._send(worker)
        self._unsent.clear()

    @staticmethod
    def _send(worker: Worker) -> None:
        data, worker.unsent = worker.unsent, b""
        try:
            sent = os.write(worker.wfd, data)  # (the whole of it, but for messages larger than the pipe)
            if sent != len(data):
                write_all(worker.wfd, memoryview(data)[sent:])
        except OSError:
            pass  # the worker died; its pipe's EOF reports the task as lost

    def launch_behind(self, launch: Launch, behind: int) -> bool:
        """Queue a function task on the worker that runs task ``behind``: it starts there the moment that one
        ends, with no round trip to the driver in between. False (nothing sent) where that worker cannot take
        it: another binding, a task already queued there, killed or suspended, or messages too large to
        wait in its pipe. The engine then reports ``"started"`` when it starts, or ``"requeue"`` if the
        worker died before it could; `withdraw` takes it back while it has not started."""
        worker = self._busy.get(behind)
        if worker is None or worker.queued is not None or worker.withdrawn or worker.doomed or worker.stopped \
                or worker.launch is None or worker.launch.task_id != behind or worker.gate[0] < 0:
            return False
        key, fn_bytes, binding, cpus, bound = self._prepare(launch)
        if binding != worker.binding:
            return False
        env = _NONE if worker.env is bound else bound  # (a withdrawn task never sets it: the worker's is left as it is)
        new = key not in worker.known
        msg = pickle.dumps((launch.task_id, key, fn_bytes if new else None, launch.payload, cpus, env, True,
                            self._untold(worker)), 5)
        if len(msg) + worker.sent > QUEUE_MAX_BYTES:
            return False
        if worker.unsent:  # the task it runs first (messages go in order)
            self._send(worker)
        try:
            os.write(worker.gate[1], b"g")  # before the message: the worker finds its byte when it reads it
            write_all(worker.wfd, _HEADER.pack(len(msg)) + msg)
        except OSError:  # it is dying: its EOF is on its way; the task waits for a worker as any other
            try:
                os.read(worker.gate[0], 1)
            except OSError:
                pass
            return False
        worker.number += 1
        worker.sent = len(msg)
        worker.checkpoints = self._checkpoints
        if new:  # (the worker takes it in even if the task is withdrawn: it reads every message it is sent)
            worker.known.add(key, None, len(fn_bytes))
        worker.queued = Queued(launch, worker.number)
        self._queued_on[launch.task_id] = worker
        return True

    def withdraw(self, task_id: int) -> bool:
        """Take back a task queued by `launch_behind`. True: it never starts (the worker skips it). False: it
        has started, or is about to (the worker took its gate byte first); it is then a running task."""
        worker = self._queued_on.get(task_id)
        if worker is None:
            return False
        try:
            taken = os.read(worker.gate[0], 1)
        except BlockingIOError:
            taken = b""
        if not taken:
            return False
        self._unqueue(worker)
        worker.withdrawn += 1  # it answers "withdrawn" when it reaches the task
        return True

    def _unqueue(self, worker: Worker) -> Launch:
        queued = worker.queued
        assert queued is not None
        worker.queued = None
        del self._queued_on[queued.launch.task_id]
        return queued.launch

    def _pick_worker(self, key: int, binding: Binding, cpus: list[int] | None = None) -> Worker:
        """An idle worker of this binding that already ran this function (its imports and loaded
        models are warm), bound to these ``cpus`` already if one is (no affinity change in it), else
        one of this binding, else a new one."""
        idle = self._idle
        other = known = -1
        for i in range(len(idle) - 1, -1, -1):
            worker = idle[i]
            if worker.binding == binding:
                if key in worker.known:
                    if worker.cpus == cpus:
                        return idle.pop(i)
                    if known < 0:
                        known = i
                elif other < 0:
                    other = i
        if known >= 0:
            return idle.pop(known)
        if other >= 0:
            return idle.pop(other)
        if len(idle) >= self._max_idle:  # make room: the worker idle longest goes
            self._retire(idle.pop(0))
        return self._spawn_worker(binding)

    def _retire(self, worker: Worker) -> None:
        worker.retired = True
        self._dying.append(worker)  # its EOF is read as usual, then it is reaped
        if worker.unsent:
            self._send(worker)
        try:
            write_all(worker.wfd, _HEADER.pack(len(STOP)) + STOP)
        except OSError:
            pass

    def _on_worker(self, worker: Worker, events: list[Event]) -> None:
        frames, open_ = read_frames(worker.rfd)
        for frame in frames:
            self._on_reply(worker, pickle.loads(frame), events)
        if not open_:
            self._worker_died(worker, events)

    def _on_reply(self, worker: Worker, reply: tuple, events: list[Event]) -> None:
        if reply[0] == "ready":
            worker.ready = True
            worker.inner = reply[1]
            if worker.began < 0:  # a task sent while it started begins now: its timeout counts from here
                worker.began = time.monotonic()
            return
        if reply[0] == "held":  # files its last task kept mapped (it kept a reference to an argument)
            self._held.update(reply[2])
            return
        if reply[0] == "partial":
            if worker.launch is not None and worker.launch.task_id == reply[1]:
                events.append(Event("partial", reply[1], worker.launch.attempt, reply[2], "pickle"))
            return
        if reply[0] == "withdrawn":  # it skipped a task the driver took back
            worker.withdrawn -= 1
            if worker.launch is None and not worker.withdrawn:
                self._skipping.remove(worker)
                (self._dying if worker.doomed else self._idle).append(worker)
            return
        task_id, ok, blob, tb = reply[:4]
        times = reply[4] if len(reply) > 4 else None
        worker.ran = times[2] - times[1] if times else 0.0
        launch = worker.launch
        worker.launch = None
        self._busy.pop(task_id, None)
        if worker.stopped:  # suspended just as it finished: continue it before it serves another task
            worker.stopped = False
            proctree.signal_tree(worker.proc.pid, signal.SIGCONT)
        attempt = launch.attempt if launch is not None else 0
        events.append(Event("ok", task_id, attempt, blob, times=times) if ok
                      else Event("error", task_id, attempt, blob, tb, times=times))
        if worker.queued is not None:  # the task queued behind it starts now (unless it is taken back first)
            behind = worker.queued.launch
            if worker.doomed and self.withdraw(behind.task_id):
                events.append(Event("requeue", behind.task_id, behind.attempt, text="its worker was killed"))
            else:
                worker.current = worker.queued.number
                nxt = self._unqueue(worker)
                worker.launch = nxt
                worker.began = 0.0  # (its "started" event sets its deadline)
                self._busy[nxt.task_id] = worker
                # it started as this reply was written (the result serialised: the worker's last time stamp)
                events.append(Event("started", nxt.task_id, nxt.attempt, times=(times[-1] if times else time.time(),)))
                return
        if worker.withdrawn:  # not idle before it has skipped what was taken back
            self._skipping.append(worker)
            return
        if worker.doomed:  # killed: it reports its end by EOF, then is replaced
            self._dying.append(worker)
        else:
            self._idle.append(worker)

    def _worker_died(self, worker: Worker, events: list[Event]) -> None:
        if worker.inner and worker.proc.poll() is None and _runs_on(worker.inner):
            # its pipe closed, yet it runs on: its task closed the worker's descriptors. Waited for, it froze the
            # runtime's loop for as long as that task ran (timeouts, other tasks' results and all)
            proctree.signal_tree(worker.proc.pid, signal.SIGKILL)
            why = "closed its pipe to the driver (did its task close file descriptors it had not opened?) and was killed"
        else:
            why = ""
        code = worker.proc.wait()  # (else its guard ends a moment after it, once it has killed what it left)
        self._close_worker(worker)
        launch = worker.launch
        if launch is not None:
            self._busy.pop(launch.task_id, None)
            reason = why or f"died with {exit_status(code)}"
            events.append(Event("lost", launch.task_id, launch.attempt,
                                text=f"its worker process (pid {worker.proc.pid}) {reason}", code=code))
        if worker.queued is not None:  # it never started there (its gate byte is still there): it goes back
            queued = self._unqueue(worker)
            events.append(Event("requeue", queued.task_id, queued.attempt,
                                text=f"its worker process (pid {worker.proc.pid}) died before it started"))
        else:
            for pool in (self._idle, self._dying, self._skipping):
                try:
                    pool.remove(worker)
                except ValueError:
                    pass
        if not self._closed and not worker.retired:  # keep the warm pool at strength
            self._idle.append(self._spawn_worker(worker.binding))

    def _close_worker(self, worker: Worker) -> None:
        try:
            self._sel.unregister(worker.rfd)
        except (KeyError, ValueError):
            pass
        for fd in (worker.rfd, worker.wfd, worker.cfd, *worker.gate):
            if fd < 0:
                continue
            try:
                os.close(fd)
            except OSError:
                pass


def _runs_on(pid: int, bound: float = 0.25) -> bool:
    """Whether a worker whose pipe closed still runs ``bound`` seconds later (one that exits closes its pipe a
    moment before it is a zombie: it is not killed then, its own status is reported)."""
    end = time.monotonic() + bound
    pause = 0.0005
    while proctree.process_alive(pid):
        if time.monotonic() > end:
            return True
        time.sleep(pause)
        pause = min(2 * pause, 0.02)
    return False


STOP = pickle.dumps(None)
_NONE: dict[str, str] = {}  # a task message's environment when its worker's binding did not change


def exit_status(code: int) -> str:
    if code >= 0:
        return f"exit status {code}"
    try:
        return f"signal {signal.Signals(-code).name}"
    except ValueError:
        return f"signal {-code}"

