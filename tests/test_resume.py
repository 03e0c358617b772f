"""`steerflow resume DIR` continues the campaign in DIR (or refuses with a message), for any script."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from steerflow import rundirs
from steerflow.cli import driver_pid
from steerflow.proctree import descendants, process_alive

from .conftest import wait_until

SCRIPT = Path(__file__).parent / "campaigns" / "phased_campaign.py"
STEERFLOW = [sys.executable, "-m", "steerflow.cli"]


def _env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))


def _running(directory: Path, name: str) -> bool:
    return (directory / "journal.db").exists() and any(r["name"] == name for r in rundirs.status(directory)["running"])


def _killed_mid_first_phase(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Start the two-phase script, let its short tasks finish, SIGKILL it while the long one runs."""
    marker, release = tmp_path / "marker", tmp_path / "release"
    driver = subprocess.Popen([*STEERFLOW, "run", str(SCRIPT), str(tmp_path / "run"), str(marker), str(release)],
                              env=_env(), start_new_session=True, stderr=subprocess.PIPE)
    try:
        assert wait_until(lambda: len(list(tmp_path.glob("run-*/first"))) == 1, timeout=30)
        first = next(tmp_path.glob("run-*/first"))
        assert wait_until(lambda: _running(first, "long") and
                          rundirs.status(first)["pools"]["default"].get("done") == 2, timeout=30)
    finally:
        tree = descendants(driver.pid)  # (its workers: they die with it, by their guards, a moment after it)
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
        driver.stderr.close()
    assert driver_pid(first) is None
    # the long task's worker is gone before the test releases it (else it could still write its marker)
    assert wait_until(lambda: not any(process_alive(p) for p in tree), timeout=30), "the killed driver's tree lived on"
    return first.parent, marker, release


