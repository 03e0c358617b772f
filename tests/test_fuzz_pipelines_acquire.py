"""The YAML `acquire` rule with degenerate data: an objective that returns NaN for some candidates, and a model
name that does not exist. Before: the first stopped the pipeline with 'ValueError: Input y contains NaN' from
the rule's model fit (and again on every resume); the second failed only mid-run, after the first batch."""

from __future__ import annotations

import os
import subprocess
import sys

OBJECTIVE = "def obj(x):\n    return float('nan') if x in (0.2, 0.5, 0.7) else (x - 0.3) ** 2\n"
SPEC = """stages:
  - {name: evaluate, function: "fzacq:obj", args: ["{x}"], when: on-demand, params: [x]}
rules:
  - name: acquire
    params: {stage: evaluate, candidates: [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], budget: 10,
             batch: 2, first: 4%s}
"""


def run(tmp_path, extra=""):
    (tmp_path / "fzacq.py").write_text(OBJECTIVE)
    (tmp_path / "p.yaml").write_text(SPEC % extra)
    return subprocess.run([sys.executable, "-m", "steerflow.cli", "run", str(tmp_path / "p.yaml"), "--dir",
                           str(tmp_path / "run")], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def test_nan_results_are_left_out_of_the_rules_model(tmp_path):
    proc = run(tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "10 task(s): 10 done" in proc.stdout
    assert proc.stderr.count("which the model cannot learn from") == 1


def test_an_unknown_model_is_a_spec_error_naming_the_line(tmp_path):
    proc = run(tmp_path, ", model: nope")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "p.yaml:6: rules[0].params.model: Unknown model 'nope'" in proc.stderr
    assert not (tmp_path / "run").exists()


SCAN = """def energy(x):
    return {"energy": float("nan") if x in (-2.0, 2.0) else (x * x - 1.0) ** 2 + 0.3 * x}

def refine(x0):
    return x0
"""
TOPK = """stages:
  - {name: scan, function: "fzscan:energy", kwargs: {x: "{x}"}, foreach: {x: [-2.0, -1.0, 0.0, 1.0, 2.0]}}
  - {name: refine, function: "fzscan:refine", when: on-demand, params: [x], kwargs: {x0: "{x}"}}
rules:
  - {name: top-k-refine, params: {stage: scan, refine: refine, k: 2, key: energy, order: min}}
"""


def test_top_k_refine_does_not_rank_nan_results(tmp_path):
    # before: the two NaN scan points were "the 2 lowest energies" and were refined
    (tmp_path / "fzscan.py").write_text(SCAN)
    (tmp_path / "p.yaml").write_text(TOPK)
    proc = subprocess.run([sys.executable, "-m", "steerflow.cli", "run", str(tmp_path / "p.yaml"), "--dir",
                           str(tmp_path / "run")], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    import sqlite3

    with sqlite3.connect(tmp_path / "run" / "journal.db") as conn:
        refined = sorted(name for (name,) in conn.execute("SELECT name FROM tasks WHERE name LIKE 'refine%'"))
    assert refined == ["refine[x=-1.0]", "refine[x=1.0]"], refined  # the two lowest real energies
    assert proc.stderr.count("scored NaN") == 1
