"""The warm worker process: started once, runs function tasks one after another.

It stays alive between tasks so imports and loaded models stay loaded. Before each task it
binds itself to the task's CPUs and sets the task's environment (CUDA_VISIBLE_DEVICES,
OMP_NUM_THREADS, STEERFLOW_*). It runs below a guard (`steerflow.proctree.guard`, a fork of it
made at start) that kills the worker and everything below it when the driver dies, even by
SIGKILL. It is a child subreaper: whatever a task started is killed when the task ends. What a
task changed in the process's working directory, `os.environ` and `sys.path` is put back after
it (`restore`), so one task's ``os.chdir`` does not move the next.

Protocol (length-prefixed pickles over two pipes): the driver sends
``(task_id, fn_key, fn_bytes | None, payload, cpus, env, queued, checkpoints)``, or ``None`` to
stop. ``env`` holds only the binding's variables that change for this worker; the task's own
(STEERFLOW_TASK_ID, STEERFLOW_CHECKPOINT) the worker builds from ``task_id`` and the checkpoint
directory ``checkpoints``, sent only when it changes (None: as before). The worker
answers ``(task_id, ok, result_bytes, traceback_text, times)``, where ``times`` is (message
received, function started, function returned, result serialised) on the worker's clock, so
the journal can split a task's overhead. Keep it this small: it is the hot path.
While a task runs it may also send ``("partial", task_id, value_bytes)`` (`steerflow.partial.emit`).

Queued tasks (pipelining): a task message's seventh item is True when the driver wrote it
while the worker was still busy with the one before (`steerflow.engines.pool`). Such a task starts
only if the worker takes one byte from a fourth pipe, the *gate*, that the driver filled as it
queued the task; the driver withdraws the task by taking that byte itself. The kernel gives the
byte to exactly one of them, so a withdrawal racing with the start ends in exactly one run: a
task whose byte is gone is skipped and answered ``("withdrawn", task_id)``. Bytes are counted,
not named: with two queued tasks undecided (the driver may queue one behind a task it saw start
before the worker took that one's byte), the driver taking one byte leaves one, which the worker
takes for the earlier task; the later one, the one withdrawn, finds none. (A token the worker
re-armed itself, to spare the driver this write, was tried: the driver then had to take and put
back tokens that were not its own, and the worker could find the gate empty in between.)

Preempting: the driver writes the number of the task message it means (the worker's n-th task,
an 8-byte integer) to a third, control pipe, then sends SIGUSR1. The signal only says "look":
the handler reads every number waiting there and raises `Preempted` if it names the task that
runs now; a number for a task whose function has not started yet (still unpickling its
arguments or importing) is acted on as it starts, and one for a finished task is ignored. So a
preempt that arrives at any moment takes effect, and never hits the wrong task.

Timeouts (soft): at a function task's deadline the driver does the same with the number's top bit
set (`TIMED_OUT`): the handler raises `TimedOut` in the function instead, and the worker answers
with it as the task's error, also if the function swallowed it and returned. The worker lives on,
warm; the driver kills it only if the task is still running a short grace later.
"""

from __future__ import annotations

import os
import struct
import sys
import time
import traceback
from typing import Any

_HEADER = struct.Struct("!I")
CONTROL = struct.Struct("!Q")  # on the control pipe: the worker's task number to preempt
TIMED_OUT = 1 << 63  # set in a number on the control pipe: that task passed its timeout (raise `TimedOut`)


def read_exact(fd: int, n: int) -> bytes:
    chunks = []
    while n:
        chunk = os.read(fd, n)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks) if len(chunks) != 1 else chunks[0]


class KnownFunctions:
    """The functions a worker (or Dask node) holds, bounded: the sender keeps one per receiver by the same rule.

    A worker and the driver apply the same `add`s in the same order (the pipe's), so the driver always
    knows what the worker holds without being told: it sends a function's bytes again exactly when the
    worker has let them go. (A Dask node is told which keys to let go instead: it may still need one.) Without a bound a worker kept every function it was ever sent: a campaign submitting
    ``model.predict`` (a new bound method each time, with the model in its bytes) grew by a model per task.
    The oldest functions go first.
    """

    __slots__ = ("entries", "nbytes", "max_count", "max_bytes")

    def __init__(self, max_count: int = 256, max_bytes: int = 64 << 20) -> None:
        self.entries: dict[int, list] = {}  # key -> [what the receiver keeps (None at the sender), size]
        self.nbytes = 0
        self.max_count, self.max_bytes = max_count, max_bytes

    def __contains__(self, key: int) -> bool:
        return key in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, key: int, value: Any, size: int) -> list[int]:
        """Take in ``key``; the keys let go to make room (oldest first), if any."""
        entries = self.entries
        gone: list[int] = []
        while entries and (len(entries) >= self.max_count or self.nbytes + size > self.max_bytes):
            old = next(iter(entries))
            self.nbytes -= entries.pop(old)[1]
            gone.append(old)
        entries[key] = [value, size]
        self.nbytes += size
        return gone

    def clear(self) -> None:
        self.entries.clear()
        self.nbytes = 0


