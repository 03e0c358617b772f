"""The embedded local engine: warm worker processes for functions, subprocesses for programs.

Everything runs on this machine, whatever nodes the allocation declares; binding maps the
declared cores onto real CPUs. One selector (epoll) watches the worker pipes, a pidfd per
subprocess and an eventfd for wake-ups, so the runtime's loop sleeps until something happens.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .. import proctree, serialize
from ..resources import Allocation
from ..task import Executable, Function
from . import launchers, spawner
from .base import Event, FunctionKeys, Launch
from .poller import Poller
from .programs import Child, LauncherPrograms, Stream, close_stream, private_file
from .pool import DEFAULT_BINDING, STOP, Binding, WarmPool, Worker, exit_status  # noqa: F401 - (Binding, DEFAULT_BINDING: used by dask_node)
from .worker import _HEADER, CONTROL, TIMED_OUT, write_all


class _InWorker:
    """A plain program a warm worker runs (`proctree.run_program`): what the engine keeps of it until its end."""

    __slots__ = ("launch", "stream", "files")

    def __init__(self, launch: Launch, stream: Stream, files: tuple[str, str]) -> None:
        self.launch, self.stream, self.files = launch, stream, files


#: Let a worker whose reply woke this loop start the task queued behind it before the loop reads that reply.
#: A pipe write wakes its reader on the writer's CPU (a "sync" wake-up), and the loop woken there preempts the
#: worker in its write: the queued task then waited for the loop's whole turn while the other core idled
#: (a 2-core function's hand-over 0.16-0.18 ms; issue 13i's note). The loop yields only when that worker is
#: runnable on the very CPU the loop runs on (`_preempted_here`: /proc/PID/stat, ~10 us, at most once per
#: task of 10 ms or more): a yield elsewhere hands the loop's CPU to whatever else waits there (a busy
#: machine's other work) and delays the loop. Only after a task that ran `HAND_OVER_YIELD_MIN_RUN_S` or
#: longer: the loop's own turn may then wait a scheduler slice (~1-5 ms) behind a queued task that computes,
#: which a short task's pipeline cannot spare (300 busy 1 ms tasks on 2 cores: 200 ms with a yield, 180
#: without). ``STEERFLOW_HANDOVER_YIELD=0`` turns it off.
HAND_OVER_YIELD = os.environ.get("STEERFLOW_HANDOVER_YIELD", "1") != "0"
HAND_OVER_YIELD_MIN_RUN_S = 0.01  # (the worker's last task's run time: its queued ones likely run as long)


def _current_cpu() -> Callable[[], int] | None:
    """``sched_getcpu`` (a vDSO read on Linux), or None where there is none."""
    if not HAND_OVER_YIELD or not hasattr(os, "sched_yield"):
        return None
    try:
        import ctypes

        getcpu = ctypes.CDLL(None, use_errno=True).sched_getcpu
    except (OSError, AttributeError):
        return None
    getcpu.restype, getcpu.argtypes = ctypes.c_int, []
    return getcpu


_getcpu = _current_cpu()


def _preempted_here(pid: int) -> bool:
    """Whether process ``pid`` is runnable (state R) on the CPU this thread runs on, where this thread runs now:
    it waits for it. False where that cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return fields[0] == b"R" and _getcpu is not None and int(fields[36]) == _getcpu()
    except (OSError, IndexError, ValueError):
        return False

#: the function a warm worker runs a plain program with (one spec: its number and bytes are made once)
_RUN_PROGRAM = Function(proctree.run_program)


