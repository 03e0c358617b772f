"""Ctrl-C at the very start of the `steerflow` command: a clean message and exit 130, never Python's traceback.

The command spends its first tens of milliseconds (half a second on a loaded machine) importing itself.
A Ctrl-C there used to print Python's KeyboardInterrupt traceback. The tests make the interrupt land at
exactly such a moment (a `sitecustomize` that sends SIGINT to the process while a chosen module imports),
run the real console script, and then check that the campaign can still be started or resumed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from steerflow.journal_files import holds_nothing

pytestmark = pytest.mark.usefixtures("no_leftover_processes")

STEERFLOW = Path(sys.executable).with_name("steerflow")  # the console script pip made: what users run
SCRIPT = textwrap.dedent("""
    import sys, time
    import steerflow as sf

    def nap(i):
        time.sleep(0.05)
        return i

    camp = sf.Campaign(sys.argv[1], allocation=sf.Allocation.declare(nodes=1, cores=2), progress=False)
    for i in range(6):
        camp.submit(nap, i)
    print("results", camp.run()["results_seen"])
""")

# Sends SIGINT to this process (as Ctrl-C in a terminal would) when MODULE is first imported, from inside
# that import: the KeyboardInterrupt is raised while the command is still importing itself.
HOOK = textwrap.dedent("""
    import os, signal, sys
    _target = os.environ.get("SF_TEST_SIGINT_AT")
    if os.environ.get("SF_TEST_ONLY_CHILD") and "STEERFLOW_RESUME_PARENT" not in os.environ:
        _target = None  # (only in the driver `steerflow resume` starts)
    _mark = os.environ.get("SF_TEST_MARK")  # a file made when the CLI starts importing (its entry point runs)

    class _Interrupt:
        def find_spec(self, name, path=None, target=None):
            if name == "steerflow.cli" and _mark:
                open(_mark, "w").close()
            if name == _target:
                os.kill(os.getpid(), signal.SIGINT)
            return None

    if _target or _mark:
        sys.meta_path.insert(0, _Interrupt())
