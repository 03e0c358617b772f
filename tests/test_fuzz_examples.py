"""The examples' own flags, as a user mistypes them: each wrong value is refused at once by the example's
command line (exit 2, one line naming the flag), never a traceback from deep inside the campaign, a run that
takes the value, or (with --resume and a wrong directory) a new campaign started where none was."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
AL = EXAMPLES / "01-active-learning-ip" / "campaign.py"
DESIGN = EXAMPLES / "03-molecular-design" / "campaign.py"

pytest.importorskip("rdkit")


def refused(script: Path, cwd: Path, *argv: str) -> str:
    proc = subprocess.run([sys.executable, str(script), *argv], capture_output=True, text=True, timeout=120,
                          cwd=cwd)
    assert proc.returncode == 2, f"{argv}: exit {proc.returncode}\n{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr
    assert not (cwd / "runs").exists(), f"{argv} made a campaign directory"
    return proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("argv, says", [
    (["--budget", "0"], "--budget: 0 is out of range"),  # was: TypeError in the report
    (["--budget", "-3"], "--budget"),
    (["--candidates", "0"], "--candidates"),  # was: ValueError "need at least one array to stack"
    (["--first", "1"], "--first"),  # was: the surrogate's ValueError, as a traceback
    (["--kappa", "nan"], "--kappa"),  # was: taken
    (["--error-bound", "0"], "--error-bound"),
    (["--top", "2"], "--top"),  # was: taken
    (["--find", "nan"], "--find"),
    (["--retrain-after", "x"], "--retrain-after: 'x' is not an integer"),
    (["--resume", "--dir", "no-such-run"], "no campaign to continue there"),  # was: a new campaign there
    (["--resume"], "no campaign to continue there"),  # was: a new time-stamped campaign
])
def test_example_01_refuses_wrong_flags_at_once(tmp_path, argv, says):
    assert says in refused(AL, tmp_path, *argv)


@pytest.mark.parametrize("argv, says", [
    (["--batch", "0"], "--batch: 0 is out of range"),  # was: an agent's IndexError after the featurization
    (["--batch", "-1"], "--batch"),  # was: a campaign that ran on
    (["--size", "0"], "--size"),  # was: ValueError from learn.Goal
    (["--budget", "-3"], "--budget"),  # was: taken
    (["--bits", "-1"], "--bits"),
    (["--kappa", "inf"], "--kappa"),
    (["--resume"], "needs --dir"),  # was: a new time-stamped campaign
    (["--resume", "--dir", "no-such-run"], "no campaign to continue there"),  # was: a new campaign there
    (["--report-only", "--dir", "no-such-run"], "does not exist"),  # was: FileNotFoundError traceback
])
def test_example_03_refuses_wrong_flags_at_once(tmp_path, argv, says):
    assert says in refused(DESIGN, tmp_path, *argv)