class Frames:
    """The length-prefixed messages of a pipe, one after another (the worker's reader of its task messages).

    Built on `read_frames`, the one reader of this framing (the driver reads its workers' replies with it
    too): one read usually brings a whole message, since the writer writes each one, header and all, in
    one write; messages that came together are handed out one by one.
    """

    __slots__ = ("fd", "waiting")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.waiting: list = []  # messages read but not handed out yet, last first

    def next(self) -> bytes | memoryview:
        """The next message; EOFError when the pipe is closed."""
        waiting = self.waiting
        if waiting:
            return waiting.pop()
        while True:
            frames, open_ = read_frames(self.fd)
            if frames:
                if len(frames) > 1:
                    frames.reverse()
                    waiting.extend(frames)
                    return waiting.pop()
                return frames[0]
            if not open_:
                raise EOFError


def read_frames(fd: int, size: int = 65_536) -> tuple[list, bool]:
    """The length-prefixed frames waiting in a pipe the other side writes whole frames to, in one read.

    One read of up to ``size`` bytes usually holds every waiting frame whole (each is written with
    its header in one write): one syscall per message instead of a header read and a body read. A
    frame cut by the read's end is read on at once (it is on its way). Returns the frames and False
    once the pipe is closed (EOF, or a frame cut short by the writer's death).
    """
    try:
        data = os.read(fd, size)
    except OSError:
        return [], False
    n = len(data)
    if n >= 4:  # the common case: exactly one whole frame
        (length,) = _HEADER.unpack_from(data)
        if length + 4 == n:
            return [memoryview(data)[4:]], True
    frames: list = []
    pos = 0
    if not n:
        return frames, False
    while pos < n:
        try:
            if n - pos < 4:
                data, pos = data[pos:] + read_exact(fd, 4 - (n - pos)), 0
                n = len(data)
            (length,) = _HEADER.unpack_from(data, pos)
            end = pos + 4 + length
            if end > n:
                data, end, pos = data[pos:] + read_exact(fd, end - n), end - pos, 0
                n = len(data)
        except (EOFError, OSError):
            return frames, False
        frames.append(memoryview(data)[pos + 4:end])
        pos = end
    return frames, True


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def main(rfd: int, wfd: int, cfd: int = -1, gate: int = -1) -> None:
    import pickle
    import signal

    from steerflow import proctree, serialize
    from steerflow.errors import Preempted, TimedOut

    driver = os.getppid()
    # Below a guard process (a fork of this one) that kills everything under it when the driver dies, even by
    # SIGKILL: dying by our own parent-death signal would hand what we adopted to init. It passes on preempts.
    proctree.guard(driver, forward=(signal.SIGUSR1,), close=tuple(fd for fd in (rfd, wfd, cfd, gate) if fd >= 0),
                   orphaned_status=0)
    serialize.owned_by(driver)  # results outlive this worker while the driver hands them on
    me = os.getpid()  # (a process a task forks that returns from the task's function is not this worker)
    proctree.become_subreaper()  # what a task starts stays below us, whatever it does, until we end it
    running = [0]  # the number of the task whose function runs now (0: none)
    wanted = [0]  # the highest task number the driver asked to preempt
    expired = [0]  # the highest task number the driver said passed its timeout
    fired = [0]  # the number of the last task `TimedOut` was raised in
    if cfd >= 0:
        os.set_blocking(cfd, False)
    if gate >= 0:
        os.set_blocking(gate, False)

    def read_requests() -> None:
        while True:
            try:
                data = os.read(cfd, CONTROL.size * 64)
            except (BlockingIOError, OSError):
                return
            if not data:
                return
            for (number,) in CONTROL.iter_unpack(data[:len(data) - len(data) % CONTROL.size]):
                if number & TIMED_OUT:
                    expired[0] = max(expired[0], number & ~TIMED_OUT)
                else:
                    wanted[0] = max(wanted[0], number)

    def preempt(signum: int, frame: object) -> None:
        read_requests()
        now = running[0]
        if now and now == expired[0]:
            running[0] = 0
            fired[0] = now
            raise TimedOut(_TIMED_OUT)
        if now and now == wanted[0]:
            running[0] = 0
            raise Preempted("The campaign preempted this task; it will run again later.")

    signal.signal(signal.SIGUSR1, preempt)
    _stream_partials(wfd)
    functions = KnownFunctions()  # (the driver keeps the same table for this worker: see `KnownFunctions`)
    reported: set[str] = set()  # shared-memory files already reported as still mapped
    current_cpus: tuple[int, ...] | None = None
    applied: dict[str, str] = {}  # the binding's variables the last task was given (set again only where they
    # change, as its CPUs are: `restore` puts back what a task changed in them; a task that changes its affinity
    # changes it for the next)
    messages = Frames(rfd)
    environ = os.environ
    # what every task starts with (`restore` puts back what a task changed): the environment as the worker set it
    # for the task (``base`` follows the worker's own changes), this working directory and this `sys.path`
    base = environ._data.copy()
    task_key, checkpoint_key = environ.encodekey("STEERFLOW_TASK_ID"), environ.encodekey("STEERFLOW_CHECKPOINT")
    start = os.getcwd(), sys.path, sys.path[:]
    checkpoints = ""  # the run's checkpoint directory, with its trailing separator (the driver sends it once)
    number = 0
    write_all(wfd, _frame(pickle.dumps(("ready", os.getpid()))))
    while True:
        try:
            msg = pickle.loads(messages.next())
        except EOFError:
            return
        if msg is None:
            return
        t_recv = time.time()
        t_start = t_end = 0.0
        number += 1
        task_id, fn_key, fn_bytes, payload, cpus, env, queued, directory = msg
        if fn_bytes is not None:  # (taken in before anything else, withdrawn or not, as the driver counts it)
            functions.add(fn_key, fn_bytes, len(fn_bytes))
        if directory is not None:  # (so is the checkpoint directory)
            checkpoints = directory
        if queued:  # queued behind the task before: it runs only if its gate byte is still there
            try:
                taken = os.read(gate, 1)
            except BlockingIOError:
                taken = b""
            if not taken:  # the driver took it back (withdrawn): never started
                write_all(wfd, _frame(pickle.dumps(("withdrawn", task_id))))
                continue
        try:
            entry = functions.entries[fn_key]
            fn = entry[0]
            if type(fn) is bytes:  # loaded at its first use
                fn = entry[0] = serialize.loads(fn)
            if cpus != current_cpus:
                set_affinity(cpus)
                current_cpus = cpus
            if env:  # the binding's variables, sent when this worker's binding changed: set what differs (slow)
                for name, value in env.items():
                    if applied.get(name) != value:
                        environ[name] = value
                applied = env
                base = environ._data.copy()
            environ["STEERFLOW_TASK_ID"] = str(task_id)
            environ["STEERFLOW_CHECKPOINT"] = f"{checkpoints}{task_id}.ckpt"
            data = environ._data
            base[task_key], base[checkpoint_key] = data[task_key], data[checkpoint_key]
            _current[0] = task_id
            args, kwargs = serialize.loads(payload, consume=False)  # a retry loads it again
            running[0] = number  # from here a preempt signal raises at once ...
            t_start = time.time()
            try:
                if wanted[0] == number or expired[0] == number:  # ... one that came while we unpickled acts now
                    running[0] = 0
                    if expired[0] == number:
                        fired[0] = number
                        raise TimedOut(_TIMED_OUT)
                    raise Preempted("The campaign preempted this task before it started; it will run again later.")
                value = fn(*args, **kwargs)
            finally:
                running[0] = 0
                t_end = time.time()
                if os.getpid() != me:  # a child the task forked returned: it must not go on as a second worker
                    _forked_child_returned(task_id)
            if fired[0] == number:  # it swallowed the interrupt and returned: it still ran past its timeout
                raise TimedOut(_TIMED_OUT + " It caught TimedOut and returned; the result was dropped.")
            reply = (task_id, True, serialize.dumps(value), "", (t_recv, t_start, t_end, time.time()))
            args = kwargs = value = None  # unmap shared-memory arguments before the driver may reuse them
        except BaseException as exc:  # noqa: BLE001 - whatever a task raises (sys.exit too) goes back
            tb = traceback.format_exc()
            if fired[0] == number and not isinstance(exc, TimedOut):  # it raised another error as it was interrupted
                exc = TimedOut(f"{_TIMED_OUT} It then raised {type(exc).__name__}.")  # (its traceback says which)
            try:
                blob = serialize.dumps(exc)
                serialize.loads(blob, consume=False)  # an exception that pickles but cannot load would poison the driver
            except Exception:  # noqa: BLE001
                try:
                    text = str(exc)
                except Exception:  # noqa: BLE001 - (its str() raises too: the worker died of it, 3 times)
                    text = "<its str() raised>"
                blob = serialize.dumps(RuntimeError(f"{type(exc).__name__}: {text}"))
            t_end = t_end or time.time()
            reply = (task_id, False, blob, tb, (t_recv, t_start or t_end, t_end, time.time()))
        args = kwargs = value = None  # (the error path) no mapping of the arguments outlives the task
        if proctree.has_children():  # nothing a task starts outlives it (one syscall when it started nothing)
            proctree.kill_descendants()
        held = serialize.mapped_paths()  # the task kept a reference into its arguments' shared memory: say so, once
        if held and not held <= reported:
            write_all(wfd, _frame(pickle.dumps(("held", task_id, sorted(held - reported)), 5)))
        reported = held
        write_all(wfd, _frame(pickle.dumps(reply, 5)))
        restore(environ, base, *start)  # (after the reply: off the task's round trip)


