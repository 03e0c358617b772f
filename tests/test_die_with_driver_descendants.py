"""A SIGKILLed driver takes its tasks' escaped descendants with it too: a child in its own session and a
double-forked daemon (both ignoring SIGTERM), of a function task and of an executable task, running or suspended."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid

import pytest

from steerflow.proctree import descendants, process_alive

from .conftest import cmdline, proc_state, processes_with, wait_until

# argv: marker, ready-file, "session" | "daemon"
ESCAPEE = textwrap.dedent("""
    import os, signal, sys, time
    if sys.argv[3] == "daemon":
        if os.fork(): os._exit(0)
        os.setsid()
        if os.fork(): os._exit(0)
    else:
        os.setsid()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    open(sys.argv[2], "w").close()
    time.sleep(600)
""")

SHAPES = ("fn-session", "fn-daemon", "exe-session", "exe-daemon")

# argv: ESCAPEE, marker, output directory, "running" | "suspend"
DRIVER = textwrap.dedent("""
    import os, subprocess, sys, time
    from steerflow import Allocation, Executable, Function, Runtime

    ESCAPEE, marker, out, mode = sys.argv[1:5]
    SHAPES = ("fn-session", "fn-daemon", "exe-session", "exe-daemon")

    def leave_escapees(marker, out):
        for shape in ("session", "daemon"):
            subprocess.Popen([sys.executable, "-c", ESCAPEE, marker, f"{out}/fn-{shape}", shape],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(600)

    rt = Runtime(Allocation.declare(nodes=1, cores=2), run_dir=out + "/run")
    tasks = [rt.submit(Function(leave_escapees, (marker, out)))]
    script = "".join(f"{sys.executable} -c '{ESCAPEE}' {marker} {out}/exe-{s} {s} &\\n" for s in ("session", "daemon"))
    tasks.append(rt.submit(Executable(["bash", "-c", script + "sleep 600\\n"])))
    if mode == "suspend":
        while not all(os.path.exists(f"{out}/{s}") for s in SHAPES):
            time.sleep(0.01)
        for task in tasks:
            rt.suspend(task.task_id)
        open(f"{out}/suspended", "w").close()
    time.sleep(600)
""")

# Stands for init, as a plain Linux init behaves (orphans live on below it until killed; it reaps them), so the
# test does not depend on what this machine's init does with orphans. It prints the driver's pid.
HARNESS = textwrap.dedent("""
    import ctypes, subprocess, sys
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans below come here, not to init
    driver = subprocess.Popen(sys.argv[1:])
    print(driver.pid, flush=True)
    sys.stdin.read()  # until the test is done
""")


def escaped(marker: str) -> list[int]:
    """The escapees alive: ``python -c ESCAPEE MARKER ...`` (not the driver or the shell, which carry it too)."""
    return processes_with(marker, argv_index=3)


@pytest.mark.parametrize("mode", ["running", "suspend"])
def test_a_sigkilled_driver_leaves_no_escaped_descendant(tmp_path, mode):
    marker = f"sf-orphan-{uuid.uuid4().hex}"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    harness = subprocess.Popen([sys.executable, "-c", HARNESS, sys.executable, "-c", DRIVER, ESCAPEE, marker,
                                str(tmp_path), mode], env=env, start_new_session=True, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    driver = int(harness.stdout.readline())
    started: set[int] = set()
    try:
        ready = "suspended" if mode == "suspend" else SHAPES[-1]
        assert wait_until(lambda: all((tmp_path / s).exists() for s in (*SHAPES, ready))
                          or not process_alive(driver), timeout=120)
        assert process_alive(driver), harness.stderr.read1().decode()
        # the four escapees run (each ignoring SIGTERM); a daemon's first forks may still be on their way out
        assert wait_until(lambda: len(escaped(marker)) == 4, timeout=30), escaped(marker)
        if mode == "suspend":  # stopped where they are
            assert wait_until(lambda: all(proc_state(p) == "T" for p in escaped(marker)), timeout=30)
        started.update(descendants(driver))  # workers, their guards, program wrappers, tasks, escapees
        os.kill(driver, signal.SIGKILL)  # the driver alone: what it started must follow by itself
        assert wait_until(lambda: not escaped(marker), timeout=30), \
            {p: (proc_state(p), cmdline(p)) for p in escaped(marker)}
        assert wait_until(lambda: not any(process_alive(p) for p in started), timeout=30), \
            {p: (proc_state(p), cmdline(p)) for p in started if process_alive(p)}
    finally:
        for pid in {*escaped(marker), *(p for p in started if process_alive(p))}:  # a failure leaves nothing
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(harness.pid, signal.SIGKILL)  # the driver too, if it still runs
        except ProcessLookupError:
            pass
        harness.wait()
        for stream in (harness.stdin, harness.stdout, harness.stderr):
            stream.close()
