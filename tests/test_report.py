"""The campaign report, computed from a real journal."""

from __future__ import annotations

import json
import time

import pytest

from steerflow import Allocation, Campaign, Function
from steerflow.cli import main
from steerflow.observe.report import Interval, build, utilisation


def test_utilisation_is_core_seconds_over_capacity():
    intervals = [Interval(1, "sim", 1, 0.0, 2.0), Interval(2, "sim", 1, 0.0, 1.0), Interval(3, "train", 2, 2.0, 3.0)]
    util = utilisation(intervals, total_cores=2)
    assert util["span_s"] == 3.0
    assert util["mean_pct"] == pytest.approx(100 * (2 + 1 + 2) / (2 * 3))
    assert util["times"] == [0.0, 1.0, 2.0, 3.0]
    assert util["busy_by_pool"] == {"sim": [2, 1, 0, 0], "train": [0, 0, 2, 0]}


def test_report_from_a_campaign_journal(tmp_path, capsys):
    camp = Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=2), progress=False)
    for _ in range(4):
        camp.submit(Function(time.sleep, args=(0.2,), pool="simulate"))
    camp.submit(Function(time.sleep, args=(0.2,), pool="train", cores=2))
    camp.run()
    summary = build(tmp_path / "c")
    assert summary["tasks"] == {"done": 5}
    assert summary["tasks_by_pool"] == {"simulate": {"done": 4}, "train": {"done": 1}}
    assert 50 < summary["mean_utilisation_pct"] <= 100  # 1.2 core-seconds of work in ~0.6 s on 2 cores
    assert summary["time_to_completion_s"] >= 0.6
    assert (tmp_path / "c" / "report" / "utilisation.png").stat().st_size > 1000
    assert "Utilisation" in (tmp_path / "c" / "report" / "report.html").read_text() or \
        "utilisation" in (tmp_path / "c" / "report" / "report.html").read_text()
    assert main(["report", str(tmp_path / "c"), "--out", str(tmp_path / "r")]) == 0
    assert json.loads((tmp_path / "r" / "report.json").read_text())["total_cores"] == 2