def restore(environ: Any, base: dict, home: str, path: list, entries: list) -> None:
    """Undo what a task changed in its worker's process, for the next task: `os.environ` back to ``base`` (as the
    task got it), the working directory to ``home``, `sys.path` to the list ``path`` holding ``entries``.

    About 2 us when nothing changed (a dict and a list compared, one getcwd), after the task's reply is sent. Not
    undone: changes made around `os.environ` (`os.putenv`, C code's setenv), the CPU affinity, imported modules
    and other global state.
    """
    if os.environ is not environ:  # (the task rebound the name itself)
        os.environ = environ
    data = environ._data
    if data != base:
        environb = os.environb  # (shares ``data``: its keys and values are the encoded ones ``data`` holds)
        for key in [key for key in data if key not in base]:
            del environb[key]
        for key, value in base.items():
            if data.get(key) != value:
                environb[key] = value
    if sys.path is not path:
        sys.path = path
    if path != entries:
        path[:] = entries
    try:
        if os.getcwd() == home:
            return
    except OSError:  # the task removed the directory it was in
        pass
    try:
        os.chdir(home)
    except OSError:  # (or ours: nothing to go back to)
        pass


_current = [0]  # the task this worker runs now (for partial results)


def _forked_child_returned(task_id: int) -> None:
    """A process task ``task_id`` forked returned from (or raised out of) the task's function: as a second reader
    of the worker's pipes it would answer for the worker and take its next tasks. It ends here, saying why."""
    try:
        os.write(2, f"steerflow: a process that task {task_id} forked (pid {os.getpid()}) returned from the task's "
                    "function; it exits (end a forked child with os._exit).\n".encode())
    finally:
        os._exit(1)


