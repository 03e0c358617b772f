"""Programs in the local engine: their output stream, their record, and those the warm launcher starts.

`LauncherPrograms` is a mixin of `steerflow.engines.local.LocalEngine` (its state is set in
`LocalEngine.__init__`): it starts the warm program launcher (`steerflow.engines.spawner`), starts plain
programs in the guards it forked ahead, and tells their ends. A launcher that does not answer (stopped,
say) neither holds up the engine's caller nor keeps a killed program's task from ending.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time

from .. import proctree
from ..resources import Allocation
from ..task import Executable
from . import launchers, spawner
from .base import Event, Launch
from .poller import Poller

#: how long the launcher has to report a killed program's end before the engine looks for itself (`_killed_ends`)
KILLED_REPORT_S = 0.5


class Child:
    """A program the engine started (through the wrapper, or the launcher): what it keeps of it until its end."""

    __slots__ = ("proc", "pidfd", "launch", "files", "spawned", "stream")

    def __init__(self, proc: subprocess.Popen, pidfd: int, launch: Launch, files: list) -> None:
        self.proc, self.pidfd, self.launch, self.files = proc, pidfd, launch, files
        self.spawned = time.time()
        self.stream: Stream | None = None


class Stream:
    """The named pipe a program writes partial results to (one JSON value per line)."""

    __slots__ = ("path", "rfd", "keep", "buffer")

    def __init__(self, path: str) -> None:
        try:
            os.mkfifo(path, 0o600)
        except FileExistsError:  # left by a driver that was killed (attempt numbers restart on resume)
            os.unlink(path)
            os.mkfifo(path, 0o600)
        self.path = path
        self.rfd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        self.keep = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # no EOF between writers
        self.buffer = b""

    def read(self, launch: Launch, events: list[Event], final: bool = False) -> None:
        while True:
            try:
                chunk = os.read(self.rfd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        if final and self.buffer.strip():
            lines.append(self.buffer)
        for line in lines:
            if line.strip():
                events.append(Event("partial", launch.task_id, launch.attempt, line, "json"))


def private_file(name: str, flags: int) -> int:
    """Task output files are the user's alone (0600), as the journal and results are."""
    return os.open(name, flags, 0o600)


def close_stream(stream: Stream) -> None:
    for fd in (stream.rfd, stream.keep):
        try:
            os.close(fd)
        except OSError:
            pass
    try:
        os.unlink(stream.path)
    except OSError:
        pass


class LauncherPrograms:
    """Plain programs started by the warm launcher (see the module docstring)."""

    _sel: Poller
    _spawner: spawner.Launcher | None
    _spawned: dict[int, Child]
    _children: dict[int, Child]
    _killed: dict[int, float]
    _allocation: Allocation | None
    _worker_env: dict[str, str]
    _pending_events: list[Event]

    def _start_spawner(self) -> spawner.Launcher | None:
        """The warm program launcher; None where it cannot start (programs then start through the wrapper)."""
        try:
            launcher = spawner.Launcher(self._worker_env)
        except OSError:
            return None
        self._sel.register(launcher.rfd, selectors.EVENT_READ, launcher)
        return launcher

    def _read_spawner(self, launcher: spawner.Launcher) -> tuple | None:
        """One report of the launcher (an exit is kept in ``launcher.exits``); None: it is gone."""
        reply = launcher.read()
        if reply is None:  # it never should be gone: its programs died with it (their guards' parent-death signal)
            try:
                self._sel.unregister(launcher.rfd)
            except (KeyError, ValueError):
                pass
            launcher.close()
            if self._spawner is launcher:
                self._spawner = None
            for pid in self._spawned:
                launcher.exits.setdefault(pid, -signal.SIGKILL)
        return reply

    def _wait_spawned(self, pid: int) -> int:
        """A launched program's code: read the launcher's reports until its exit is there."""
        launcher = self._spawner
        while launcher is not None:
            if pid in launcher.exits:
                return launcher.exits.pop(pid)
            if self._read_spawner(launcher) is None:
                return launcher.exits.pop(pid, -signal.SIGKILL)
        return -signal.SIGKILL

    def _spawn_program(self, launch: Launch, env: dict[str, str], out: str, err: str, stream: Stream) -> bool:
        """Start a plain (non-MPI) program in a guard the warm launcher forked ahead: a write, not a Python start.
        False: the launcher has no guard ready and does not answer (nothing started: start it through the wrapper)."""
        spec = launch.spec
        assert isinstance(spec, Executable) and self._allocation is not None and self._spawner is not None
        slot = launch.placement.slots[0]
        cpus = self._allocation.nodes[slot.node].physical_cpus(slot.cores)
        argv = launchers.program_argv(spec)
        pid = self._spawner.start(spawner.request_frame(
            (argv, env, None if spec.cwd is None else os.fspath(spec.cwd), out, err, list(cpus))))
        if pid == 0:
            return False
        if pid is None:  # the launcher is gone (it never should be): this program is lost, later ones use the wrapper
            self._read_spawner(self._spawner)
            close_stream(stream)
            self._pending_events.append(Event("lost", launch.task_id, launch.attempt, text=f"could not start "
                                              f"{launchers.describe(spec.argv)}: the program launcher exited", code=-1))
            return True
        child = Child(spawner.Program(pid, self._wait_spawned), -1, launch, [])  # type: ignore[arg-type]
        child.stream = stream
        self._children[launch.task_id] = child
        self._spawned[pid] = child
        self._sel.register(stream.rfd, selectors.EVENT_READ, (child, stream))
        return True

    def _killed_ends(self, timeout: float | None) -> float | None:
        """Killed programs the launcher started whose end it has not reported a while later (it does not answer:
        stopped, say): ended all the same once their guard is gone. Before, such a task never ended, timeout or not.
        Returns the wait's timeout, bounded while some are left to look at."""
        launcher, now = self._spawner, time.monotonic()
        for pid, killed in list(self._killed.items()):
            if pid not in self._spawned:
                del self._killed[pid]
            elif now - killed > KILLED_REPORT_S and not proctree.process_alive(pid):
                del self._killed[pid]
                if launcher is not None:
                    launcher.assume_ended(pid, -signal.SIGKILL)
                    timeout = 0  # (its end is told in this wait)
        if not self._killed:
            return timeout
        return 0.05 if timeout is None else min(timeout, 0.05)

    def _reap_spawned(self, events: list[Event]) -> None:
        """Programs whose exit the launcher reported (or whose launcher died): their ends, as `_on_child` says."""
        launcher = self._spawner
        exits = launcher.exits if launcher is not None else {}
        for pid in [p for p in self._spawned if p in exits or launcher is None]:
            child = self._spawned.pop(pid)
            code = exits.pop(pid, -signal.SIGKILL)
            child.proc.returncode = code
            self._on_child(child, events)
