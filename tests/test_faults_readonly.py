"""A campaign directory that cannot be written (a read-only file system, an archive, a colleague's run).

Readers must read it as it is; writers (a new campaign, a resume, a report into it) must say so in one
sentence instead of a traceback. Before: `steerflow status` showed "0 of 0 tasks" (a WAL journal read with
mode=ro needs a -shm file it could not create), `show`/`report` died with "unable to open database file",
`steerflow resume` said the journal "was made by an older steerflow", and Campaign(...) raised a bare
OSError from deep inside. On a real tmpfs remounted read-only (root only; skipped elsewhere).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import steerflow as sf
from steerflow.errors import CampaignDirectoryError

pytestmark = pytest.mark.usefixtures("no_leftover_processes")

ONE_CORE = sf.Allocation.declare(nodes=1, cores=1)


def _mount(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)


@pytest.fixture
def read_only_campaign(tmp_path):
    """A finished campaign (3 tasks, one failed) on a tmpfs that is then remounted read-only."""
    disk = tmp_path / "disk"
    disk.mkdir()
    try:
        proc = _mount(["-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)])
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {proc.stderr.strip()}")
    try:
        camp = sf.Campaign(disk / "run", allocation=ONE_CORE, progress=False)
        for x in (-1, -2):
            camp.submit(sf.Function(abs, args=(x,)))
        camp.submit(sf.Function(abs, args=("not a number",)))
        camp.run()
        assert _mount(["-o", "remount,ro", str(disk)]).returncode == 0
        yield disk / "run"
    finally:
        if subprocess.run(["umount", str(disk)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "steerflow.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))


def test_status_and_show_read_a_campaign_on_a_read_only_file_system(read_only_campaign):
    status = cli("status", str(read_only_campaign))
    assert status.returncode == 0, status.stderr
    assert "3 of 3 tasks" in status.stdout, status.stdout  # not "0 of 0"
    shown = cli("show", str(read_only_campaign), "1")
    assert shown.returncode == 0 and "result: ok" in shown.stdout, shown.stdout + shown.stderr


def test_report_into_a_read_only_campaign_says_use_out(read_only_campaign, tmp_path):
    into = cli("report", str(read_only_campaign))
    assert into.returncode == 2
    assert "Read-only file system" in into.stderr and "--out FOLDER" in into.stderr, into.stderr
    assert "Traceback" not in into.stderr
    elsewhere = cli("report", str(read_only_campaign), "--out", str(tmp_path / "rep"))
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert (tmp_path / "rep" / "report.html").exists()


def test_a_campaign_cannot_start_or_resume_there_and_says_why(read_only_campaign):
    for directory, resume in ((read_only_campaign.parent / "new", False), (read_only_campaign, True)):
        with pytest.raises(CampaignDirectoryError, match="Read-only file system .EROFS.*Give a directory you can "
                           "write to") as caught:
            sf.Campaign(directory, allocation=ONE_CORE, progress=False, resume=resume)
        assert isinstance(caught.value, OSError)  # code that caught the bare OSError still does
    resumed = cli("resume", str(read_only_campaign))
    assert resumed.returncode == 2
    assert "cannot be written" in resumed.stderr and "Copy the directory" in resumed.stderr, resumed.stderr
    assert "older steerflow" not in resumed.stderr and "Traceback" not in resumed.stderr


def test_bench_json_into_a_folder_that_does_not_exist_fails_before_the_benchmark(tmp_path):
    missing = tmp_path / "file-not-folder"
    missing.write_text("")
    done = cli("bench", "scheduler", "--json", str(missing / "out.json"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "cannot write to" in done.stderr and "--json FILE" in done.stderr
    assert "placements" not in done.stdout  # it stopped before running the benchmark
