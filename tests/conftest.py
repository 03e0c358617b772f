"""Shared fixtures: runtimes are always shut down, and the test fails if a process is left behind."""

from __future__ import annotations

import gc
import os
import shutil
import time
from collections.abc import Callable, Iterator

import pytest

from steerflow import Allocation, Runtime
from steerflow.proctree import descendants


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.01) -> bool:
    """Poll a condition with a bound (tests never sleep to 'wait for' something)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def read_until(fd: int, seen: list[bytes], text: bytes, timeout: float = 60) -> bool:
    """Read a pty (or pipe) into ``seen`` until ``text`` shows or ``timeout`` passes; whether it showed."""
    import select

    deadline = time.monotonic() + timeout
    while text not in b"".join(seen) and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                seen.append(os.read(fd, 65536))
            except OSError:  # the other side closed
                break
    return text in b"".join(seen)


TEST_PROCESSES = 2  # (CI's machine has 2 cores; most tests spend their time waiting on other processes)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config) -> None:
    """Run the suite in two test processes (pytest-xdist, a test dependency), a test file's tests in one of them
    in order, unless told otherwise (``-n 0`` runs it in this process, as ``--pdb`` does).

    The README's test command and CI's are the same bare ``python -m pytest``: this is where it becomes two
    processes. Without pytest-xdist installed (an older venv) the suite runs in one process, as before.
    """
    if (not config.pluginmanager.hasplugin("xdist") or hasattr(config, "workerinput")
            or os.environ.get("PYTEST_XDIST_WORKER") or config.getoption("usepdb", False)
            or config.getoption("collectonly", False) or getattr(config.option, "numprocesses", 0) is not None):
        return
    config.option.numprocesses = TEST_PROCESSES
    if config.option.dist == "no":
        config.option.dist = "loadfile"


def pytest_collection_finish(session) -> None:
    """Freeze what collection made (every module the tests import) out of the cyclic garbage collector's sight.

    The suite's one process ends up holding ~1M objects (numpy, Dask, scikit-learn, ...), and each full
    collection walks them all: CPython's own executor tests call `gc.collect` between iterations, which took
    17 s for one test in the full suite (under a second alone). What a test makes is not frozen, so tests that
    check an object is freed check the same as before.
    """
    gc.collect()
    gc.freeze()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """After a test module's last test (its module fixtures gone), collect its garbage and freeze what lives on."""
    yield
    if nextitem is None or getattr(nextitem, "module", None) is not getattr(item, "module", None):
        gc.collect()
        gc.freeze()


@pytest.fixture
def make_runtime(tmp_path) -> Iterator[Callable[..., Runtime]]:
    created: list[Runtime] = []

    def make(**kwargs) -> Runtime:
        kwargs.setdefault("run_dir", tmp_path / f"run{len(created)}")
        rt = Runtime(**kwargs)
        created.append(rt)
        return rt

    before = set(descendants(os.getpid()))
    yield make
    for rt in created:
        rt.shutdown(kill=True)
    # shutdown leaves no process behind
    assert wait_until(lambda: not (set(descendants(os.getpid())) - before), timeout=5), \
        f"processes left behind: {set(descendants(os.getpid())) - before}"


@pytest.fixture
def no_leftover_processes() -> Iterator[None]:
    """The test fails if a process it started (a worker, a program, a driver) outlives it.

    Use it for tests that build campaigns, YAML pipelines or CLI drivers (``pytestmark``); it
    kills what it finds, so one leak fails one test, not every test after it.
    """
    before = set(descendants(os.getpid()))
    yield
    # (multiprocessing's resource tracker is one per interpreter and lives as long as pytest: not a leak)
    left = lambda: {p for p in set(descendants(os.getpid())) - before  # noqa: E731
                    if "multiprocessing.resource_tracker" not in cmdline(p)}
    if not wait_until(lambda: not left(), timeout=10):
        found = {p: cmdline(p) for p in left()}
        for p in found:
            try:
                os.kill(p, 9)
            except ProcessLookupError:
                pass
        pytest.fail(f"processes left behind: {found}")


def proc_state(pid: int) -> str:
    """The one-letter state of a process in /proc (R, S, T, Z, ...), or "gone"."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0].decode()
    except OSError:
        return "gone"


def processes_with(marker: str, argv_index: int | None = None) -> list[int]:
    """Live (not zombie) processes whose command line carries ``marker`` (as argument ``argv_index``, if given)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                    raw = f.read()
            except OSError:
                continue
            if argv_index is None:
                hit = marker.encode() in raw
            else:
                argv = raw.split(b"\0")
                hit = len(argv) > argv_index and argv[argv_index] == marker.encode()
            if hit and proc_state(int(entry.name)) not in ("Z", "gone"):
                found.append(int(entry.name))
    return found


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")[:200]
    except OSError:
        return "(gone)"


@pytest.fixture
def runtime(make_runtime) -> Runtime:
    return make_runtime(allocation=Allocation.declare(nodes=1, cores=2))


needs_mpirun = pytest.mark.skipif(shutil.which("mpirun") is None, reason="mpirun (openmpi-bin) is not installed")
