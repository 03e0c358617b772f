"""Nothing a task starts outlives it: children in their own session and double-forked daemons (ignoring
SIGTERM) are killed when the task returns, exits, is cancelled, times out, or the runtime shuts down."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
import uuid

import pytest

from steerflow import Allocation, Executable, Function, TaskFailed, TaskTimeout, WorkerLost

from .conftest import processes_with, wait_until

STUBBORN = "import signal, sys, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(600)\n"
DAEMON = ("import os, signal, sys, time\n"
          "if os.fork(): os._exit(0)\n"
          "os.setsid()\n"
          "if os.fork(): os._exit(0)\n"
          "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
          "open(sys.argv[2], 'w').close()\n"
          "time.sleep(600)\n")


@pytest.fixture
def marker():
    tag = f"sf-escape-{uuid.uuid4().hex}"
    yield tag
    for pid in processes_with(tag):  # a failing test leaves nothing behind either
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def own_session_child(marker: str) -> str:
    subprocess.Popen([sys.executable, "-c", STUBBORN, marker], start_new_session=True,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return "returned"


def daemon(marker: str, ready: str, then_sleep: float = 0.0) -> str:
    subprocess.run([sys.executable, "-c", DAEMON, marker, ready], check=True)  # the first fork exits at once
    deadline = time.monotonic() + 30
    while not os.path.exists(ready) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(then_sleep)
    return "returned"


def test_a_child_in_its_own_session_dies_when_its_function_returns(runtime, marker):
    assert runtime.submit(Function(own_session_child, (marker,))).result(timeout=60) == "returned"
    assert wait_until(lambda: not processes_with(marker), timeout=10), processes_with(marker)


def test_a_daemon_dies_when_its_function_returns(runtime, marker, tmp_path):
    assert runtime.submit(Function(daemon, (marker, str(tmp_path / "ready")))).result(timeout=60) == "returned"
    assert wait_until(lambda: not processes_with(marker), timeout=10), processes_with(marker)
    assert runtime.submit(Function(os.getpid)).result(timeout=60) > 0  # the worker still serves tasks


def test_a_daemon_dies_when_its_function_is_cancelled(runtime, marker, tmp_path):
    ready = tmp_path / "ready"
    f = runtime.submit(Function(daemon, (marker, str(ready), 600)))
    assert wait_until(ready.exists, timeout=60)
    assert processes_with(marker)
    f.cancel()
    assert wait_until(lambda: not processes_with(marker), timeout=10), processes_with(marker)


def test_a_daemon_dies_when_its_function_times_out(runtime, marker, tmp_path):
    ready = tmp_path / "ready"
    f = runtime.submit(Function(daemon, (marker, str(ready), 600), timeout=3))
    with pytest.raises(TaskTimeout):
        f.result(timeout=60)
    assert wait_until(lambda: not processes_with(marker), timeout=10), processes_with(marker)


def _script(tmp_path, marker: str, body: str) -> Executable:
    path = tmp_path / "task.sh"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return Executable([str(path), marker, str(tmp_path / "ready")])


def test_an_executables_daemon_and_own_session_child_die_when_it_exits(runtime, marker, tmp_path):
    spec = _script(tmp_path, marker, f"setsid {sys.executable} -c {shlex.quote(STUBBORN)} \"$1\" &\n"
                                     f"{sys.executable} -c {shlex.quote(DAEMON)} \"$1\" \"$2\"\n"
                                     "while [ ! -e \"$2\" ]; do sleep 0.01; done\nexit 0\n")
    assert runtime.submit(spec).result(timeout=60).returncode == 0
    assert wait_until(lambda: not processes_with(marker), timeout=10), processes_with(marker)


def test_an_executables_daemon_dies_when_it_is_cancelled(runtime, marker, tmp_path):
    spec = _script(tmp_path, marker, f"{sys.executable} -c {shlex.quote(DAEMON)} \"$1\" \"$2\"\nsleep 600\n")
    f = runtime.submit(spec)
    assert wait_until((tmp_path / "ready").exists, timeout=60)
    f.cancel()
    assert wait_until(lambda: not processes_with(marker), timeout=10), processes_with(marker)


def test_an_executables_exit_status_and_signal_are_kept(runtime, tmp_path):
    assert runtime.submit(Executable(["sh", "-c", "exit 3"])).exception(timeout=60) is not None
    f = runtime.submit(Executable(["sh", "-c", "kill -SEGV $$"]))
    with pytest.raises(TaskFailed, match="SIGSEGV"):
        f.result(timeout=60)


def _kill_myself() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_sigkill_is_reported_as_such_for_executables_and_functions(runtime, tmp_path):
    """The guard dies of the signal its work died of: SIGKILL too, which it cannot reset (it used to crash)."""
    f = runtime.submit(Executable(["sh", "-c", "kill -KILL $$"]))
    with pytest.raises(TaskFailed, match="SIGKILL"):
        f.result(timeout=60)
    g = runtime.submit(Function(_kill_myself))
    with pytest.raises(WorkerLost, match="SIGKILL"):
        g.result(timeout=60)


@pytest.mark.parametrize("kind", ["function", "executable"])
def test_daemons_die_when_the_runtime_shuts_down(make_runtime, marker, tmp_path, kind):
    rt = make_runtime(allocation=Allocation.declare(nodes=1, cores=1))
    ready = tmp_path / "ready"
    if kind == "function":
        rt.submit(Function(daemon, (marker, str(ready), 600)))
    else:
        rt.submit(_script(tmp_path, marker, f"{sys.executable} -c {shlex.quote(DAEMON)} \"$1\" \"$2\"\nsleep 600\n"))
    assert wait_until(ready.exists, timeout=60)
    rt.shutdown(wait=True, kill=True)
    assert wait_until(lambda: not processes_with(marker), timeout=10), processes_with(marker)
