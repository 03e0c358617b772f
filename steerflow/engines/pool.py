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

from .. import proctree, serialize
from ..task import Function
from . import launchers
from .base import Event, Launch
from .worker import _HEADER, read_exact, write_all

_FN_CACHE_MAX = 4096


# What a warm worker is started with and keeps for life: (CUDA_VISIBLE_DEVICES, threads). CUDA,
# OpenMP and BLAS read these once per process, so a worker only ever serves tasks bound alike.
Binding = tuple[str, str]
DEFAULT_BINDING: Binding = ("", "1")  # one core, no GPU: what the warm pool starts with


class Worker:
    __slots__ = ("proc", "rfd", "wfd", "cfd", "binding", "known", "launch", "number", "stopped", "doomed",
                 "retired")

    def __init__(self, proc: subprocess.Popen, rfd: int, wfd: int, cfd: int, binding: Binding) -> None:
        self.proc, self.rfd, self.wfd, self.cfd, self.binding = proc, rfd, wfd, cfd, binding
        self.known: set[int] = set()
        self.launch: Launch | None = None
        self.number = 0  # how many task messages it was sent (the control pipe names tasks by it)
        self.stopped = False  # SIGSTOPped by suspend: continued before it serves another task
        self.doomed = False  # killed: never handed another task, even if its last reply arrives
        self.retired = False  # stopped to make room for a worker of another binding: not replaced


class WarmPool:
    """The warm-worker half of `LocalEngine` (its state is set in `LocalEngine.__init__`)."""

    def _spawn_worker(self, binding: Binding) -> Worker:
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        control_r, control_w = os.pipe()
        env = dict(self._worker_env, CUDA_VISIBLE_DEVICES=binding[0], OMP_NUM_THREADS=binding[1],
                   OPENBLAS_NUM_THREADS=binding[1], MKL_NUM_THREADS=binding[1])
        proc = subprocess.Popen(
            [sys.executable, "-m", "steerflow.engines.worker", str(to_worker_r), str(from_worker_w), str(control_r)],
            pass_fds=(to_worker_r, from_worker_w, control_r), start_new_session=True, env=env,
            stdin=subprocess.DEVNULL)
        os.close(to_worker_r)
        os.close(from_worker_w)
        os.close(control_r)
        os.set_blocking(from_worker_r, True)
        os.set_blocking(control_w, False)
        worker = Worker(proc, from_worker_r, to_worker_w, control_w, binding)
        self._sel.register(from_worker_r, selectors.EVENT_READ, worker)
        return worker

    def _launch_function(self, launch: Launch) -> None:
        spec = launch.spec
        assert isinstance(spec, Function)
        key, fn_bytes = self._function_key(spec.fn)
        slot = launch.placement.slots[0]
        cached = self._binding_cache.get((slot.node, slot.cores, slot.gpus))
        if cached is None:  # binding depends only on where it runs: compute once per slot
            bound = launchers.binding_env(self._allocation, launch.placement)  # type: ignore[arg-type]
            cached = (bound, self._allocation.nodes[slot.node].physical_cpus(slot.cores),  # type: ignore[union-attr]
                      (bound["CUDA_VISIBLE_DEVICES"], bound["OMP_NUM_THREADS"]))
            self._binding_cache[(slot.node, slot.cores, slot.gpus)] = cached
        env = dict(cached[0])
        cpus = cached[1]
        env["STEERFLOW_TASK_ID"] = str(launch.task_id)
        env["STEERFLOW_CHECKPOINT"] = self._checkpoint_path(launch.task_id)
        worker = self._pick_worker(key, cached[2])  # last: nothing below raises, so no worker is ever lost to a failed launch
        msg = pickle.dumps((launch.task_id, key, None if key in worker.known else fn_bytes,
                            launch.payload, cpus, env), 5)
        worker.known.add(key)
        worker.launch = launch
        worker.number += 1
        self._busy[launch.task_id] = worker
        try:
            write_all(worker.wfd, _HEADER.pack(len(msg)) + msg)
        except OSError:
            pass  # the worker died; its pipe's EOF reports the task as lost

    def _pick_worker(self, key: int, binding: Binding) -> Worker:
        """An idle worker of this binding that already ran this function (its imports and loaded
        models are warm), else one of this binding, else a new one."""
        idle = self._idle
        other = -1
        for i in range(len(idle) - 1, -1, -1):
            worker = idle[i]
            if worker.binding == binding:
                if key in worker.known:
                    return idle.pop(i)
                if other < 0:
                    other = i
        if other >= 0:
            return idle.pop(other)
        if len(idle) >= self._max_idle:  # make room: the worker idle longest goes
            self._retire(idle.pop(0))
        return self._spawn_worker(binding)

    def _retire(self, worker: Worker) -> None:
        worker.retired = True
        self._dying.append(worker)  # its EOF is read as usual, then it is reaped
        try:
            write_all(worker.wfd, _HEADER.pack(len(STOP)) + STOP)
        except OSError:
            pass

    def _function_key(self, fn: object) -> tuple[int, bytes]:
        entry = self._fn_keys.get(id(fn))
        if entry is not None and entry[0] is fn:
            return entry[1], entry[2]
        if len(self._fn_keys) >= _FN_CACHE_MAX:
            self._fn_keys.clear()
        self._next_key += 1
        entry = (fn, self._next_key, serialize.dumps_function(fn))
        self._fn_keys[id(fn)] = entry
        return entry[1], entry[2]

    def _on_worker(self, worker: Worker, events: list[Event]) -> None:
        try:
            (size,) = _HEADER.unpack(read_exact(worker.rfd, 4))
            reply = pickle.loads(read_exact(worker.rfd, size))
        except (EOFError, OSError):
            self._worker_died(worker, events)
            return
        if reply[0] == "ready":
            return
        if reply[0] == "held":  # files its last task kept mapped (it kept a reference to an argument)
            self._held.update(reply[2])
            return
        if reply[0] == "partial":
            if worker.launch is not None and worker.launch.task_id == reply[1]:
                events.append(Event("partial", reply[1], worker.launch.attempt, reply[2], "pickle"))
            return
        task_id, ok, blob, tb = reply[:4]
        times = reply[4] if len(reply) > 4 else None
        launch = worker.launch
        worker.launch = None
        self._busy.pop(task_id, None)
        if worker.stopped:  # suspended just as it finished: continue it before it serves another task
            worker.stopped = False
            proctree.signal_tree(worker.proc.pid, signal.SIGCONT)
        if worker.doomed:  # killed: it reports its end by EOF, then is replaced
            self._dying.append(worker)
        else:
            self._idle.append(worker)
        attempt = launch.attempt if launch is not None else 0
        events.append(Event("ok", task_id, attempt, blob, times=times) if ok
                      else Event("error", task_id, attempt, blob, tb, times=times))

    def _worker_died(self, worker: Worker, events: list[Event]) -> None:
        code = worker.proc.wait()
        self._close_worker(worker)
        launch = worker.launch
        if launch is not None:
            self._busy.pop(launch.task_id, None)
            reason = exit_status(code)
            events.append(Event("lost", launch.task_id, launch.attempt,
                                text=f"its worker process (pid {worker.proc.pid}) died with {reason}", code=code))
        else:
            for pool in (self._idle, self._dying):
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
        for fd in (worker.rfd, worker.wfd, worker.cfd):
            try:
                os.close(fd)
            except OSError:
                pass


STOP = pickle.dumps(None)


def exit_status(code: int) -> str:
    if code >= 0:
        return f"exit status {code}"
    try:
        return f"signal {signal.Signals(-code).name}"
    except ValueError:
        return f"signal {-code}"

