"""Example 03 (molecular design, real GFN2-xTB): tiny end-to-end run, kill -9 + resume, and the cached ground truth.

The campaign tests run real tblite simulations at a tiny size (~100 molecules) and take well
under a minute or two each on a loaded 2-core machine.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "03-molecular-design"
DATA = EXAMPLE / "data" / "moses5000_gfn2.csv.gz"


def _science_or_skip() -> None:
    for module in ("tblite", "rdkit", "sklearn"):
        pytest.importorskip(module)


def _campaign(directory: Path, *extra: str) -> list[str]:
    return [sys.executable, str(EXAMPLE / "campaign.py"), "--dir", str(directory), "--size", "120",
            "--budget", "40", "--batch", "8", "--seed", "3", "--cache", str(directory.parent / "cache"), *extra]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))


def _journal_rows(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


def _sim_done_keys(db: Path) -> set[int]:
    try:
        rows = _journal_rows(db, "SELECT r.key FROM results r JOIN tasks t ON t.key = r.key "
                                 "WHERE t.pool = 'simulate' AND r.ok = 1")
    except sqlite3.OperationalError:  # the driver is still creating the journal's tables
        return set()
    return {k for (k,) in rows}


@pytest.mark.slow
def test_tiny_campaign_killed_with_sigkill_resumes_without_rerunning_and_reports_every_number(tmp_path):
    """One tiny real run (120 molecules, 40 xTB simulations), killed with -9 midway and resumed: one test for both,
    to keep the suite lean."""
    _science_or_skip()
    directory = tmp_path / "d"
    db = directory / "campaign" / "journal.db"
    proc = subprocess.Popen(_campaign(directory), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists() and len(_sim_done_keys(db)) >= 12:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the campaign ended before it could be killed: " + proc.stderr.read().decode()
        os.kill(proc.pid, signal.SIGKILL)  # the driver only: its workers must notice and die with it
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    done_before = _sim_done_keys(db)
    assert 12 <= len(done_before) < 40
    resumed_at = time.time()
    out = subprocess.run(_campaign(directory, "--resume"), env=_env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    reran = _journal_rows(db, f"SELECT key FROM states WHERE (state = 'running' AND ts >= {resumed_at}) "
                         f"OR since >= {resumed_at}")  # (since: a running row folded into its end's, schema 2)
    assert not done_before & {k for (k,) in reran}, "a simulation finished before the kill ran again"
    tags = _journal_rows(db, "SELECT tags FROM tasks WHERE pool = 'simulate'")
    assert len(tags) == len(set(tags)) == 40  # each molecule submitted once, across both drivers

    summary = json.loads((directory / "summary.json").read_text())
    for key in ("pool_size", "sims_to_top1pct", "baseline_sims_to_top1pct", "heuristic_sims_to_top1pct",
                "effective_performance", "wall_s", "utilization_pct"):
        assert key in summary, key
    assert summary["driver_starts"] == 2 and summary["pool_size"] == 120
    assert summary["simulations"] == 40 and summary["failed_simulations"] == 0
    assert summary["baseline_sims_to_top1pct"] == pytest.approx(1 * 121 / 2)  # 1 of 1 hit among 120: (n+1)/2
    assert summary["tasks_by_pool"]["learn"] >= 2  # featurization and at least one retrain, as tasks
    assert summary["models"] >= 1 and (directory / "campaign" / "models" / "ip-forest").is_dir()
    # the policy used the QM9 prior (transfer.py), and the prior's own ranking joined the heuristics it is compared with
    assert summary["policy"]["transfer"] is True and summary["heuristic_qm9_model"]["half"] >= 1
    assert 0 < summary["utilization_pct"] <= 100.5
    # every simulation really ran xTB: the values match the cached ground truth made by the sweep
    assert summary["max_abs_ip_difference_vs_cache_ev"] < 2e-3
    assert (directory / "discovery.png").stat().st_size > 5000
    assert "random order" in out.stdout and "best heuristic" in out.stdout


def test_ground_truth_file_is_complete_and_compact():
    assert DATA.exists(), "run examples/03-molecular-design/sweep.py to make the ground truth"
    assert DATA.stat().st_size < 600_000
    with gzip.open(DATA, "rt") as f:
        header, *lines = f.read().splitlines()
    assert header.split(",")[:5] == ["index", "smiles", "ip_ev", "ea_ev", "gap_ev"]
    assert len(lines) == 5000
    ips = [float(line.split(",")[2]) for line in lines]
    finite = [v for v in ips if v == v]
    assert len(finite) >= 4990 and all(5.0 < v < 20.0 for v in finite)


@pytest.mark.slow
def test_ground_truth_matches_fresh_xtb_on_a_random_sample():
    _science_or_skip()
    sys.path.insert(0, str(EXAMPLE))
    try:
        from science import read_ground_truth
    finally:
        sys.path.remove(str(EXAMPLE))
    rows = [r for r in read_ground_truth(str(DATA)) if r["ip_ev"] == r["ip_ev"]]
    sample = random.Random(time.time_ns()).sample(rows, 4)  # a different sample each run
    # in a fresh process with one OpenMP thread, as in a campaign task (tblite is 10-100x slower oversubscribed)
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); from science import xtb_properties; "
            "print(json.dumps([xtb_properties(s) for s in sys.argv[2:]]))")
    out = subprocess.run([sys.executable, "-c", code, str(EXAMPLE), *[r["smiles"] for r in sample]],
                         env=dict(_env(), OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    for row, fresh in zip(sample, json.loads(out.stdout.splitlines()[-1])):
        for key in ("ip_ev", "ea_ev", "gap_ev"):
            assert fresh[key] == pytest.approx(row[key], abs=2e-3), (row["smiles"], key)
        assert fresh["n_atoms"] == row["n_atoms"]
