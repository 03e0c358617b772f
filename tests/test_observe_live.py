"""The run's terminal view, `steerflow status DIR` and the dashboard show the same live numbers.

One campaign, driven in this process (its terminal view is `ProgressDisplay`), read while it runs
and after it ended by `steerflow status` (a subprocess) and by a dashboard process's /api/metrics.
Counts and busy cores/GPUs must be equal. Throughput and the ETA depend on the moment each view
read the journal (throughput = results in the last minute / time since the first submission while
that is under a minute): each view's value must lie between the values at the earliest and the
latest moment it can have read (the dashboard caches up to its refresh period), give or take the
rounding of the text (0.005 tasks/s, 0.5 s). Once the driver is gone every number is fixed, and the
three views must agree exactly.
"""

from __future__ import annotations

import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from rich.console import Console

import steerflow as sf
from steerflow.observe import live
from steerflow.observe.progress import ProgressDisplay

from .conftest import read_until, wait_until

LINE = re.compile(r"([\d,]+) of ([\d,]+) tasks finished; (\d+)/(\d+) cores and (\d+)/(\d+) GPUs busy now; "
                  r"([\d.]+) tasks/s over the last minute; ETA (?:unknown|([\d,]+) s \(([^)]*)\)|(no driver running))")


def gate(i: int, where: str) -> int:
    deadline = time.monotonic() + 120  # bounded: a test that dies leaves no task behind for long
    while not os.path.exists(os.path.join(where, f"go-{i}")) and time.monotonic() < deadline:
        time.sleep(0.02)
    return i


def parse(text: str) -> dict:
    """The numbers of a `live.describe` line found in ``text`` (line breaks of a narrow terminal undone)."""
    match = LINE.search(" ".join(text.split()))
    assert match, text
    g = match.groups()
    return {"finished": int(g[0].replace(",", "")), "submitted": int(g[1].replace(",", "")),
            "busy_cores": int(g[2]), "cores": int(g[3]), "busy_gpus": int(g[4]), "gpus": int(g[5]),
            "throughput": float(g[6]), "eta": None if g[7] is None else float(g[7].replace(",", "")),
            "basis": g[8] or g[9]}


def terminal_view(display: ProgressDisplay) -> str:
    display.refresh_snapshot()
    out = io.StringIO()
    Console(file=out, width=80, force_terminal=False).print(display._render(80))
    return out.getvalue()


