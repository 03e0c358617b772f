"""`steerflow report`: the HTML report (opened in headless Chromium), its JSON, and its cost at 100,000 tasks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from steerflow import Allocation, Campaign, Function
from steerflow.cli import main
from steerflow.observe.report import build

from .chromium import chromium, needs_chromium

REQUIRED = ("ttc_s", "utilization_mean_pct", "idle_while_queued_core_s", "overhead_share_pct", "tasks")


def flaky(marker):
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("the first attempt fails on purpose")
    time.sleep(0.1)
    return 1


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    camp = Campaign(root / "c", allocation=Allocation.declare(nodes=1, cores=2, gpus=1), progress=False)
    for _ in range(4):
        camp.submit(Function(time.sleep, args=(0.2,), pool="simulate"))
    camp.submit(Function(time.sleep, args=(0.3,), pool="train", gpus=1))
    camp.submit(Function(flaky, args=(str(root / "marker"),), pool="simulate", retries=1))
    camp.submit(Function(int, args=("not a number",), pool="simulate"))
    camp.run()
    return root / "c"


def test_report_files_hold_the_figures_and_the_numbers(campaign, tmp_path):
    result = build(campaign, tmp_path / "r")
    page = (tmp_path / "r" / "report.html").read_text()
    for figure in ("gantt", "utilisation", "queue", "durations", "overheads"):
        assert f'id="fig-{figure}"' in page
    assert page.count("data:image/png;base64,") >= 5  # self-contained: figures embedded
    assert f"{result['ttc_s']:,.1f} s" in page and "ValueError" in page  # numbers and the failure's text
    assert result["tasks"] == {"done": 6, "failed": 1}
    assert result["attempts"]["failed"] == 2 and result["capacity"] == {"cores": 2, "gpus": 1, "nodes": 1}
    assert 0 < result["utilization_mean_pct"]["gpus"] <= 100
    saved = json.loads((tmp_path / "r" / "report.json").read_text())
    assert all(key in saved for key in REQUIRED)
    lines = (tmp_path / "r" / "tasks.csv").read_text().splitlines()
    assert len(lines) == 8 and lines[0].startswith("key,name,pool,tags,state,submitted,ready,placed,started,ended")


def test_report_json_on_the_command_line(campaign, capsys):
    assert main(["report", str(campaign), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert all(key in result for key in REQUIRED)
    assert set(result["utilization_mean_pct"]) == {"cores", "gpus"}
    assert set(result["overheads"]) == {"scheduling", "launch", "data_in", "data_out", "result_return"}
    assert main(["report", str(campaign)]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and (campaign / "report" / "report.html").exists()
    # queueing behind busy cores is the campaign's shape, not steerflow's cost: the line says them apart
    waiting, ours = result["overheads"]["scheduling"]["share_pct"], result["framework_overhead_share_pct"]
    assert f"{waiting:.1f} % waiting for resources and {ours:.1f} % steerflow's overhead" in out
    assert "tasks: 6 done, 1 failed" in out


@needs_chromium
def test_report_in_headless_chromium(campaign, tmp_path):
    result = build(campaign, tmp_path / "r")
    url = (tmp_path / "r" / "report.html").as_uri()
    shot = tmp_path / "report.png"
    chromium(url, tmp_path, screenshot=shot)
    assert shot.stat().st_size > 50_000  # a page with figures, not a blank one
    dom = chromium(url, tmp_path)
    assert 'id="fig-gantt"' in dom and "time to completion" in dom
    assert f"{result['utilization_mean_pct']['cores']:.1f} %" in dom


@pytest.mark.slow
def test_report_on_100k_synthetic_tasks_is_bounded(tmp_path):
    """Measured on the 2-core dev machine under load from other jobs: ~15-25 s and ~300 MB (see the note)."""
    script = (
        "import json, resource, sys, time\n"
        "from steerflow.observe import synthetic, report\n"
        "synthetic.write(sys.argv[1], tasks=100_000)\n"
        "t = time.perf_counter(); r = report.build(sys.argv[1]); s = time.perf_counter() - t\n"
        "print(json.dumps({'s': s, 'mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,"
        " 'done': r['tasks'], 'html': (__import__('pathlib').Path(sys.argv[1]) / 'report' / 'report.html')"
        ".stat().st_size}))\n")
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "big")], capture_output=True, text=True,
                         timeout=600, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert out.returncode == 0, out.stderr[-3000:]
    numbers = json.loads(out.stdout.strip().splitlines()[-1])
    print(numbers)
    assert numbers["done"] == {"done": 100_000}
    assert numbers["s"] < 240 and numbers["mb"] < 2048  # bounds with a wide margin for a loaded CI machine
    assert numbers["html"] < 3 * 2**20  # aggregated figures: the page does not grow with the tasks
