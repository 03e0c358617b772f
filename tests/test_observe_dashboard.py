"""`steerflow run --dashboard` / `steerflow dashboard`: a live page behind a token, checked in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .chromium import chromium, needs_chromium
from .conftest import wait_until

pytest.importorskip("tornado", reason="the dashboard needs tornado (pip install 'steerflow[dashboard]')")

SCRIPT = Path(__file__).parent / "campaigns" / "gated_campaign.py"


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _api(url: str) -> dict:
    base, query = url.split("?", 1)
    status, body = _get(f"{base}api/metrics?{query}")
    assert status == 200
    return json.loads(body)


@needs_chromium
def test_live_dashboard_beside_a_run(tmp_path):
    directory, gates = tmp_path / "camp", tmp_path / "gates"
    gates.mkdir()
    driver = subprocess.Popen([sys.executable, "-m", "steerflow.cli", "run", "--dashboard", str(SCRIPT), str(directory),
                               str(gates)], stderr=subprocess.PIPE, text=True, start_new_session=True,
                              env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    try:
        lines: list[str] = []
        threading.Thread(target=lambda: lines.extend(driver.stderr), daemon=True).start()
        assert wait_until(lambda: any("http://" in line for line in lines) or driver.poll() is not None, timeout=60)
        url = re.search(r"http://\S+", "".join(lines)).group(0)
        base, token = url.split("?token=")
        assert base.startswith("http://127.0.0.1:")  # loopback only, port chosen by the OS
        assert wait_until(lambda: _api(url)["snapshot"]["busy_cores"] == 2, timeout=60)
        # nothing without the token: the page, the API and the figures
        for path in ("", "api/metrics", "figure/gantt.png"):
            assert _get(base + path)[0] == 403
            assert _get(f"{base}{path}?token=wrong-{token}")[0] == 403
        assert _get(f"{base}figure/gantt.png?token={token}")[0] == 200
        before = _api(url)
        assert before["snapshot"]["finished"] == 0 and len(before["running"]) == 2
        assert {r["where"] for r in before["running"]} == {"node0[c0]", "node0[c1]"}
        dom = chromium(url, tmp_path, budget_ms=3000)
        assert "0 of 4 tasks finished" in dom and 'id="fig-gantt"' in dom and 'id="fig-utilisation"' in dom
        assert "Last update" in dom  # the page's own refresh ran with the token
        assert "403" in chromium(base, tmp_path)  # a browser without the token is refused too
        for i in (0, 1):  # one ends well, one fails
            (gates / f"go-{i}").touch()
        assert wait_until(lambda: _api(url)["snapshot"]["finished"] == 2, timeout=60)
        after = _api(url)
        assert after["snapshot"]["tasks"].get("done") == 1 and after["snapshot"]["tasks"].get("failed") == 1
        assert after["failures"][0]["key"] == 2 and "fails on purpose" in after["failures"][0]["error"]
        assert after["snapshot"]["throughput_tasks_per_s"] > 0 and after["snapshot"]["eta_s"] is not None
        shot = tmp_path / "dashboard.png"
        chromium(url, tmp_path, screenshot=shot, budget_ms=3000)
        assert shot.stat().st_size > 30_000
        dom = chromium(url, tmp_path, budget_ms=3000)
        assert "2 of 4 tasks finished" in dom and "fails on purpose" in dom  # the numbers changed while it ran
        for i in (2, 3):
            (gates / f"go-{i}").touch()
        assert driver.wait(timeout=60) == 1  # ran to the end; 1: a failed task no agent handled
        assert wait_until(lambda: _refused(url), timeout=30)  # the dashboard ended with the run
    finally:
        for i in range(4):
            (gates / f"go-{i}").touch()
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()


def _refused(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2)
    except (urllib.error.URLError, ConnectionError, OSError) as err:
        return not isinstance(err, urllib.error.HTTPError)
    return False


def test_dashboard_command_serves_a_finished_campaign(tmp_path):
    from steerflow import Allocation, Campaign, Function

    camp = Campaign(tmp_path / "c", allocation=Allocation.declare(nodes=1, cores=1), progress=False)
    camp.submit(Function(abs, args=(-1,)))
    camp.run()
    proc = subprocess.Popen([sys.executable, "-m", "steerflow.cli", "dashboard", str(tmp_path / "c")],
                            stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/\?token=\S+", line).group(0)
        data = _api(url)
        assert data["snapshot"]["finished"] == 1 and not data["snapshot"]["live"]
        assert data["metrics"]["tasks"] == {"done": 1}
        status, body = _get(url)
        assert status == 200 and b"1 of 1 tasks finished" in body
        host_spoofed = urllib.request.Request(url, headers={"Host": "attacker.example"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(host_spoofed, timeout=10)
        assert refused.value.code == 403  # DNS rebinding: a page on another name cannot read it
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
