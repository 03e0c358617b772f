"""The examples run end to end at tiny sizes (example 01 uses real GFN2-xTB through tblite)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.slow
def test_active_learning_demo_runs_real_xtb(tmp_path):
    for module in ("tblite", "rdkit", "sklearn", "qm9pack", "ase"):
        pytest.importorskip(module if module != "qm9pack" else "qm9pack.qm9pack_getdata")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-m", "steerflow.cli", "run",
                          str(EXAMPLES / "01-active-learning-ip" / "campaign.py"),
                          "--dir", str(tmp_path / "al"), "--candidates", "60", "--budget", "16", "--batch", "4"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "al" / "report.json").read_text())
    assert report["active_simulations"] == 16 and report["candidates"] == 60
    assert 5 < report["ip_ev"] < 20  # a physical vertical IP in eV, computed by xTB
    assert report["global_minimum_ev"] <= report["ip_ev"]
    assert report["effective_performance"] > 0
    assert (tmp_path / "al" / "learning-curves.png").stat().st_size > 1000
    assert "effective performance" in out.stdout


def test_yaml_example_runs(tmp_path):
    from steerflow.pipelines import run_file

    summary = run_file(EXAMPLES / "02-yaml-pipeline" / "pipeline.yaml", directory=str(tmp_path / "y"),
                       progress=False)
    assert summary["states"] == {"done": summary["tasks"]}