class LocalEngine(LauncherPrograms, WarmPool):
    """Runs tasks on this machine. ``workers`` is how many warm workers start at once (default: one per CPU).

    A warm worker keeps the GPU ids and thread count it was started with (its start-up
    environment), so it serves only tasks with that binding; a task bound otherwise gets an idle
    worker of its binding or a new one. At most ``workers`` + 2 idle workers are kept: the one idle
    longest makes room. Same-shaped tasks keep reusing the workers that have their function loaded.
    A plain (non-MPI) program runs in an idle warm worker of its binding, as the pool runs its programs
    (`proctree.run_program`: the worker forks it, waits, and kills what it left), and may be queued on a
    busy worker behind the task it runs (`launch_behind`), so a core goes from a function to a program or
    back with no round trip to the driver. Where no worker of its binding is idle (or
    ``programs_in_workers`` is False) it starts in a guard that a warm launcher forked ahead
    (`steerflow.engines.spawner`): one write to a waiting process, which execs it. MPI programs, and all
    programs if that launcher is gone, start through the wrapper (`launchers.reaper_command`).
    """

    local = True

    def __init__(self, workers: int | None = None, programs_in_workers: bool = True) -> None:
        self.initial_workers = workers
        self.programs_in_workers = programs_in_workers
        self._programs: dict[int, _InWorker] = {}  # plain programs that warm workers run or have queued
        self._allocation: Allocation | None = None
        self._run_dir = Path(".")
        self._checkpoints = os.path.join(".", "checkpoints", "")
        self._sel = Poller()  # (epoll, leaner than `selectors`' on the loop's every round)
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._sel.register(self._wake_fd, selectors.EVENT_READ, None)
        self._idle: list[Worker] = []
        self._busy: dict[int, Worker] = {}
        self._dying: list[Worker] = []  # killed workers whose last reply came before their end
        self._children: dict[int, Child] = {}
        self._spawner: spawner.Launcher | None = None
        self._spawned: dict[int, Child] = {}  # guard pid -> its child record (programs the launcher started)
        self._fn_keys = FunctionKeys(serialize.dumps_function)
        self._binding_cache: dict[tuple, tuple[dict[str, str], list[int], Binding]] = {}
        self._max_idle = 1
        self._worker_env = dict(os.environ)
        self._worker_env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self._pending_events: list[Event] = []
        self._held: set[str] = set()  # shared-memory files a worker still maps after its task (never recycled)
        self._skipping: list[Worker] = []  # done, but yet to skip a task taken back from it (`withdraw`)
        self._queued_on: dict[int, Worker] = {}  # task queued behind a running one -> its worker (`launch_behind`)
        self._unsent: list[Worker] = []  # workers given a task message this round, not written yet (`send_all`)
        self._closed = False
        self._tasks_dir = ""  # the run's folder of task output files, once made
        self._stream_stem = ""  # where programs' partial-result pipes go (see `_open_stream`; set by `start`)
        self._killed: dict[int, float] = {}  # guard pid of a killed program the launcher started -> when

    # ---- life cycle ------------------------------------------------------------------------
    def start(self, allocation: Allocation, run_dir: Path) -> None:
        self._allocation = allocation
        self._run_dir = Path(run_dir)
        self._checkpoints = os.path.join(str(self._run_dir), "checkpoints", "")
        # (named by the process that runs the engine: a dead driver's are removed by `serialize.cleanup_stale`)
        self._stream_stem = os.path.join(serialize.SHM_DIR, f"{serialize.PREFIX}{os.getpid()}-{os.urandom(8).hex()}-")
        n = self.initial_workers or min(len(os.sched_getaffinity(0)), allocation.total_cores)
        # idle workers kept: the warm pool, plus room for two of other bindings (a 2-core or GPU task's), so a mixed
        # set of shapes does not retire and start a worker (a Python start, 0.1-0.5 s) at every change of shape
        self._max_idle = max(1, n) + 2
        self._idle.extend(self._spawn_worker(DEFAULT_BINDING) for _ in range(n))
        self._spawner = self._start_spawner()

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        for worker in self._idle:
            try:
                write_all(worker.wfd, _HEADER.pack(len(STOP)) + STOP)
            except OSError:
                pass
        for worker in [*self._busy.values(), *self._dying, *self._skipping]:
            proctree.signal_tree(worker.proc.pid)
        for child in list(self._children.values()):
            proctree.signal_tree(child.proc.pid)
        for worker in [*self._idle, *self._busy.values(), *self._dying, *self._skipping]:
            try:
                worker.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proctree.signal_tree(worker.proc.pid)
                worker.proc.wait()
            try:  # whatever a task started in the worker's session goes with it
                os.killpg(worker.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self._close_worker(worker)
        for child in self._children.values():
            child.proc.wait()
            self._close_child(child)
        self._spawned.clear()
        for program in self._programs.values():
            self._drop_program(program)
        self._programs.clear()
        launcher, self._spawner = self._spawner, None
        if launcher is not None:
            try:
                self._sel.unregister(launcher.rfd)
            except (KeyError, ValueError):
                pass
            launcher.stop()
        self._idle.clear()
        self._busy.clear()
        self._dying.clear()
        self._skipping.clear()
        self._children.clear()
        self._sel.close()
        os.close(self._wake_fd)

    # ---- launching ---------------------------------------------------------------------------
    def launch(self, launch: Launch) -> None:
        if isinstance(launch.spec, Function):
            self._launch_function(launch)
        else:
            self._launch_executable(launch)

    def _program_env(self, launch: Launch) -> tuple[list[str], dict[str, str], str, Stream]:
        """A program's command line, its whole environment, the stem of its output files and its stream."""
        spec = launch.spec
        assert isinstance(spec, Executable) and self._allocation is not None
        cmd, extra = launchers.executable_command(spec, self._allocation, launch.placement, local=self.local)
        env = dict(os.environ)
        env.update(spec.env)
        env.update(launchers.binding_env(self._allocation, launch.placement))
        env["STEERFLOW_TASK_ID"] = str(launch.task_id)
        env.update(extra)
        env["STEERFLOW_CHECKPOINT"] = self._checkpoint_path(launch.task_id)
        bad = next((t for t in (*cmd, *env, *env.values(), os.fspath(spec.cwd or "")) if "\0" in t), None)
        if bad is not None or any("=" in name for name in env):  # what Popen refuses: the runtime fails it alone
            raise ValueError(f"embedded null byte in {bad!r}" if bad is not None
                             else "illegal environment variable name")
        if not self._tasks_dir:  # (made by the first program, not looked up by every one: a syscall each)
            os.makedirs(self._run_dir / "tasks", mode=0o700, exist_ok=True)
            self._tasks_dir = f"{self._run_dir}{os.sep}tasks{os.sep}"
        stem = f"{self._tasks_dir}{launch.task_id}.{launch.attempt}"
        stream = self._open_stream(f"{launch.task_id}.{launch.attempt}.partial", stem)
        env["STEERFLOW_PARTIAL"] = stream.path
        return cmd, env, stem, stream

    def _open_stream(self, name: str, stem: str) -> Stream:
        """A program's partial-results pipe: in shared memory (``/dev/shm``), not on the run's disk, where making
        and removing it cost a journalled metadata write each (0.1-1 ms on a busy disk, per program, in the
        driver's round). Its name is unguessable, and a driver killed outright leaves it to `serialize.cleanup_stale`."""
        if self._stream_stem:
            try:
                return Stream(f"{self._stream_stem}{name}")
            except OSError:  # (no named pipes there): next to the task's output files, as before
                self._stream_stem = ""
        return Stream(f"{stem}.partial")

    def _in_worker(self, launch: Launch, env: dict[str, str], stem: str, stream: Stream) -> Launch:
        """The launch of `proctree.run_program` that runs this plain program in a warm worker."""
        spec = launch.spec
        assert isinstance(spec, Executable)
        argv = launchers.program_argv(spec)
        files = (f"{stem}.out", f"{stem}.err")
        # made here, so that the worker only opens them: creating a file costs the disk's journal, and a queued
        # program's files are then made while the task before it still runs, off the path from one to the next
        for path in files:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600))
        payload = serialize.dumps(((argv, env, spec.cwd, *files), {}))
        program = _InWorker(launch, stream, files)
        self._programs[launch.task_id] = program
        self._sel.register(stream.rfd, selectors.EVENT_READ, (program, stream))
        return Launch(launch.task_id, launch.attempt, _RUN_PROGRAM, launch.placement, payload)

    def _worker_waits(self, launch: Launch) -> bool:
        """An idle warm worker of this placement's binding is there (a program runs in it, not in a new one)."""
        binding = self._bound(launch)[2]
        return any(worker.binding == binding for worker in self._idle)

    def launch_behind(self, launch: Launch, behind: int) -> bool:
        """As `WarmPool.launch_behind`; a plain program too, run by that worker once its task ends."""
        spec = launch.spec
        if not isinstance(spec, Executable):
            return super().launch_behind(launch, behind)
        if not self.programs_in_workers or spec.launcher != "none" or behind not in self._busy:
            return False
        if self._unsent:  # (see `_launch_executable`)
            self.send_all()
        _, env, stem, stream = self._program_env(launch)
        if super().launch_behind(self._in_worker(launch, env, stem, stream), behind):
            return True
        self._drop_program(self._programs.pop(launch.task_id))
        return False

    def withdraw(self, task_id: int) -> bool:
        taken = super().withdraw(task_id)
        if taken and self._programs:
            program = self._programs.pop(task_id, None)
            if program is not None:  # never started: its stream and empty output files go (it is launched anew)
                self._drop_program(program)
                for path in program.files:
                    try:
                        os.unlink(path)
                    except OSError:
                        pass
        return taken

    def _drop_program(self, program: _InWorker) -> None:
        try:
            self._sel.unregister(program.stream.rfd)
        except (KeyError, ValueError):
            pass
        close_stream(program.stream)

    def _launch_executable(self, launch: Launch) -> None:
        spec = launch.spec
        assert isinstance(spec, Executable) and self._allocation is not None
        if self._unsent:  # the round's task messages so far go first: a program's files cost the disk 0.1-1 ms
            self.send_all()
        cmd, env, stem, stream = self._program_env(launch)
        if spec.launcher == "none" and self.programs_in_workers and self._worker_waits(launch):
            self._launch_function(self._in_worker(launch, env, stem, stream))
            return
        if spec.launcher == "none" and self._spawner is not None \
                and self._spawn_program(launch, env, f"{stem}.out", f"{stem}.err", stream):
            return
        files = [open(f"{stem}.out", "wb", opener=private_file), open(f"{stem}.err", "wb", opener=private_file)]
        try:
            proc = subprocess.Popen(cmd, env=env, cwd=spec.cwd, stdin=subprocess.DEVNULL, stdout=files[0],
                                    stderr=files[1], start_new_session=True)
        except Exception as exc:
            for f in files:
                f.close()
            close_stream(stream)
            if not isinstance(exc, OSError):
                raise  # e.g. ValueError: a NUL byte; the runtime fails this task alone
            self._pending_events.append(Event("lost", launch.task_id, launch.attempt, text=f"could not start "
                                              f"{launchers.describe(cmd)}: {exc}", code=-1))
            return
        pidfd = os.pidfd_open(proc.pid)
        child = Child(proc, pidfd, launch, files)
        child.stream = stream
        self._children[launch.task_id] = child
        self._sel.register(pidfd, selectors.EVENT_READ, child)
        self._sel.register(stream.rfd, selectors.EVENT_READ, (child, stream))

    # ---- control -----------------------------------------------------------------------------
    def _pid_of(self, task_id: int) -> int | None:
        worker = self._busy.get(task_id) or self._queued_on.get(task_id)
        if worker is not None:
            return worker.proc.pid
        child = self._children.get(task_id)
        return child.proc.pid if child is not None else None

    def kill(self, task_id: int) -> None:
        """Kill the task's whole process tree now; its end is reported by `wait` as usual.

        A queued task that may have started (`withdraw` said False) is killed with its worker. A program
        a warm worker runs is killed alone where that is sure to hit it (`_kill_program`): the worker lives on."""
        if self._programs and task_id in self._programs and self._kill_program(task_id):
            return
        worker = self._busy.get(task_id) or self._queued_on.get(task_id)
        if worker is not None:
            worker.doomed = True  # a reply already on its way must not return it to the idle pool
        pid = self._pid_of(task_id)
        if pid is not None:
            proctree.signal_tree(pid, signal.SIGKILL)
            if pid in self._spawned:  # its end comes from the launcher: looked for here too (`_killed_ends`)
                self._killed[pid] = time.monotonic()

    def _kill_program(self, task_id: int) -> bool:
        """Kill the tree of the program a warm worker runs for this task, not the worker (a new one is a Python
        start). Only where nothing else can be below the worker: it runs this task as far as the driver knows,
        nothing is queued behind it (the worker may have moved on to that), it is not suspended (it must reap
        the program), and the program has started (a child is there; before that, the worker goes, as always).
        The worker then reports the program's end, killed by SIGKILL, as a program's guard would."""
        worker = self._busy.get(task_id)
        if worker is None or worker.queued is not None or worker.stopped or worker.doomed:
            return False
        below_guard = proctree.children(worker.proc.pid)  # the worker itself (it runs below its guard)
        programs = proctree.children(below_guard[0]) if len(below_guard) == 1 else []
        if not programs:
            return False
        for pid in programs:
            proctree.signal_tree(pid, signal.SIGKILL)
        return True

    def preempt(self, task_id: int) -> None:
        """Ask a task to checkpoint and stop: `Preempted` is raised in a function, SIGTERM ends a program.

        A function that has not started yet (its worker still unpickling or importing) is
        preempted as it starts: the request names the worker's task number on its control pipe.
        """
        if self._tell_worker(task_id, 0) is not None:
            return
        child = self._children.get(task_id)
        if child is not None:
            proctree.signal_tree(child.proc.pid, signal.SIGTERM)

    def interrupt(self, task_id: int) -> bool:
        """At a function task's deadline: raise `TimedOut` in it, in its worker, which stays warm (a soft timeout).

        False where that cannot be done, and the caller kills the task: not a function's (a program, also one a
        warm worker runs), its worker suspended, killed or not found. The runtime kills the task anyway if it
        is still running a short grace later (it swallowed the interrupt, or it is in C code that holds on).
        A kill per timeout cost a new worker's start each (0.02-0.5 s of Python), and under load the tasks
        that waited for those starts timed out in turn."""
        if task_id in self._programs:
            return False
        return bool(self._tell_worker(task_id, TIMED_OUT))

    def _tell_worker(self, task_id: int, flag: int) -> bool | None:
        """Name the task's number on its worker's control pipe (with ``flag``) and signal it to look: a preempt or a
        timeout. None: no worker runs it; False: its worker could not be told (gone, suspended, killed, flooded).
        A function that has not started yet (its worker still unpickling or importing) is told as it starts."""
        worker = self._busy.get(task_id)
        queued = self._queued_on.get(task_id)
        if worker is None and queued is not None and queued.queued is not None:  # taken by its worker, not yet seen
            worker = queued
            number = queued.queued.number
        else:
            number = worker.current if worker is not None else 0
        if worker is None:
            return None
        if flag and (worker.stopped or worker.doomed or not worker.ready):  # (a timeout kills it instead; a preempt
            # resumes it first, and one not ready yet has no deadline before `runloop.WORKER_START_GRACE_S`)
            return False
        try:
            os.write(worker.cfd, CONTROL.pack(number | flag))
            os.kill(worker.proc.pid, signal.SIGUSR1)
        except (ProcessLookupError, BlockingIOError, BrokenPipeError):
            return False  # gone (its end is reported as usual) or flooded with requests it will read
        return True

    def release_payload(self, task_id: int, payload: bytes) -> None:
        serialize.recycle(payload, self._held)
        if self._held:
            self._held.difference_update(serialize.shm_paths(payload))

    def _checkpoint_path(self, task_id: int) -> str:
        return f"{self._checkpoints}{task_id}.ckpt"  # a string join: pathlib costs ~5 us on every launch

    def suspend(self, task_id: int) -> None:
        worker = self._busy.get(task_id)
        if worker is not None:
            worker.stopped = True
        pid = self._pid_of(task_id)
        if pid is not None:  # below its guard (worker or program wrapper): the guard stays awake
            proctree.stop_below(pid)

    def resume(self, task_id: int) -> None:
        worker = self._busy.get(task_id)
        if worker is not None:
            worker.stopped = False
        pid = self._pid_of(task_id)
        if pid is not None:
            proctree.signal_tree(pid, signal.SIGCONT)

    def wakeup(self) -> None:
        try:
            os.eventfd_write(self._wake_fd, 1)
        except OSError:
            pass

    # ---- events ------------------------------------------------------------------------------
    def wait(self, timeout: float | None) -> list[Event]:
        if self._unsent:
            self.send_all()  # (the round's task messages: see `WarmPool.send_all`)
        events: list[Event] = []
        if self._killed:
            timeout = self._killed_ends(timeout)
        if self._pending_events:
            events.extend(self._pending_events)
            self._pending_events.clear()
            timeout = 0
        for source in self._sel.select(timeout):
            if source is None:
                try:
                    os.eventfd_read(self._wake_fd)
                except BlockingIOError:
                    pass
            elif isinstance(source, Worker):
                if source.queued is not None and source.ran >= HAND_OVER_YIELD_MIN_RUN_S and _getcpu is not None \
                        and source.inner and _preempted_here(source.inner):
                    os.sched_yield()  # (see `HAND_OVER_YIELD`)
                self._on_worker(source, events)
            elif isinstance(source, spawner.Launcher):
                self._read_spawner(source)
            elif isinstance(source, tuple):  # a program's partial results
                if source[0].stream is source[1]:
                    source[1].read(source[0].launch, events)
            else:
                self._on_child(source, events)
        if self._spawned:
            self._reap_spawned(events)
        if self._programs:
            events = self._program_ends(events)
        return events

    def _program_ends(self, events: list[Event]) -> list[Event]:
        """A warm worker's reply about a plain program it ran, told as a program's end (its exit code)."""
        out: list[Event] = []
        for event in events:
            program = self._programs.get(event.task_id) if event.kind in ("ok", "error", "lost", "requeue") else None
            if program is None or program.launch.attempt != event.attempt:
                out.append(event)
                continue
            del self._programs[event.task_id]
            if event.kind != "requeue":  # what it streamed comes before its end
                program.stream.read(program.launch, out, final=True)
            self._drop_program(program)
            if event.kind == "ok":
                code = serialize.loads(event.value)
                if code < 0:
                    event = Event("lost", event.task_id, event.attempt, text=f"it was killed by {exit_status(code)}",
                                  code=code)
                else:
                    event = Event("exit", event.task_id, event.attempt, code=code, times=event.times)
            out.append(event)
        return out

    def _on_child(self, child: Child, events: list[Event]) -> None:
        code = child.proc.wait()
        if child.stream is not None:  # what it streamed comes before its end
            child.stream.read(child.launch, events, final=True)
        self._close_child(child)
        self._children.pop(child.launch.task_id, None)
        launch = child.launch
        if code < 0:
            events.append(Event("lost", launch.task_id, launch.attempt,
                                text=f"it was killed by {exit_status(code)}", code=code))
        else:
            now = time.time()
            events.append(Event("exit", launch.task_id, launch.attempt, code=code,
                                times=(child.spawned, child.spawned, now, now)))

    def _close_child(self, child: Child) -> None:
        if child.pidfd >= 0:  # (a program the launcher started has none: its exit comes from the launcher)
            try:
                self._sel.unregister(child.pidfd)
            except (KeyError, ValueError):
                pass
            os.close(child.pidfd)
        for f in child.files:
            f.close()
        if child.stream is not None:
            try:
                self._sel.unregister(child.stream.rfd)
            except (KeyError, ValueError):
                pass
            close_stream(child.stream)
            child.stream = None