def status_view(directory: Path) -> str:
    env = dict(os.environ, COLUMNS="80", PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run([sys.executable, "-m", "steerflow.cli", "status", str(directory)], capture_output=True,
                          text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def dashboard_view(url: str) -> dict:
    base, query = url.split("?", 1)
    with urllib.request.urlopen(f"{base}api/metrics?{query}", timeout=60) as response:
        return json.loads(response.read())


def test_the_run_view_status_and_the_dashboard_show_the_same_numbers(tmp_path):
    pytest.importorskip("tornado", reason="the dashboard needs tornado (pip install 'steerflow[dashboard]')")
    from steerflow.observe.dashboard import start_beside

    directory, gates = tmp_path / "camp", tmp_path / "gates"
    gates.mkdir()
    camp = sf.Campaign(directory, allocation=sf.Allocation.declare(nodes=1, cores=4, gpus=1), progress=False)
    for i in range(5):
        camp.submit(sf.Function(gate, args=(i, str(gates)), gpus=1 if i == 4 else 0, name=f"gate-{i}",
                                pool="sim" if i % 2 else "ana"))
    for i in (0, 1):
        (gates / f"go-{i}").touch()
    runner = threading.Thread(target=camp.run, kwargs={"stop": sf.stop.tasks(8)})
    runner.start()
    dashboard = None
    try:
        assert wait_until(lambda: live.snapshot(directory)["finished"] == 2
                          and live.snapshot(directory)["busy_cores"] == 3, timeout=60)
        conn = sqlite3.connect(f"file:{directory / 'journal.db'}?mode=ro", uri=True)
        first = conn.execute("SELECT min(submitted) FROM tasks").fetchone()[0]
        conn.close()
        dashboard, url = start_beside(directory)
        assert url, "the dashboard did not start"
        assert wait_until(lambda: time.time() - first >= 3, timeout=30)  # a span that dwarfs the reads' spread
        display = ProgressDisplay(camp)
        t_lo = time.time()
        seen = {"run": parse(terminal_view(display)), "status": parse(status_view(directory))}
        api = dashboard_view(url)
        t_hi = time.time()
        seen["dashboard"] = parse(api["html"]["status"])
        t_lo = min(t_lo, api["snapshot"]["at"])  # the dashboard may answer from its cache
        for name, numbers in seen.items():
            assert {k: numbers[k] for k in ("finished", "submitted", "busy_cores", "cores", "busy_gpus", "gpus",
                                            "basis")} == {"finished": 2, "submitted": 5, "busy_cores": 3,
                                                          "cores": 4, "busy_gpus": 1, "gpus": 1,
                                                          "basis": "task budget of 8"}, name
            # 2 results, both within the last minute, over the time since the first submission
            assert 2 / (t_hi - first) - 0.005 <= numbers["throughput"] <= 2 / (t_lo - first) + 0.005, (name, numbers)
            # 6 tasks of the budget left at that throughput
            assert 3 * (t_lo - first) - 0.5 <= numbers["eta"] <= 3 * (t_hi - first) + 0.5, (name, numbers)
        assert api["snapshot"]["busy_cores"] == 3 and api["snapshot"]["live"] is True
        for i in (2, 3, 4):
            (gates / f"go-{i}").touch()
        runner.join(120)
        assert not runner.is_alive()
        # the driver is gone: every number is fixed, and the three views say exactly the same
        display = ProgressDisplay(camp)
        assert wait_until(lambda: dashboard_view(url)["snapshot"]["live"] is False, timeout=60)
        api = dashboard_view(url)
        texts = {"run": terminal_view(display), "status": status_view(directory), "dashboard": api["html"]["status"]}
        numbers = {name: parse(text) for name, text in texts.items()}
        assert numbers["run"] == numbers["status"] == numbers["dashboard"], numbers
        # 3 of the budget of 8 are left and nothing advances without a driver: no view promises an ETA
        assert numbers["run"]["eta"] is None and numbers["run"]["basis"] == "no driver running", numbers
        assert numbers["run"]["finished"] == 5 and numbers["run"]["busy_cores"] == 0
        assert api["snapshot"] == display.snapshot
    finally:
        for i in range(5):
            (gates / f"go-{i}").touch()
        runner.join(120)
        if dashboard is not None:
            dashboard.terminate()
            dashboard.wait(30)


def test_the_sql_snapshot_equals_the_timeline_snapshot_on_a_synthetic_journal(tmp_path):
    from steerflow.observe import metrics, synthetic

    synthetic.write(tmp_path / "syn", tasks=3000, nodes=4, cores=8, gpus=2)
    sql = live.snapshot(tmp_path / "syn")
    replayed = metrics.snapshot_from(metrics.read(tmp_path / "syn"))
    assert sql == replayed
    assert sql["finished"] == 3000 and sql["cores"] == 32 and sql["gpus"] == 8 and sql["throughput_tasks_per_s"] > 0


def test_steerflow_run_on_a_terminal_and_status_watch_show_the_same_live_line(tmp_path):
    """End to end, on terminals (ptys): the run's own display and `status --watch` print the same numbers."""
    import pty
    import signal

    script = Path(__file__).parent / "campaigns" / "gated_progress.py"
    directory, gates = tmp_path / "camp", tmp_path / "gates"
    gates.mkdir()
    (gates / "go-0").touch()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), COLUMNS="200", LINES="50", TERM="xterm")
    expected = b"1 of 3 tasks finished; 2/2 cores and 0/0 GPUs busy now"
    procs: list[subprocess.Popen] = []
    fds: list[int] = []
    try:
        for argv in (["run", str(script), str(directory), str(gates)], ["status", str(directory), "--watch", "0.2"]):
            if argv[0] == "status":
                assert wait_until(lambda: (directory / "journal.db").exists(), timeout=60)
            master, slave = pty.openpty()
            fds.append(master)
            procs.append(subprocess.Popen([sys.executable, "-m", "steerflow.cli", *argv], env=env, stdin=slave,
                                          stdout=slave, stderr=slave, start_new_session=True))
            os.close(slave)
        seen_run: list[bytes] = []
        seen_watch: list[bytes] = []
        assert read_until(fds[0], seen_run, expected), b"".join(seen_run)[-3000:]
        assert read_until(fds[1], seen_watch, expected), b"".join(seen_watch)[-3000:]
        for output in (seen_run, seen_watch):  # both name the same basis for the ETA
            assert b"(task budget of 3)" in b"".join(output)
        procs[1].send_signal(signal.SIGINT)
        read_until(fds[1], seen_watch, b"\0", timeout=0.5)  # keep the pty drained while it exits
        assert procs[1].wait(timeout=30) == 0
        for i in (1, 2):
            (gates / f"go-{i}").touch()
        assert read_until(fds[0], seen_run, b"3 of 3 tasks finished; 0/2 cores"), b"".join(seen_run)[-3000:]
        assert procs[0].wait(timeout=60) == 0
    finally:
        for i in range(3):
            (gates / f"go-{i}").touch()
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for fd in fds:
            os.close(fd)
