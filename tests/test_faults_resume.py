"""A driver killed at the start of a campaign: what it leaves must neither lock the directory nor mislead a resume.

A SIGKILL lands between the journal file's creation and its first commit in ~1 of 15 kills within a
campaign's first 0.45 s (measured). Before: `steerflow resume` then said the journal "was made by an older
steerflow", and running the script again said the directory "already holds a campaign journal", so the
user had to find and delete the journal by hand.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import steerflow as sf
from steerflow.journal import SCHEMA

pytestmark = pytest.mark.usefixtures("no_leftover_processes")

ONE_CORE = sf.Allocation.declare(nodes=1, cores=1)


def _schema_only(directory: Path) -> None:
    """What a driver killed after its schema's commit and before its first rows leaves (the old code's window)."""
    directory.mkdir(mode=0o700)
    conn = sqlite3.connect(directory / "journal.db")
    conn.executescript("PRAGMA journal_mode=WAL;" + SCHEMA + "INSERT INTO meta VALUES ('schema', '2');")
    conn.close()


def _empty_file(directory: Path) -> None:
    """What a driver killed between creating the file and committing the schema leaves."""
    directory.mkdir(mode=0o700)
    (directory / "journal.db").touch()


@pytest.mark.parametrize("leave", [_schema_only, _empty_file])
def test_a_journal_that_records_nothing_does_not_lock_the_directory(tmp_path, leave):
    directory = tmp_path / "c"
    leave(directory)
    camp = sf.Campaign(directory, allocation=ONE_CORE, progress=False)  # the script run again: no CampaignLocked
    assert not camp.resumed
    camp.submit(sf.Function(abs, args=(-3,)))
    assert camp.run()["results_seen"] == 1
    conn = sqlite3.connect(directory / "journal.db")
    assert conn.execute("SELECT value FROM meta WHERE key = 'launch'").fetchone() is not None
    conn.close()


def test_a_journal_that_records_a_task_still_locks_the_directory(tmp_path):
    directory = tmp_path / "c"
    camp = sf.Campaign(directory, allocation=ONE_CORE, progress=False)
    camp.submit(sf.Function(abs, args=(-3,)))
    camp.run()
    with pytest.raises(sf.errors.CampaignLocked, match="already holds a campaign journal"):
        sf.Campaign(directory, allocation=ONE_CORE, progress=False)


@pytest.mark.parametrize("leave", [_schema_only, _empty_file])
def test_resume_of_a_journal_that_records_nothing_says_so(tmp_path, leave):
    directory = tmp_path / "c"
    leave(directory)
    done = subprocess.run([sys.executable, "-m", "steerflow.cli", "resume", str(directory)], capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert done.returncode == 2
    assert "records nothing" in done.stderr and "Run the campaign's script again" in done.stderr, done.stderr
    assert "older steerflow" not in done.stderr
    assert "Traceback" not in done.stderr


def test_a_new_campaign_commits_its_launch_record_with_its_schema(tmp_path):
    """Whatever moment a kill lands, a journal with a schema has the script `steerflow resume` runs."""
    directory = tmp_path / "c"
    camp = sf.Campaign(directory, allocation=ONE_CORE, progress=False)
    try:
        # read by another connection at once: nothing waits for the journal thread's first commit
        conn = sqlite3.connect(f"file:{directory / 'journal.db'}?mode=ro", uri=True)
        keys = {k for (k,) in conn.execute("SELECT key FROM meta")}
        conn.close()
        assert {"launch", "created", "schema"} <= keys
    finally:
        camp.close()


LONG_CAMPAIGN = '''
import sys, time
import steerflow as sf

def work(x):
    time.sleep(0.05)
    return x

camp = sf.Campaign(sys.argv[1], allocation=sf.Allocation.declare(nodes=1, cores=1), progress=False)

@camp.on_result()
def more(result, ctx):
    if result.value < 2000:
        ctx.submit(work, result.value + 1)

camp.submit(work, 0)
camp.run()
'''


def _results(directory: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{directory / 'journal.db'}?mode=ro", uri=True)
        try:
            return conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))


def test_a_resume_killed_alone_takes_its_driver_with_it(tmp_path):
    """`kill -9` of `steerflow resume`'s pid (not its process group) left the driver it started running, orphaned,
    holding the directory; now that driver stops cleanly (SIGTERM when its parent dies) and resumes again."""
    import time

    from steerflow.dirlock import holder
    from tests.conftest import wait_until

    script, directory = tmp_path / "long.py", tmp_path / "c"
    script.write_text(LONG_CAMPAIGN)
    first = subprocess.Popen([sys.executable, str(script), str(directory)], env=_env(), stderr=subprocess.PIPE)
    assert wait_until(lambda: _results(directory) > 0, timeout=60)
    first.terminate()  # stopped cleanly: a campaign to resume
    assert first.wait(timeout=60) != 0
    first.stderr.close()
    resume = subprocess.Popen([sys.executable, "-m", "steerflow.cli", "resume", str(directory)], env=_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: holder(directory) not in (None, resume.pid), timeout=60), "no driver started"
        driver = holder(directory)
        resume.kill()
        resume.wait()
        assert wait_until(lambda: holder(directory) is None, timeout=30), f"driver {driver} outlived its resume"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and os.path.exists(f"/proc/{driver}"):
            time.sleep(0.05)
        assert not os.path.exists(f"/proc/{driver}") or open(f"/proc/{driver}/stat").read().split()[2] == "Z"
    finally:
        if resume.poll() is None:
            resume.kill()
            resume.wait()
        leftover = holder(directory)
        if leftover not in (None, -1):
            os.kill(leftover, 9)
