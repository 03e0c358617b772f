"""CPython's own executor tests, run against `Runtime`: the standard library's expectations, not ours.

`Lib/test/test_concurrent_futures.py` of CPython 3.11 (Debian's ``libpython3.11-testsuite``, which
`scripts/bootstrap.sh demo` unpacks into ``.venv/cpython-tests/``; not copied into this repository) has
mixins that any executor can take: `ExecutorTest` (submit, map, map's timeout and exceptions, stale
references), `WaitTests`, `AsCompletedTests` and `ExecutorShutdownTest`. Each runs here with a
`Runtime` of 4 cores as its executor. Left out, with the reason: tests that start a new interpreter
importing ``concurrent.futures.<executor name>`` (covered for `Runtime` by `test_executor_exit.py`),
`max_workers` checks (a `Runtime` takes an allocation, not a worker count), and the process pool's own
internals (`ExecutorDeadlockTest` reads ``executor._processes``; `test_faults_*` cover the same faults).
Skipped where the file is not there (another Python, or no Debian archive to unpack it from).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import unittest
from pathlib import Path

import pytest

import steerflow as sf

NAME = "cpython_test_concurrent_futures"


def _find() -> Path | None:
    for folder in (os.environ.get("STEERFLOW_CPYTHON_TESTS"), Path(sys.prefix) / "cpython-tests"):
        if folder and (Path(folder) / f"{NAME}.py").exists():
            return Path(folder)
    return None


FOLDER = _find()
if FOLDER is None or sys.version_info[:2] != (3, 11):
    pytest.skip("CPython 3.11's test_concurrent_futures is not unpacked in .venv/cpython-tests "
                "(`bash scripts/bootstrap.sh demo` does it on Debian)", allow_module_level=True)
try:
    from test import support  # noqa: F401  (the file needs the running interpreter's test.support)
except ImportError:
    pytest.skip("this Python has no test.support package", allow_module_level=True)

sys.path.insert(0, str(FOLDER))
_spec = importlib.util.spec_from_file_location(NAME, FOLDER / f"{NAME}.py")
cf = importlib.util.module_from_spec(_spec)
sys.modules[NAME] = cf
_spec.loader.exec_module(cf)


def _runtime(max_workers: int = 4, **_: object) -> sf.Runtime:
    return sf.Runtime(sf.Allocation.declare(nodes=1, cores=max_workers),
                      run_dir=tempfile.mkdtemp(prefix="steerflow-cpython-"))


class RuntimeMixin(cf.ExecutorMixin):
    worker_count = 4
    executor_type = staticmethod(_runtime)

    def setUp(self) -> None:
        # the tasks' functions live in that module: the workers import it by name, as the driver does
        self._pythonpath = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(FOLDER), self._pythonpath]))
        super().setUp()

    def tearDown(self) -> None:
        self.executor.shutdown(wait=True)
        self.executor = None
        if self._pythonpath is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = self._pythonpath
        # (not the stdlib's BaseTestCase.tearDown: its reap_children() would wait for any child of this
        # pytest process, other tests' servers included)
        unittest.TestCase.tearDown(self)


class TestRuntimeAsStdlibExecutor(RuntimeMixin, cf.ExecutorTest, cf.BaseTestCase):
    test_max_workers_negative = None  # (a worker count: not how a Runtime is sized)


class TestRuntimeAsStdlibWait(RuntimeMixin, cf.WaitTests, cf.BaseTestCase):
    pass


class TestRuntimeAsStdlibAsCompleted(RuntimeMixin, cf.AsCompletedTests, cf.BaseTestCase):
    pass


class TestRuntimeAsStdlibShutdown(RuntimeMixin, cf.ExecutorShutdownTest, cf.BaseTestCase):
    # (each starts `python -c "from concurrent.futures import <executor name>"`: test_executor_exit.py
    # runs the same three scripts with a Runtime)
    test_interpreter_shutdown = None
    test_submit_after_interpreter_shutdown = None
    test_hang_gh83386 = None
