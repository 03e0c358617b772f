"""A full disk stops the run loudly, losing nothing: the journal's real cause is reported, run() raises, the
CLI exits non-zero, and a resume after space is freed completes. On a real 3 MB tmpfs (root only)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from steerflow import Allocation, Campaign, JournalError

from .small_disk import tmpfs

sys.path.insert(0, str(Path(__file__).parent / "campaigns"))
from fill_campaign import blob  # noqa: E402

SCRIPT = Path(__file__).parent / "campaigns" / "fill_campaign.py"
DISK_FULL = r"No space left on device \(ENOSPC\)|database or disk is full \(SQLITE_FULL\)"


@pytest.fixture
def small_disk(tmp_path):
    with tmpfs(tmp_path / "disk", "3m") as mount_point:
        yield mount_point


def grow(mount_point: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=64m", str(mount_point)], check=True, timeout=30)


def committed(directory: Path) -> int:
    conn = sqlite3.connect(f"file:{directory / 'journal.db'}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT COUNT(*) FROM results WHERE ok = 1").fetchone()[0]
    finally:
        conn.close()


def fill(directory: Path, resume: bool = False) -> dict:
    camp = Campaign(directory, allocation=Allocation.declare(nodes=1, cores=2), progress=False, resume=resume)
    futures = [camp.submit(blob, i) for i in range(40)]
    summary = camp.run()
    assert all(f.result() == blob(i) for i, f in enumerate(futures))
    return summary


def test_a_full_disk_stops_the_campaign_with_its_real_cause_and_resume_completes(small_disk, capfd):
    directory = small_disk / "c"
    with pytest.raises(JournalError, match=DISK_FULL) as info:
        fill(directory)
    assert info.value.__cause__ is not None
    err = capfd.readouterr().err
    assert "could not be written" in err and "no transaction is active" not in err
    before = committed(directory)
    assert before < 40
    grow(small_disk)
    summary = fill(directory, resume=True)
    assert committed(directory) == 40
    assert summary["states"].get("done") == 40


def test_steerflow_run_exits_non_zero_on_a_full_disk(small_disk):
    directory = small_disk / "c"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, "-m", "steerflow.cli", "run", str(SCRIPT), str(directory)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode != 0, proc.stdout
    assert "done: 40" not in proc.stdout
    assert "journal" in proc.stderr and ("ENOSPC" in proc.stderr or "SQLITE_FULL" in proc.stderr), proc.stderr
    grow(small_disk)
    proc = subprocess.run([sys.executable, "-m", "steerflow.cli", "resume", str(directory)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert committed(directory) == 40
