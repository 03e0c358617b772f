"""A warm launcher for programs: each program costs a fork here, not the start of a Python wrapper.

A program runs below a guard (`steerflow.proctree.guard`): a child subreaper that binds nothing
itself, kills whatever the program leaves behind when it ends, and kills the whole tree when
its parent dies. Started as ``python -I -S proctree.py ... -- program`` for every task, that
wrapper costs an interpreter start and its imports (20 ms on an idle core, 60-90 ms on a loaded
one), more than many programs run. The local engine therefore starts this launcher once. It keeps
`READY` guards forked ahead: each started a new session, became a guard and forked its *stem*,
a child that waits on a pipe. A program's start is then one write to a waiting stem, which opens
the task's output files, binds its CPUs, enters its directory and execs the program; the two
forks a start used to wait for (5-12 ms on 2 idle cores, measured) are made between starts.

The launcher dies with the driver (PR_SET_PDEATHSIG, SIGKILL): its guards then get their
parent-death signal and kill their programs' trees, as they do when the driver itself is their
parent. It is not a subreaper: what escapes a guard killed outright goes where it went before.

Protocol (length-prefixed pickles, as the warm worker's): the engine sends ``(task_id, frame)``, the
frame being `request_frame` of ``(argv, env, cwd, out_path, err_path, cpus)`` (passed on to the stem
as it is), or ``None`` to stop; the launcher answers ``("started", task_id, pid)`` at once (``pid``:
the guard's), and ``("exit", pid, code)`` when a guard ends (``code`` as ``Popen.returncode``:
negative for a signal). Guards forked ahead and never used are not reported.
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
from collections.abc import Callable

from steerflow.engines.worker import read_exact, write_all

HEADER = struct.Struct("!I")  # the frame length, as the warm worker's protocol has it
_PRIVATE = 0o600
READY = 2  # guards kept forked ahead (two programs started in one pass of the runtime's loop both find one)


def main(rfd: int, wfd: int, driver: int) -> None:
    import selectors
    import signal

    from steerflow import proctree

    proctree.die_with_parent(signal.SIGKILL)
    if os.getppid() != driver:
        os._exit(0)  # the driver died before we could ask to die with it
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # a guard ended: the wake-up pipe says so
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_IGN)  # tree-wide signals meant for programs: the launcher stays
    sel = selectors.DefaultSelector()
    sel.register(rfd, selectors.EVENT_READ)
    sel.register(wake_r, selectors.EVENT_READ)
    me = os.getpid()
    own = (rfd, wfd, wake_r, wake_w)
    ready: list[tuple[int, int]] = []  # (guard pid, its stem's request pipe): forked ahead, waiting for a program
    spare: set[int] = set()  # guards forked ahead (used or not, they are never reported)
    try:
        while True:
            while len(ready) < READY:  # after a start, not before it: the next program finds its guard waiting
                guard, stem = _prefork(me, own, ready)
                ready.append((guard, stem))
                spare.add(guard)
            for key, _ in sel.select():
                if key.fd == wake_r:
                    try:
                        while os.read(wake_r, 512):
                            pass
                    except BlockingIOError:
                        pass
                else:
                    try:
                        (size,) = HEADER.unpack(read_exact(rfd, 4))
                        request = pickle.loads(read_exact(rfd, size))
                    except EOFError:
                        return
                    if request is None:
                        return
                    guard, stem = ready.pop(0)
                    spare.discard(guard)
                    _send(wfd, ("started", request[0], guard))  # first: the driver knows the pid before any end
                    try:
                        write_all(stem, request[1])
                    except OSError:  # that guard died while it waited (killed from outside): its exit says so
                        pass
                    os.close(stem)
            while True:  # reap every guard that ended, after any request: no exit is ever missed
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                if pid in spare:  # a guard forked ahead that died unused: fork another
                    spare.discard(pid)
                    for i, (guard, stem) in enumerate(ready):
                        if guard == pid:
                            del ready[i]
                            os.close(stem)
                            break
                    continue
                _send(wfd, ("exit", pid, os.waitstatus_to_exitcode(status)))
    finally:  # the unused guards leave with us (their stems read EOF), and are reaped
        for guard, stem in ready:
            os.close(stem)
        for guard in spare:
            try:
                os.waitpid(guard, 0)
            except ChildProcessError:
                pass


def request_frame(request: tuple) -> bytes:
    """What the launcher hands a waiting stem: ``(argv, env, cwd, out_path, err_path, cpus)``, length-prefixed."""
    data = pickle.dumps(request, 5)
    return HEADER.pack(len(data)) + data


def _send(wfd: int, message: tuple) -> None:
    data = pickle.dumps(message, 5)
    write_all(wfd, HEADER.pack(len(data)) + data)


def _prefork(launcher: int, own_fds: tuple[int, ...], ready: list[tuple[int, int]]) -> tuple[int, int]:
    """Fork a guard ahead of its program: it starts a session, becomes the guard, and its child (the *stem*)
    waits on a pipe for the program to exec. Returns (guard pid, the write end of the stem's pipe)."""
    import signal

    from steerflow import proctree

    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid:
        os.close(r)
        return pid, w
    try:  # the guard-to-be: nothing of the launcher's own is kept
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(sig, signal.SIG_DFL)
        os.setsid()
        for fd in (*own_fds, w, *(stem for _, stem in ready)):
            if fd != own_fds[1]:  # (the reply pipe stays: the guard reports its program's end itself)
                os.close(fd)
        null = os.open(os.devnull, os.O_RDWR)
        for target in (0, 1):  # (2 stays the launcher's: a stem that cannot read its request says so there)
            os.dup2(null, target)
        os.close(null)
    except BaseException as exc:  # noqa: BLE001
        _fail(f"steerflow: could not prepare a program's guard: {exc}")
    wfd, me = own_fds[1], os.getpid()
    # (a frame of ~30 bytes is one atomic write: the guard's and the launcher's never interleave)
    proctree.guard(launcher, close=(r,), on_end=lambda code: _send(wfd, ("ended", me, code)))
    try:  # the stem, from here to the exec: nothing may raise into the launcher's code it was forked from
        os.close(wfd)  # only the guard reports
        (size,) = HEADER.unpack(read_exact(r, 4))
        argv, env, cwd, out_path, err_path, cpus = pickle.loads(read_exact(r, size))
        os.close(r)
    except BaseException:  # noqa: BLE001 - EOF: the launcher stopped before it needed us
        os._exit(0)
    try:
        out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _PRIVATE)
        err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _PRIVATE)
        for fd, target in ((out, 1), (err, 2)):
            os.dup2(fd, target)
            os.close(fd)
        if cwd is not None:
            os.chdir(cwd)
    except BaseException as exc:  # noqa: BLE001 - the engine sees status 127 and this line in the task's stderr
        _fail(f"steerflow: could not set up {argv[0] if argv else '(nothing)'}: {exc}")
    try:
        for sig in (signal.SIGPIPE, signal.SIGXFSZ):  # (Python ignores these; a program expects the default)
            signal.signal(sig, signal.SIG_DFL)
        if cpus:
            os.sched_setaffinity(0, cpus)
        os.execvpe(argv[0], argv, env)
    except BaseException as exc:  # noqa: BLE001
        _fail(f"steerflow: cannot run {argv[0] if argv else '(nothing)'}: {exc}")
    os._exit(127)


