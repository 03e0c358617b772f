"""Signals to whole process trees (a task and everything it started), without extra deps.

A task's processes are found twice over: by its process group (each launch starts a new
session) and by walking parent links in /proc, which also catches children that left the
group with setsid.
"""

from __future__ import annotations

import os
import signal


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


def _send(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
