"""`steerflow bench`: an option a benchmark does not use is refused (it was ignored silently), one it uses is
honoured; the runtime table says which mixed-set rows carry the 0.2-point target and which is the
anti-starvation policy's cost, in the table and in the JSON. The benchmarks themselves are replaced by fakes
here (they take minutes): this is about the command, not the measurements."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from steerflow.bench import runtime, scale, scheduler, steering
from steerflow.cli import main

MIXED = {"mixed_greedy_efficiency_pct": 97.6, "floor_mixed_greedy_efficiency_pct": 97.7,
         "mixed_greedy_gap_pts": 0.1, "mixed_efficiency_same_policy_pct": 97.5,
         "mixed_efficiency_same_policy_gap_pts": 0.15, "mixed_efficiency_pct": 96.8,
         "floor_mixed_efficiency_pct": 97.7, "mixed_efficiency_gap_pts": 0.9, "mixed_policy_cost_pts": 0.8,
         "mixed_policy_cost_ideal_pts": 0.4, "mixed_lists": 6,
         "throughput_tasks_per_s": 16233.1, "floor_throughput_tasks_per_s": 14124.8, "dask_throughput_tasks_per_s": 539.6,
         "placements_per_s_10k_nodes": 153620.0}


@pytest.fixture
def fakes(monkeypatch):
    """Each benchmark's `run` replaced by one that records its arguments."""
    calls: dict[str, dict] = {}

    def fake(name: str, result: dict):
        def run(**kwargs):
            calls[name] = kwargs
            return dict(result)
        return run

    monkeypatch.setattr(runtime, "run", fake("runtime", MIXED))
    monkeypatch.setattr(steering, "run", fake("steering", {"steer_rtt_p50_ms": 0.5}))
    monkeypatch.setattr(scale, "run", fake("scale", {"rss_growth_mb": 1.0}))
    monkeypatch.setattr(scheduler, "run", fake("scheduler", {"placements_per_s": 150_000.0}))
    return calls


@pytest.mark.parametrize("argv", [
    ["scheduler", "--tasks", "5"], ["scheduler", "--engine", "local"], ["steering", "--engine", "dask"],
    ["steering", "--tasks", "10"], ["scale", "--repeat", "2"], ["scale", "--engine", "local"],
    ["runtime", "--tasks", "100"]])
def test_an_option_the_benchmark_does_not_use_is_refused(fakes, capsys, argv):
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err
    assert f"{argv[1]} does not apply to `steerflow bench {argv[0]}`" in err and "leave it out" in err, err
    assert not fakes  # nothing ran


def test_the_options_a_benchmark_uses_are_honoured(fakes, capsys):
    assert main(["bench", "scheduler", "--repeat", "2"]) == 0
    assert fakes["scheduler"]["repeat"] == 2
    assert main(["bench", "scheduler"]) == 0
    assert fakes["scheduler"]["repeat"] == scheduler.REPEAT
    assert main(["bench", "scale", "--tasks", "2000"]) == 0 and fakes["scale"]["tasks"] == 2000
    assert main(["bench", "steering", "--repeat", "4"]) == 0 and fakes["steering"]["repeat"] == 4
    assert main(["bench", "runtime", "--repeat", "1", "--engine", "local"]) == 0 and fakes["runtime"]["repeat"] == 1
    assert main(["bench", "runtime"]) == 0 and fakes["runtime"]["repeat"] == 3


def test_the_runtime_table_says_which_mixed_rows_carry_the_target(fakes, capsys, tmp_path):
    out = tmp_path / "r.json"
    assert main(["bench", "runtime", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if line.count("│") > 3}
    assert "<= 0.2" in rows["mixed_greedy_gap_pts"] and "yes" in rows["mixed_greedy_gap_pts"]
    assert "<= 0.2" in rows["mixed_efficiency_same_policy_gap_pts"]
    assert "<=" not in rows["mixed_efficiency_gap_pts"] and "<=" not in rows["mixed_policy_cost_pts"]
    assert "ANTI-STARVATION POLICY'S COST" in text and "Runtime(max_bypass=None) switches it off" in text, text
    assert "97.700" in rows["mixed_greedy_efficiency_pct"]  # the pool beside the greedy run
    written = json.loads(out.read_text())
    assert written["mixed_greedy_gap_pts"] == 0.1
    assert written["about"]["targets"]["mixed_greedy_gap_pts"] == "<= 0.2"
    assert "mixed_efficiency_gap_pts" not in written["about"]["targets"]
    assert "POLICY'S COST" in written["about"]["labels"]["mixed_policy_cost_pts"]
    assert any("max_bypass=None" in line for line in written["about"]["notes"])


def test_no_metric_name_is_cut_when_the_output_is_not_a_terminal(fakes, capsys):
    assert main(["bench", "runtime"]) == 0
    text = capsys.readouterr().out
    for key in MIXED:
        if not key.startswith(("floor_", "dask_")):
            assert f"│ {key} " in text, key  # (cut to 'mixed_efficiency_sa…' at 80 columns before)


@pytest.mark.parametrize("module", ["steerflow.cli", "steerflow"])
def test_a_refused_option_is_a_usage_error_however_the_command_is_started(module):
    """``python -m steerflow.cli`` runs the CLI as ``__main__``: the error must still be its usage error (exit 2)."""
    done = subprocess.run([sys.executable, "-m", module, "bench", "scale", "--repeat", "2"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "does not apply" in done.stderr and "Traceback" not in done.stderr, done.stderr
