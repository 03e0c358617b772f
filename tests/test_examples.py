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
    for module in ("tblite", "rdkit", "sklearn", "ase"):
        pytest.importorskip(module)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-m", "steerflow.cli", "run",
                          str(EXAMPLES / "01-active-learning-ip" / "campaign.py"),
                          "--dir", str(tmp_path / "al"), "--candidates", "200", "--budget", "24", "--first", "8",
                          "--retrain-after", "8", "--top", "0.05"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "al" / "report.json").read_text())
    assert report["simulations"] == 24 and report["candidates"] == 200
    assert 5 < report["best_simulated_ip_ev"] < 20  # a physical vertical IP in eV, computed by xTB
    assert report["ground_truth_max_deviation_ev"] < 0.05  # what xTB computed here matches the shipped ground truth
    assert report["models"] >= 1 and report["surrogate"]["calls"] >= 24
    baselines = [row["baseline"] for row in report["effective_performance"]["baselines"]]
    assert baselines[0] == "random order" and "chosen in advance" in baselines[1] and "AFTER" in baselines[2]
    assert (tmp_path / "al" / "learning-curves.png").stat().st_size > 1000
    assert "effective performance" in out.stdout and "Surrogate (ML-in)" in out.stdout
    assert learn_load(tmp_path / "al") is not None


def learn_load(directory):
    from steerflow import learn

    return learn.load(directory, "ip-forest")


def test_yaml_example_runs(tmp_path):
    from steerflow.pipelines import run_file

    summary = run_file(EXAMPLES / "02-yaml-pipeline" / "pipeline.yaml", directory=str(tmp_path / "y"),
                       progress=False)
    assert summary["states"] == {"done": summary["tasks"]}