_TIMED_OUT = "The task ran past its timeout; the runtime interrupted it."


def _stream_partials(wfd: int) -> None:
    """Let `steerflow.partial.emit` send frames on the reply pipe; a preemption waits until a frame is whole."""
    import pickle
    import signal
    import threading

    from steerflow import partial, serialize

    lock = threading.Lock()

    def send(value: Any) -> None:
        frame = _frame(pickle.dumps(("partial", _current[0], serialize.dumps_inband(value)), 5))
        with lock:
            old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
            try:
                write_all(wfd, frame)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)

    partial.set_sink(send)


def set_affinity(cpus: Any) -> None:
    """Bind every thread of this process (BLAS and OpenMP pools too, not only the caller) to ``cpus``."""
    os.sched_setaffinity(0, cpus)
    try:
        threads = os.listdir("/proc/self/task")
    except OSError:
        return
    if len(threads) > 1:
        for tid in threads:
            try:
                os.sched_setaffinity(int(tid), cpus)
            except OSError:  # the thread ended meanwhile
                pass


def _frame(data: bytes) -> bytes:
    return _HEADER.pack(len(data)) + data


def _leave() -> None:
    """Exit once the driver said stop: run the atexit handlers and flush, but skip the interpreter's teardown.

    Tearing down the modules a task imported (numpy, scipy, torch) took a worker 30-250 ms, and a runtime's
    shutdown waits for its workers: ProcessPoolExecutor's forked workers skip it too (`os._exit`).
    """
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # closed or replaced by a task
            pass
    os._exit(0)


if __name__ == "__main__":
    try:
        main(*(int(a) for a in sys.argv[1:5]))
    except (BrokenPipeError, ConnectionResetError, EOFError, KeyboardInterrupt):
        os._exit(0)  # the driver went away (even before we said ready): nothing to report to, leave quietly
    _leave()