""")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    hooks = tmp_path / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "sitecustomize.py").write_text(HOOK)
    return dict(os.environ, PYTHONPATH=str(hooks), **extra)


def _run(tmp_path: Path, *args: str, interrupt_at: str | None = None) -> subprocess.CompletedProcess:
    env = _env(tmp_path, **({"SF_TEST_SIGINT_AT": interrupt_at} if interrupt_at else {}))
    return subprocess.run([str(STEERFLOW), *args], env=env, capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)


@pytest.mark.skipif(not STEERFLOW.exists(), reason="needs the installed `steerflow` console script")
@pytest.mark.parametrize("module", ["steerflow.journal", "steerflow.rundirs", "argparse", "steerflow.cli"])
def test_ctrl_c_while_the_command_imports_itself_is_a_clean_stop(tmp_path, module):
    script = tmp_path / "camp.py"
    script.write_text(SCRIPT)
    out = _run(tmp_path, "run", str(script), str(tmp_path / "run"), interrupt_at=module)
    assert out.returncode == 130, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr and "KeyboardInterrupt" not in out.stderr, out.stderr
    assert "steerflow run: interrupted" in out.stderr and "nothing ran" in out.stderr, out.stderr
    # nothing was started: the same command runs the campaign afresh
    again = _run(tmp_path, "run", str(script), str(tmp_path / "run"))
    assert again.returncode == 0 and "results 6" in again.stdout, again.stderr


@pytest.mark.skipif(not STEERFLOW.exists(), reason="needs the installed `steerflow` console script")
def test_ctrl_c_at_the_start_of_resume_is_clean_and_the_campaign_stays_resumable(tmp_path):
    script = tmp_path / "camp.py"
    script.write_text(SCRIPT)
    first = _run(tmp_path, "run", str(script), str(tmp_path / "run"))
    assert first.returncode == 0, first.stderr
    out = _run(tmp_path, "resume", str(tmp_path / "run"), interrupt_at="steerflow.rundirs")
    assert out.returncode == 130 and "Traceback" not in out.stderr, out.stderr
    again = _run(tmp_path, "resume", str(tmp_path / "run"))
    assert again.returncode == 0 and "results 6" in again.stdout, again.stderr


@pytest.mark.skipif(not STEERFLOW.exists(), reason="needs the installed `steerflow` console script")
def test_ctrl_c_while_the_driver_that_resume_starts_imports_itself_is_clean(tmp_path):
    """`steerflow resume` runs the script in a new Python (`python -m steerflow run ...`); that one imports too."""
    script = tmp_path / "camp.py"
    script.write_text(SCRIPT)
    assert _run(tmp_path, "run", str(script), str(tmp_path / "run")).returncode == 0
    env = _env(tmp_path, SF_TEST_SIGINT_AT="steerflow.journal", SF_TEST_ONLY_CHILD="1")
    out = subprocess.run([str(STEERFLOW), "resume", str(tmp_path / "run")], env=env, capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode == 130 and "Traceback" not in out.stderr, (out.returncode, out.stderr)
    assert "steerflow run: interrupted as it started; nothing ran" in out.stderr, out.stderr
    again = _run(tmp_path, "resume", str(tmp_path / "run"))
    assert again.returncode == 0 and "results 6" in again.stdout, again.stderr


@pytest.mark.slow
@pytest.mark.skipif(not STEERFLOW.exists(), reason="needs the installed `steerflow` console script")
def test_ctrl_c_at_random_moments_of_the_first_second_never_shows_a_traceback(tmp_path):
    """SIGINT to the whole group (a terminal's Ctrl-C) 0-0.8 s into `steerflow run`, then resume to the end.

    The clock starts when the entry point begins to import the CLI. Before that, Python is still starting (its
    `site` module, and an editable install's path finder looking up `steerflow` and its entry point: ~5-25 ms
    idle), and a Ctrl-C there is Python's own error at start-up, before any code of the command runs (see
    steerflow/__main__.py)."""
    import random

    from .conftest import wait_until

    script = tmp_path / "camp.py"
    script.write_text(SCRIPT.replace("range(6)", "range(40)"))
    rng = random.Random(13)
    for i in range(8):
        directory = tmp_path / f"run{i}"
        mark = tmp_path / f"started{i}"
        proc = subprocess.Popen([str(STEERFLOW), "run", str(script), str(directory)], cwd=tmp_path,
                                env=_env(tmp_path, SF_TEST_MARK=str(mark)), start_new_session=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert wait_until(mark.exists, timeout=60)
        time.sleep(rng.uniform(0.0, 0.8))
        try:
            os.killpg(proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        _, err = proc.communicate(timeout=120)
        assert proc.returncode in (0, 130) and "Traceback" not in err, (proc.returncode, err)
        # started or not, the directory can be run to its end: resume it, or (nothing journaled) run it anew
        journal = directory / "journal.db"
        if journal.exists() and not holds_nothing(journal):
            end = subprocess.run([str(STEERFLOW), "resume", str(directory)], capture_output=True, text=True,
                                 timeout=120, cwd=tmp_path)
        else:
            end = subprocess.run([str(STEERFLOW), "run", str(script), str(directory)], capture_output=True,
                                 text=True, timeout=120, cwd=tmp_path)
        assert end.returncode == 0 and "results 40" in end.stdout, (proc.returncode, err, end.stderr)


def test_ctrl_c_just_after_the_journal_is_created_stays_a_ctrl_c(tmp_path, monkeypatch):
    """The KeyboardInterrupt landed just after the schema's COMMIT: the ROLLBACK that followed failed ("no
    transaction is active") and its error replaced the Ctrl-C, so `steerflow run` said the directory "cannot
    hold a campaign ... Give a directory you can write to" and exited 1 (found at random moments, 2 of 40)."""
    import sqlite3

    import steerflow as sf
    from steerflow import journal

    class InterruptAfterCommit(sqlite3.Connection):
        def execute(self, sql, *args):
            cursor = super().execute(sql, *args)
            if sql == "COMMIT":
                raise KeyboardInterrupt
            return cursor

    real = journal.connect

    def connect(path, readonly=False):
        if readonly:
            return real(path, readonly)
        conn = sqlite3.connect(path, timeout=10, check_same_thread=False, isolation_level=None,
                               factory=InterruptAfterCommit)
        conn.execute("PRAGMA journal_mode=WAL")
        return conn

    monkeypatch.setattr(journal, "connect", connect)
    with pytest.raises(KeyboardInterrupt):
        sf.Campaign(tmp_path / "c", allocation=sf.Allocation.declare(nodes=1, cores=1), progress=False)
    monkeypatch.setattr(journal, "connect", real)
    # what was committed is the campaign's launch record: it resumes (as `steerflow resume` would)
    camp = sf.Campaign(tmp_path / "c", allocation=sf.Allocation.declare(nodes=1, cores=1), progress=False,
                       resume=True)
    future = camp.submit(abs, -4)
    camp.run()
    assert future.result() == 4
