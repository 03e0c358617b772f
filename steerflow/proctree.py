"""Signals to whole process trees (a task and everything it started), without extra deps.

A task's processes are found twice over: by its process group (each launch starts a new
session) and by walking parent links in /proc, which also catches children that left the
group with setsid.

Nothing a task starts outlives it. The warm worker and the executable wrapper (this file run
as a script: ``python -I -S proctree.py --parent PID [--cpus 0,1] -- program args``) are child
subreapers (``PR_SET_CHILD_SUBREAPER``): a process a task started that is orphaned, a
double-forked daemon or a child in its own session, is re-parented to them instead of to
init, so it stays in the tree below them. When the task ends (returns, fails, exits), they
kill everything left below them and reap it; a cancel, a timeout or the campaign's shutdown
kill the whole tree from the driver. If the driver dies, even by SIGKILL, a guard (`guard`: the
wrapper itself, or a fork of the worker made at its start) kills everything below it: the kernel
tells it with a signal it handles (PR_SET_PDEATHSIG), where a worker killed outright by that
signal would hand what it adopted to init. A task therefore cannot leave a detached service behind:
start long-lived services from the campaign script itself (outside tasks) and stop them there.
Only stdlib imports: the wrapper runs with ``-I -S`` and must start fast.
"""

from __future__ import annotations

