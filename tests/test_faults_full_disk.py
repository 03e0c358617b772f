"""Output written on a full disk: `steerflow report` (its HTML, CSV and plots) and `steerflow bench --json` say
so in one sentence, with exit 1, instead of an OSError traceback after the work (the benchmark's table is
printed first). The report test mounts a small tmpfs and fills it (root only; skipped elsewhere)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import steerflow as sf

from .small_disk import tmpfs

ONE_CORE = sf.Allocation.declare(nodes=1, cores=1)


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "steerflow.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))


@pytest.fixture
def full_disk(tmp_path):
    with tmpfs(tmp_path / "disk", "256k") as disk:
        with open(disk / "fill", "wb") as f:  # all but a few blocks: the report's folder can be made
            try:
                f.write(b"\0" * (240 * 1024))
            except OSError:
                pass
        yield disk


def test_report_onto_a_full_disk_says_so(tmp_path, full_disk):
    camp = sf.Campaign(tmp_path / "run", allocation=ONE_CORE, progress=False)
    for x in range(3):
        camp.submit(sf.Function(abs, args=(-x,)))
    camp.run()
    proc = cli("report", str(tmp_path / "run"), "--out", str(full_disk / "report"))
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "No space left on device (ENOSPC)" in proc.stderr and "--out FOLDER" in proc.stderr


def test_bench_json_onto_a_full_device_says_so_after_the_table():
    proc = cli("bench", "scale", "--tasks", "2", "--json", "/dev/full")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "could not write /dev/full: No space left on device" in proc.stderr
    assert "the table above has the numbers" in proc.stderr and "tasks" in proc.stdout
