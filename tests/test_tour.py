"""The README's tour is examples/00-tour/tour.py, whole, and it runs as the README says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOUR = ROOT / "examples" / "00-tour" / "tour.py"


def test_the_readme_shows_the_tour_file_whole():
    readme = (ROOT / "README.md").read_text()
    shown = readme.split("## A tour of the API", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    body = TOUR.read_text().split('"""', 2)[2].lstrip("\n")
    assert shown.strip() == body.strip()


def test_the_tour_runs(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-m", "steerflow.cli", "run", str(TOUR)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "part 1: 1025 a program ran" in out.stdout
    assert "part 2: 40 results" in out.stdout and "stop condition met" in out.stdout
    assert len(list((tmp_path / "runs").glob("tour-*/journal.db"))) == 1