import os
import signal
TYPE_CHECKING = False  # (not typing's: the wrapper runs with -I -S, and typing costs it 8 ms)
if TYPE_CHECKING:
    from collections.abc import Callable


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # the command name may hold spaces or ')' : parse after the last ')'
        fields = stat[stat.rfind(b")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def _direct_children(pid: int) -> list[int] | None:
    """Children of ``pid`` from /proc/PID/task/*/children (fast); None where the kernel lacks it."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    out: list[int] = []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                out.extend(int(c) for c in f.read().split())
        except FileNotFoundError:
            if not os.path.exists(f"/proc/{pid}/task/{tid}"):
                continue  # the thread ended meanwhile
            return None
        except OSError:
            continue
    return out


_HAS_CHILDREN_FILE = os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (live or not yet reaped)."""
    found = _direct_children(pid) if _HAS_CHILDREN_FILE else None
    return found if found is not None else _children_map().get(pid, [])


def descendants(pid: int) -> list[int]:
    """All processes below ``pid`` (not ``pid`` itself), parents before children."""
    out: list[int] = []
    first = _direct_children(pid) if _HAS_CHILDREN_FILE else None
    if first is None:  # no CONFIG_PROC_CHILDREN: walk every process's parent link instead
        tree = _children_map()
        stack = list(tree.get(pid, ()))
        while stack:
            p = stack.pop()
            out.append(p)
            stack.extend(tree.get(p, ()))
        return out
    stack = first
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(_direct_children(p) or ())
    return out


def signal_tree(pid: int, sig: int = signal.SIGKILL, group: bool = True) -> None:
    """Send ``sig`` to ``pid``, its process group and every descendant; gone processes are ignored."""
    targets = [pid, *descendants(pid)]
    if sig == signal.SIGKILL:
        # freeze first so nothing forks between the walk and the kill
        for p in targets:
            _send(p, signal.SIGSTOP)
        targets = [pid, *descendants(pid)]
    if group:
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    for p in targets:
        _send(p, sig)
        if sig == signal.SIGKILL:
            _send(p, signal.SIGCONT)


def stop_below(pid: int) -> None:
    """SIGSTOP every process below ``pid``, but not ``pid``: a guard (see `guard`) stays awake while its work is
    suspended, so that it can still kill it all if the driver dies meanwhile. Walks again until nothing new shows
    up (a process that forked between the walk and the signal), so none is left running."""
    stopped: set[int] = set()
    while True:
        found = [p for p in descendants(pid) if p not in stopped]
        if not found:
            return
        for p in found:
            _send(p, signal.SIGSTOP)
        stopped.update(found)


def _send(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# ---- child subreapers: the worker and the executable wrapper ------------------------------------------

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> bool:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except Exception:  # noqa: BLE001 - not Linux: best effort
        return False


def die_with_parent(sig: int = signal.SIGKILL) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies (PR_SET_PDEATHSIG)."""
    return _prctl(PR_SET_PDEATHSIG, sig)


def become_subreaper() -> bool:
    """Make orphaned descendants of this process its children (not init's), so none escapes the tree."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


def has_children() -> bool:
    """Whether this process has any child, live or zombie (one syscall; the common answer is no)."""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def kill_descendants() -> int:
    """SIGKILL every process below this one (frozen first, so none forks meanwhile) and reap them all.

    Returns how many were killed. Only for a process whose children are all its task's (the
    worker between tasks, the wrapper after its program): it reaps every child.
    """
    me = os.getpid()
    found = descendants(me)
    for p in found:
        _send(p, signal.SIGSTOP)
    found = descendants(me)
    for p in found:
        _send(p, signal.SIGKILL)
        _send(p, signal.SIGCONT)
    while True:  # every one of them ends as our child (we are their subreaper): wait for all
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
    return len(found)


#: what the kernel sends a guard when the driver dies (PR_SET_PDEATHSIG): a signal it handles, not SIGKILL, so that
#: it kills what is below it before it goes; nothing else sends it (the engine's tree-wide signals are swallowed)
DEATH_SIGNAL = getattr(signal, "SIGRTMIN", 34) + 2
#: signals the engine sends a whole tree (preempt, terminal): the task's processes get their own copy; a guard waits
SWALLOWED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)


def _on_driver_death(signum: int, frame: object) -> None:
    kill_descendants()  # everything below, frozen first: the worker or program, its children, what we adopted
    os._exit(137)


def _ignore(signum: int, frame: object) -> None:
    pass


def guard(parent: int | None, forward: tuple[int, ...] = (), close: tuple[int, ...] = (),
          orphaned_status: int = 137, on_end: Callable[[int], object] | None = None) -> None:
    """Fork. The child returns and does the work; this process stays as its guard and never returns.

    The guard is a child subreaper above the work, so whatever the work starts (a child in its own
    session, a double-forked daemon) stays below it. When the work ends, it kills and reaps what is
    left and exits as the work did (same status, or the same signal). When the driver (``parent``)
    dies, SIGKILL included, the kernel sends it `DEATH_SIGNAL`, and it kills everything below
    before it goes: a worker or program killed by its own parent-death signal would leave what it
    adopted to init. Signals in ``forward`` are passed on to the work; the other `SWALLOWED` ones
    are ignored (the work gets its own copy). ``close``: fds the guard must not hold (the work's
    pipes to the driver, so the driver sees them close when the work dies). ``on_end``: called in the
    guard with the work's code (as ``Popen.returncode``) once what it left is gone, before the guard
    exits (the program launcher reports the end from there, one process hop sooner).
    """
    signal.signal(DEATH_SIGNAL, _on_driver_death)  # before asking for it: it must never kill us unhandled
    _prctl(PR_SET_PDEATHSIG, DEATH_SIGNAL)
    if parent is not None and os.getppid() != parent:
        os._exit(orphaned_status)  # the driver died before we could ask to be told: nothing started yet
    become_subreaper()
    for sig in (*SWALLOWED, *forward):  # from now on: a signal meant for the work waits for the fork to be done
        signal.signal(sig, _ignore)
    me = os.getpid()
    pid = os.fork()
    if pid == 0:
        for sig in (*SWALLOWED, *forward, DEATH_SIGNAL):
            signal.signal(sig, signal.SIG_DFL)
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # the work dies with its guard, whatever kills the guard
        if os.getppid() != me:
            os._exit(137)
        return
    for sig in forward:
        signal.signal(sig, lambda signum, frame: _send(pid, signum))
    for fd in close:
        try:
            os.close(fd)
        except OSError:
            pass
    status = 0
    while True:
        try:
            done, code = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        if done == pid:
            status = code
            break
    if has_children():  # (the common case is none: one syscall, not a walk of /proc)
        kill_descendants()
    if on_end is not None:
        try:
            on_end(os.waitstatus_to_exitcode(status))
        except Exception:  # noqa: BLE001 - whoever listens is gone: the guard's own exit still tells its parent
            pass
    if os.WIFSIGNALED(status):  # die of the same signal, so the engine sees what the work saw
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):  # those two cannot be handled, so need no reset
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)


def _wrap(argv: list[str]) -> None:
    """Run a program below a guard (see `guard`): bound to its CPUs, killed with what it leaves behind."""
    parent, cpus = None, None
    while argv and argv[0] != "--":
        option, value, argv = argv[0], argv[1], argv[2:]
        if option == "--parent":
            parent = int(value)
        elif option == "--cpus":
            cpus = [int(c) for c in value.split(",")]
    argv = argv[1:]
    guard(parent)
    try:
        for sig in (signal.SIGPIPE, signal.SIGXFSZ):  # (Python ignores these; a program expects the default)
            signal.signal(sig, signal.SIG_DFL)
        if cpus:
            os.sched_setaffinity(0, cpus)
        os.execvp(argv[0], argv)
    except BaseException as exc:  # noqa: BLE001
        os.write(2, f"steerflow: cannot run {argv[0] if argv else '(nothing)'}: {exc}\n".encode(errors="replace"))
    os._exit(127)


def run_program(argv: list[str], env: dict[str, str], cwd: str | None, out: str, err: str) -> int:
    """Run a plain program as a child of this process and wait for it: how a warm worker runs an executable task.

    The short path the pool takes for its programs (`subprocess` in the worker), with the guarantees a
    program has in its own guard: the worker is its CPUs' (it bound itself to them), a child subreaper
    below a guard, and kills what the program left when the task ends; a cancel or timeout kills the
    worker's whole tree. stdout and stderr go to the task's files (0600), stdin is /dev/null, the program
    leads its own process group, and it gets ``env`` whole (not the worker's). A preempt (`Preempted`, raised here by the worker's
    signal handler) sends the program's tree SIGTERM, as for a program in its own guard, and its exit
    is reported as usual. A program that cannot start: 127 and a line in its stderr file, as the guard's.
    Returns the code as ``Popen.returncode`` (negative: killed by that signal).
    """
    import subprocess

    fds = []
    try:
        for path in (out, err):
            fds.append(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600))
        try:
            proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=fds[0], stderr=fds[1],
                                    process_group=0)  # (its own group in the worker's session: a new session
            # would also make a new scheduler autogroup per program, 0.3-0.7 ms more on average to its start)
        except OSError as exc:
            what = "could not set up" if cwd is not None and getattr(exc, "filename", None) == cwd else "cannot run"
            os.write(fds[1], f"steerflow: {what} {argv[0] if argv else '(nothing)'}: {exc}\n".encode(errors="replace"))
            return 127
    finally:
        for fd in fds:
            os.close(fd)
    try:
        return proc.wait()
    except BaseException:  # noqa: BLE001 - a preempt (or any signal that raised): stop the program as its guard would
        signal_tree(proc.pid, signal.SIGTERM)
        while True:
            try:
                return proc.wait()
            except BaseException:  # noqa: BLE001 - a second preempt while it stops: keep waiting for it
                continue


def process_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (a reaped or exited pid reads as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except OSError:  # gone, possibly between open and read
        return False


if __name__ == "__main__":
    import sys

    _wrap(sys.argv[1:])