def _fail(message: str) -> None:
    try:
        os.write(2, f"{message}\n".encode(errors="replace"))
    finally:
        os._exit(127)


# ---- the driver's side (the local engine) ------------------------------------------------------------

class Launcher:
    """The launcher process seen from the driver: start it, send it programs, read what it reports."""

    def __init__(self, env: dict[str, str]) -> None:
        import subprocess

        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "steerflow.engines.spawner", str(to_r), str(from_w),
                                          str(os.getpid())], pass_fds=(to_r, from_w), start_new_session=True,
                                         env=env, stdin=subprocess.DEVNULL)
        except OSError:
            for fd in (to_r, to_w, from_r, from_w):
                os.close(fd)
            raise
        os.close(to_r)
        os.close(from_w)
        self.rfd, self.wfd = from_r, to_w
        self.exits: dict[int, int] = {}  # guard pid -> its code, reported and not yet asked for
        self._ended: set[int] = set()  # guards that reported their program's end and are yet to be reaped
        self.closed = False

    def send(self, request: tuple | None) -> None:
        """``(task_id, request_frame(...))``, or None to stop it. OSError: it is gone."""
        data = pickle.dumps(request, 5)
        write_all(self.wfd, HEADER.pack(len(data)) + data)

    def read(self) -> tuple | None:
        """One report (``started``, ``ended`` or ``exit``; an end is also kept in `exits`); None once it is gone.

        A guard reports its program's end itself (``ended``), then the launcher reaps it (``exit``, always
        later in the pipe): the second is dropped. A guard killed outright is known by ``exit`` alone."""
        try:
            (size,) = HEADER.unpack(read_exact(self.rfd, 4))
            reply = pickle.loads(read_exact(self.rfd, size))
        except (EOFError, OSError):
            return None
        kind = reply[0]
        if kind == "ended":
            self.exits[reply[1]] = reply[2]
            self._ended.add(reply[1])
        elif kind == "exit":
            if reply[1] in self._ended:
                self._ended.discard(reply[1])
                return ("exit-seen", reply[1])
            self.exits[reply[1]] = reply[2]
        return reply

    def stop(self) -> None:
        """Ask it to leave (its programs were ended before), wait for it, close its pipes."""
        try:
            self.send(None)
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired: it does not answer
            self.proc.kill()
            self.proc.wait()
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for fd in (self.rfd, self.wfd):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=5)
            except Exception:  # noqa: BLE001
                pass


class Program:
    """A program the launcher started: what the engine needs of a `Popen` (its pid, its code once it ended)."""

    __slots__ = ("pid", "returncode", "_wait")

    def __init__(self, pid: int, wait: Callable[[int], int]) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._wait = wait

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = self._wait(self.pid)
        return self.returncode


if __name__ == "__main__":
    try:
        main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
    except (BrokenPipeError, ConnectionResetError, EOFError, KeyboardInterrupt):
        os._exit(0)  # the driver went away: its guards have been told by their parent's death
