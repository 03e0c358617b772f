"""`steerflow bench runtime --engine dask --json` writes every key the local benchmark writes (issue 12)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytest.importorskip("distributed")

LOCAL_RESULT = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "runtime-2026-11-28-idle.json"


@pytest.mark.slow
def test_dask_benchmark_writes_the_local_benchmarks_keys(tmp_path, monkeypatch):
    from steerflow.bench import dask_engine

    monkeypatch.chdir(tmp_path)
    # tiny (2 nodes: the mixed set has 2-core tasks): it checks the keys, not speed (each part starts its own cluster)
    result = dask_engine.run(repeat=1, workers=2, n_tasks=10, n_shapes=2, n_campaign=5, n_sleeps=3, n_mixed=3)
    local_keys = set(json.loads(LOCAL_RESULT.read_text()))
    missing = sorted(local_keys - set(result))
    assert not missing, f"keys of the local benchmark missing from --engine dask: {missing}"
    for key in ("rtt_main_p50_ms", "campaign_throughput_tasks_per_s", "mixed_efficiency_pct",
                "diamond_1mb_futures_s", "floor_diamond_1mb_futures_s", "reduce_0mb_resolved_vs_floor"):
        assert isinstance(result[key], float) and math.isfinite(result[key]) and result[key] > 0, key
    json.dumps(result)  # what --json writes
