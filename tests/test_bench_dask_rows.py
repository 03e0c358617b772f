"""`steerflow bench runtime --engine dask --json` writes every key the local benchmark writes (issue 12),
and a run prints no traceback (Dask's teardown chatter included: its worker processes share our stderr)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("distributed")

LOCAL_RESULT = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "runtime-2026-11-28-idle.json"

# tiny (2 nodes: the mixed set has 2-core tasks): it checks the keys and the output, not speed
SCRIPT = r'''
import json, sys
from steerflow.bench import dask_engine

if __name__ == "__main__":
    result = dask_engine.run(repeat=1, workers=2, n_tasks=10, n_shapes=2, n_campaign=5, n_sleeps=3, n_mixed=3, n_rtt=10,
                             n_placements=1000)
    with open(sys.argv[1], "w") as f:
        json.dump(result, f)  # what --json writes
'''


@pytest.mark.slow
def test_dask_benchmark_writes_the_local_benchmarks_keys_and_no_traceback(tmp_path):
    script = tmp_path / "bench.py"
    script.write_text(SCRIPT)
    out = tmp_path / "result.json"
    proc = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True, timeout=280,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr[-5000:]
    result = json.loads(out.read_text())
    local_keys = set(json.loads(LOCAL_RESULT.read_text()))
    missing = sorted(local_keys - set(result))
    assert not missing, f"keys of the local benchmark missing from --engine dask: {missing}"
    for key in ("rtt_main_p50_ms", "campaign_throughput_tasks_per_s", "mixed_efficiency_pct", "cancel_ms",
                "diamond_1mb_futures_s", "floor_diamond_1mb_futures_s", "reduce_0mb_resolved_vs_floor",
                "dask_bag_0mb_futures_s", "peer_dask_rtt_p50_ms", "floor_mixed_efficiency_pct",
                # the greedy arm (Runtime(max_bypass=None)) beside the default policy, on both engines
                "mixed_greedy_efficiency_pct", "floor_mixed_greedy_efficiency_pct",
                "mixed_efficiency_same_policy_pct", "floor_mixed_efficiency_same_policy_pct"):
        assert isinstance(result[key], float) and math.isfinite(result[key]) and result[key] > 0, key
    for key in ("mixed_greedy_gap_pts", "mixed_efficiency_same_policy_gap_pts", "mixed_efficiency_gap_pts",
                "mixed_policy_cost_pts", "floor_mixed_policy_cost_pts"):  # (points: any sign)
        assert isinstance(result[key], float) and math.isfinite(result[key]), key
    assert result["mixed_greedy_gap_pts"] == pytest.approx(result["floor_mixed_greedy_efficiency_pct"]
                                                           - result["mixed_greedy_efficiency_pct"])
