"""A warm launcher for programs: each program costs a write to a waiting process, not a Python start.

A program runs below a guard (`steerflow.proctree.guard`): a child subreaper that binds nothing
itself, kills whatever the program leaves behind when it ends, and kills the whole tree when
its parent dies. Started as ``python -I -S proctree.py ... -- program`` for every task, that
wrapper costs an interpreter start and its imports (20 ms on an idle core, 60-90 ms on a loaded
one), more than many programs run. The local engine therefore starts this launcher once. It forks
guards ahead: each starts a new session, becomes a guard and forks its *stem*, a child that waits
on a pipe; the launcher hands the write end of that pipe to the driver (over a Unix socket) with
the guard's pid, `READY` at a time. A program's start is the driver's one write to a waiting stem,
which opens the task's output files, binds its CPUs, enters its directory and execs the program:
no fork, and no other process (not even the launcher) between the driver and the exec. The guard
reports the program's end to the driver itself. Measured on 2 cores: launch to the program's
first instruction 12 ms (two forks, after a round trip to the launcher) -> 1.5-2 ms, most of it
the exec; end to the driver's notice 1.1 -> 0.3 ms.

The launcher dies with the driver (PR_SET_PDEATHSIG, SIGKILL): its guards then get their
parent-death signal and kill their programs' trees, as they do when the driver itself is their
parent. It is not a subreaper: what escapes a guard killed outright goes where it went before.

Protocol. Driver to launcher (a pipe, length-prefixed pickles as the warm worker's): ``("used",
pid)`` when the driver took a guard (the launcher forks another), or ``None`` to stop. Launcher and
guards to driver (a SOCK_SEQPACKET socket: one pickle per record, records never interleave):
``("ready", pid)`` with the stem's pipe attached, ``("ended", pid, code)`` from a guard whose
program ended, and ``("exit", pid, code)`` from the launcher for every guard it reaps (``code`` as
``Popen.returncode``: negative for a signal). A stem reads `request_frame` of ``(argv, env, cwd,
out_path, err_path, cpus)``.
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
import time
from collections.abc import Callable

from steerflow.engines.worker import read_exact, write_all

HEADER = struct.Struct("!I")  # the frame length, as the warm worker's protocol has it
_PRIVATE = 0o600
READY = 2  # guards kept forked ahead (two programs started in one pass of the runtime's loop both find one)
READY_WAIT_S = 0.5  # how long a start waits for a guard to be ready before the program starts another way


def main(rfd: int, sock: int, driver: int) -> None:
    import selectors
    import signal
    import socket

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
    own = (rfd, sock, wake_r, wake_w)
    channel = socket.socket(fileno=sock)
    unused: set[int] = set()  # guards handed to the driver that it has not used (yet)
    try:
        while True:
            while len(unused) < READY:
                guard, stem = _prefork(me, own)
                unused.add(guard)
                try:
                    socket.send_fds(channel, [pickle.dumps(("ready", guard), 5)], [stem])
                finally:
                    os.close(stem)  # (the driver's copy is the one that counts)
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
                    unused.discard(request[1])  # ("used", pid): fork the next one
            while True:  # reap every guard that ended, after any request: no exit is ever missed
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                unused.discard(pid)
                _send(sock, ("exit", pid, os.waitstatus_to_exitcode(status)))
    finally:  # guards never used leave with us (the driver closed their stems' pipes first) and are reaped
        for guard in unused:
            try:
                os.waitpid(guard, 0)
            except ChildProcessError:
                pass


def request_frame(request: tuple) -> bytes:
    """What the launcher hands a waiting stem: ``(argv, env, cwd, out_path, err_path, cpus)``, length-prefixed."""
    data = pickle.dumps(request, 5)
    return HEADER.pack(len(data)) + data


def _send(sock: int, message: tuple) -> None:
    os.write(sock, pickle.dumps(message, 5))  # one record of the SOCK_SEQPACKET socket: whole or not at all


def _prefork(launcher: int, own_fds: tuple[int, ...]) -> tuple[int, int]:
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
        for fd in (*own_fds, w):
            if fd != own_fds[1]:  # (the socket to the driver stays: the guard reports its program's end itself)
                os.close(fd)
        null = os.open(os.devnull, os.O_RDWR)
        for target in (0, 1):  # (2 stays the launcher's: a stem that cannot read its request says so there)
            os.dup2(null, target)
        os.close(null)
    except BaseException as exc:  # noqa: BLE001
        _fail(f"steerflow: could not prepare a program's guard: {exc}")
    wfd, me = own_fds[1], os.getpid()
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
    """The launcher process seen from the driver: start it, start programs in its guards, read what it reports."""

    def __init__(self, env: dict[str, str]) -> None:
        import socket
        import subprocess

        to_r, to_w = os.pipe()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "steerflow.engines.spawner", str(to_r),
                                          str(theirs.fileno()), str(os.getpid())], pass_fds=(to_r, theirs.fileno()),
                                         start_new_session=True, env=env, stdin=subprocess.DEVNULL)
        except OSError:
            for fd in (to_r, to_w):
                os.close(fd)
            ours.close()
            theirs.close()
            raise
        os.close(to_r)
        theirs.close()
        self._channel = ours
        self.rfd, self.wfd = ours.fileno(), to_w
        self.exits: dict[int, int] = {}  # guard pid -> its code, reported and not yet asked for
        self.ready: list[tuple[int, int]] = []  # (guard pid, the write end of its stem's pipe): waiting guards
        self._used: set[int] = set()  # guards running a program, whose end is yet to be reported
        self._ended: set[int] = set()  # guards that reported their program's end and are yet to be reaped
        self._gone: set[int] = set()  # guards reaped before the driver read they were ready
        self.closed = False

    def start(self, frame: bytes, wait: float = READY_WAIT_S) -> int | None:
        """Start a program (`request_frame`) in a waiting guard; its pid. None: the launcher is gone. 0: no guard
        was ready within ``wait`` seconds (the launcher does not answer: frozen, say); the program was not started."""
        import select

        deadline = time.monotonic() + wait
        while not self.ready:  # (only when programs start faster than it forks: it is forking one)
            left = deadline - time.monotonic()  # (waited for without a bound, a stopped launcher froze the loop)
            if left <= 0 or not select.select([self.rfd], [], [], left)[0]:
                return 0
            if self.read() is None:
                return None
        guard, stem = self.ready.pop(0)
        self._used.add(guard)
        try:
            self._write(("used", guard))
            write_all(stem, frame)  # the stem waits in a read for it: this never blocks for long
        except OSError:
            pass  # the guard or the launcher died: its exit (or the launcher's end) reports the program's
        finally:
            os.close(stem)
        return guard

    def _write(self, request: tuple | None) -> None:
        data = pickle.dumps(request, 5)
        write_all(self.wfd, HEADER.pack(len(data)) + data)

    def read(self) -> tuple | None:
        """One report (``ready``, ``ended`` or ``exit``; a program's end is kept in `exits`); None once it is gone.

        A guard reports its program's end itself (``ended``), then the launcher reaps it (``exit``, always
        later on the socket): the second is dropped. A guard killed outright is known by ``exit`` alone."""
        import socket

        try:
            data, fds, _, _ = socket.recv_fds(self._channel, 4096, 1)
        except OSError:
            return None
        if not data:
            for fd in fds:
                os.close(fd)
            return None
        reply = pickle.loads(data)
        kind, pid = reply[0], reply[1]
        if kind == "ready":
            if pid in self._gone or not fds:  # reaped before we read this: it can run nothing
                self._gone.discard(pid)
                for fd in fds:
                    os.close(fd)
            else:
                os.set_inheritable(fds[0], False)  # (received fds are inheritable: no program of ours gets it)
                self.ready.append((pid, fds[0]))
        elif kind == "ended":
            self.exits[pid] = reply[2]
            self._used.discard(pid)
            self._ended.add(pid)
        elif kind == "exit":
            if pid in self._ended:
                self._ended.discard(pid)
            elif pid in self._used:
                self._used.discard(pid)
                self.exits[pid] = reply[2]
            else:  # a guard that waited: it died unused (killed from outside)
                for i, (guard, stem) in enumerate(self.ready):
                    if guard == pid:
                        del self.ready[i]
                        os.close(stem)
                        break
                else:
                    self._gone.add(pid)
        return reply

    def assume_ended(self, pid: int, code: int) -> None:
        """A guard killed by the driver whose end the launcher does not report (it does not answer): as if it
        reported it itself (`read`'s ``ended``), so that a late report of its reaping is dropped."""
        if pid in self._used:
            self.exits[pid] = code
            self._used.discard(pid)
            self._ended.add(pid)

    def stop(self) -> None:
        """Ask it to leave (its programs were ended before), wait for it, close its pipes.

        It waits for its unused guards, which leave when their stems' pipes close: the stems of guards
        whose ``ready`` is still on the socket (not read yet, or sent as it stops) are taken and closed
        too, else it would wait for them until killed.
        """
        import subprocess

        self._take_waiting()
        try:
            self._write(None)
        except OSError:
            pass
        deadline = time.monotonic() + 5
        while True:
            try:
                self.proc.wait(timeout=0.02)
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:  # it does not answer
                    self.proc.kill()
                    self.proc.wait()
                    break
                self._take_waiting()
        self.close()

    def _take_waiting(self) -> None:
        """Read every report waiting on the socket, without blocking; close every waiting guard's stem."""
        self._channel.setblocking(False)
        try:
            while self.read() is not None:
                pass
        finally:
            self._channel.setblocking(True)
        self._close_ready()  # its waiting guards read EOF and leave

    def _close_ready(self) -> None:
        for _, stem in self.ready:
            try:
                os.close(stem)
            except OSError:
                pass
        self.ready.clear()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._close_ready()
        self._channel.close()
        try:
            os.close(self.wfd)
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