def test_resume_continues_a_time_stamped_multi_phase_run_in_its_directory(tmp_path):
    root, marker, release = _killed_mid_first_phase(tmp_path)
    info = rundirs.status(root / "first")
    assert info["pools"]["default"] == {"done": 2, "interrupted": 1}  # not "running": no driver runs
    assert info["running"][0]["state"] == "interrupted"
    release.touch()
    out = subprocess.run([*STEERFLOW, "resume", str(root / "first")], env=_env(), capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"phased_campaign.py {tmp_path / 'run'}" in out.stderr  # it shows what it runs
    assert f"steerflow resume: {root / 'first'}: 3 done" in out.stderr  # and where it continued
    assert f"steerflow resume: {root / 'second'}: 1 done" in out.stderr
    assert [p.name for p in tmp_path.glob("run-*")] == [root.name]  # no new time-stamped directory
    assert rundirs.status(root / "first")["pools"]["default"] == {"done": 3}
    assert rundirs.status(root / "second")["pools"]["default"] == {"done": 1}  # the second phase, beside the first
    assert sorted(marker.read_text().split()) == ["long", "second", "short0", "short1"]  # nothing ran twice
    # the directory holding both phases is understood as such
    assert rundirs.find(root) == [root / "first", root / "second"]
    status = subprocess.run([*STEERFLOW, "status", str(root)], env=_env(), capture_output=True, text=True)
    assert status.returncode == 0 and "2 campaigns: first, second" in status.stdout
    report = subprocess.run([*STEERFLOW, "report", str(root)], env=_env(), capture_output=True, text=True)
    assert report.returncode == 2 and f"steerflow report {root / 'first'}" in report.stderr
    assert "Traceback" not in report.stderr


def test_resume_of_a_copy_continues_the_copy(tmp_path):
    root, marker, release = _killed_mid_first_phase(tmp_path)
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(root, copy)
    release.touch()
    out = subprocess.run([*STEERFLOW, "resume", str(copy)], env=_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert rundirs.status(copy / "first")["pools"]["default"] == {"done": 3}
    assert rundirs.status(copy / "second")["pools"]["default"] == {"done": 1}
    assert rundirs.status(root / "first")["pools"]["default"] == {"done": 2, "interrupted": 1}  # untouched
    assert not (root / "second").exists()


def _set_launch(directory: Path, record: dict) -> None:
    conn = sqlite3.connect(directory / "journal.db")
    with conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'launch'", (json.dumps(record),))
    conn.close()


@pytest.mark.parametrize("record,message", [
    ({"kind": "other", "script": "", "argv": ["touch", "{victim}"]}, "not started from a script or pipeline"),
    ({"kind": "python", "script": "/bin/touch", "args": ["{victim}"]}, "is not a campaign script"),
    ({"kind": "python", "script": "{missing}", "args": []}, "no longer exists"),
])
def test_resume_runs_only_the_campaigns_own_script(tmp_path, record, message):
    import steerflow as sf

    camp = sf.Campaign(tmp_path / "c", allocation=sf.Allocation.declare(nodes=1, cores=1), progress=False)
    camp.close()
    victim = tmp_path / "victim"
    text = json.dumps(record).replace("{victim}", str(victim)).replace("{missing}", str(tmp_path / "gone.py"))
    _set_launch(tmp_path / "c", json.loads(text))
    out = subprocess.run([*STEERFLOW, "resume", str(tmp_path / "c")], env=_env(), capture_output=True, text=True)
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and not victim.exists()


def test_resume_of_a_path_without_a_campaign_says_so(tmp_path):
    for path, message in ((tmp_path / "nope", "does not exist"), (tmp_path, "holds no campaign journal")):
        out = subprocess.run([*STEERFLOW, "resume", str(path)], env=_env(), capture_output=True, text=True)
        assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


def test_cancel_stop_stops_the_whole_script_and_the_summary_agrees_with_the_journal(tmp_path):
    marker, release = tmp_path / "marker", tmp_path / "release"
    driver = subprocess.Popen([*STEERFLOW, "run", str(SCRIPT), str(tmp_path / "run"), str(marker), str(release)],
                              env=_env(), start_new_session=True, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: len(list(tmp_path.glob("run-*/first"))) == 1, timeout=30)
        root = next(tmp_path.glob("run-*"))
        assert wait_until(lambda: _running(root / "first", "long"), timeout=30)
        stop = subprocess.run([*STEERFLOW, "cancel", str(root), "--stop"], env=_env(), capture_output=True,
                              text=True)
        assert stop.returncode == 0, stop.stderr
        _, err = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    assert driver.returncode == 0, err
    assert "stopped from the command line" in err and "steerflow resume" in err
    assert not (root / "second").exists()  # the second phase never started
    summary = json.loads((root / "first" / "summary.json").read_text())
    journal = rundirs.status(root / "first")["pools"]["default"]
    assert summary["states"] == journal, (summary, journal)
    assert summary["stop_reason"].startswith("stopped from the command line")
    # and it resumes: the interrupted task and the second phase run
    release.touch()
    out = subprocess.run([*STEERFLOW, "resume", str(root)], env=_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert rundirs.status(root / "second")["pools"]["default"] == {"done": 1}


def test_resume_of_a_yaml_pipeline_runs_its_spec_file_in_the_directory_given(tmp_path):
    spec = Path(__file__).resolve().parents[1] / "examples" / "02-yaml-pipeline" / "pipeline.yaml"
    first = subprocess.run([*STEERFLOW, "run", "--dir", str(tmp_path / "y"), str(spec)], env=_env(),
                           capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    shutil.copytree(tmp_path / "y", tmp_path / "copy")
    out = subprocess.run([*STEERFLOW, "resume", str(tmp_path / "copy")], env=_env(), capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"--resume --dir {tmp_path / 'copy'} {spec}" in out.stderr  # what it runs, shown
    assert rundirs.status(tmp_path / "copy")["drivers_so_far"] == 2  # the copy was resumed ...
    assert rundirs.status(tmp_path / "y")["drivers_so_far"] == 1  # ... and the original left alone
    assert rundirs.status(tmp_path / "copy")["pools"]["scan"] == {"done": 18}  # replayed, nothing ran again
