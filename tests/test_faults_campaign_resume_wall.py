"""A resumed campaign's wall time is every driver's, summed; the time while no driver ran is not counted.

Before: example 01 printed (and wrote to report.json) only the last driver's wall time after a resume, and
`learn.Trace.from_journal` counted the hours between a killed driver and its resume as campaign time (a goal
reached "86,000 s after the start" after a resume the next day).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from steerflow import journal_files, learn

from .conftest import wait_until

SCRIPT = textwrap.dedent("""
    import json, sys, time
    import steerflow as sf

    def simulate(i):
        time.sleep(0.2)
        return float(i)

    camp = sf.Campaign(sys.argv[1], resume=True, progress=False, allocation=sf.Allocation.declare(nodes=1, cores=2),
                       pools={"simulate": {"cores": 2}})
    for i in range(16):
        camp.submit(sf.Function(simulate, args=(i,), pool="simulate", tags=(f"candidate={i}",)))
    print(json.dumps(camp.run()))
""")
GAP = 5000.0  # seconds the test moves the first driver's journal back: as if resumed 83 minutes later


def _shift(directory: Path, seconds: float) -> None:
    """Move everything the journal recorded so far ``seconds`` into the past (the killed driver ran then)."""
    with sqlite3.connect(directory / "journal.db") as conn:
        conn.execute("UPDATE runs SET started = started - ?, ended = ended - ?", (seconds, seconds))
        conn.execute("UPDATE states SET ts = ts - ?, since = since - ?", (seconds, seconds))
        conn.execute("UPDATE results SET started = started - ?, ended = ended - ?", (seconds, seconds))
        conn.execute("UPDATE steering SET ts = ts - ?", (seconds,))
        conn.execute("UPDATE tasks SET submitted = submitted - ?", (seconds,))


def _killed_run(script: Path, directory: Path) -> None:
    proc = subprocess.Popen([sys.executable, str(script), str(directory)], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def done() -> int:
            try:
                with sqlite3.connect(f"file:{directory / 'journal.db'}?mode=ro", uri=True) as conn:
                    return conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
            except sqlite3.Error:
                return 0
        assert wait_until(lambda: done() >= 4, timeout=60)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


def test_the_summary_and_the_trace_of_a_resumed_campaign_count_only_the_drivers_time(tmp_path):
    import json

    script, directory = tmp_path / "camp.py", tmp_path / "run"
    script.write_text(SCRIPT)
    _killed_run(script, directory)
    _shift(directory, GAP)
    with sqlite3.connect(directory / "journal.db") as conn:
        drivers, first = journal_files.drivers_wall(conn)
    assert drivers == 1 and 0.2 < first < 60, first  # the killed driver: its start to its last state change
    out = subprocess.run([sys.executable, str(script), str(directory)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["resumed"] and summary["drivers"] == 2, summary
    assert summary["campaign_elapsed_s"] == pytest.approx(first + summary["elapsed_s"], abs=0.05), summary
    assert summary["campaign_elapsed_s"] < 120, summary  # the 5,000 s gap is not in it
    with sqlite3.connect(directory / "journal.db") as conn:
        assert journal_files.drivers_wall(conn)[0] == 2 and journal_files.drivers_wall(conn)[1] < 120
    trace = learn.Trace.from_journal(directory, pool="simulate")
    assert len(trace.evaluations) == 16
    latest = max(e.ended for e in trace.evaluations) - trace.start
    assert 0 < latest < 120, latest  # seconds of campaign time, not the 5,000 s since the first driver's start
    goal = learn.Goal.top({i: float(i) for i in range(16)}, count=16, needed=16, goal="min")
    assert trace.solved(goal)[1] < 120
    from steerflow.observe import metrics

    result = metrics.compute(directory)  # `steerflow report`: utilisation over the time drivers ran
    assert result["ttc_s"] > GAP and 0 < result["drivers_s"] < 120, result
    assert result["utilization_mean_pct"]["cores"] > 10, result["utilization_mean_pct"]  # was 0.04 %


def test_the_report_of_a_campaign_stopped_and_resumed_leaves_out_the_time_between(tmp_path):
    """A driver that ended cleanly (its end journaled), resumed 5,000 s later."""
    from steerflow.observe import metrics

    script, directory = tmp_path / "camp.py", tmp_path / "run"
    script.write_text(SCRIPT.replace("range(16)", "range(4)"))
    for _ in range(2):
        out = subprocess.run([sys.executable, str(script), str(directory)], capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stderr[-3000:]
        _shift(directory, GAP)
    result = metrics.compute(directory)
    assert result["ttc_s"] > GAP and result["drivers_s"] < 120, result
    assert result["utilization_mean_pct"]["cores"] > 5, result["utilization_mean_pct"]


def test_a_campaign_run_by_one_driver_keeps_its_times(tmp_path):
    import json

    script, directory = tmp_path / "camp.py", tmp_path / "run"
    script.write_text(SCRIPT)
    out = subprocess.run([sys.executable, str(script), str(directory)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["drivers"] == 1 and summary["campaign_elapsed_s"] == summary["elapsed_s"]
    with sqlite3.connect(directory / "journal.db") as conn:
        results = dict(conn.execute("SELECT key, ended FROM results"))
    trace = learn.Trace.from_journal(directory, pool="simulate")
    assert sorted(e.ended for e in trace.evaluations) == sorted(results.values())


@pytest.mark.slow
def test_example_01_killed_and_resumed_reports_the_whole_campaigns_wall_time(tmp_path):
    """`steerflow run` of example 01 (--replay, small), SIGKILL mid-run, 5,000 s later `steerflow resume`."""
    import json

    pytest.importorskip("rdkit")
    pytest.importorskip("sklearn")
    example = Path(__file__).resolve().parent.parent / "examples" / "01-active-learning-ip" / "campaign.py"
    steerflow = [sys.executable, "-c", "import sys; from steerflow.__main__ import main; sys.exit(main())"]
    directory = tmp_path / "al"
    flags = ["--replay", "--candidates", "300", "--budget", "60", "--first", "8", "--retrain-after", "8"]
    proc = subprocess.Popen([*steerflow, "run", str(example), *flags, "--dir", str(directory)], cwd=tmp_path,
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def results() -> int:
            try:
                with sqlite3.connect(f"file:{directory / 'journal.db'}?mode=ro", uri=True) as conn:
                    return conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
            except sqlite3.Error:
                return 0
        assert wait_until(lambda: results() >= 20, timeout=120)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    _shift(directory, GAP)
    out = subprocess.run([*steerflow, "resume", str(directory)], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "(resumed: 2 drivers, summed; this one" in out.stdout, out.stdout[-3000:]
    report = json.loads((directory / "report.json").read_text())
    assert report["drivers"] == 2 and report["elapsed_s"] > report["this_driver_elapsed_s"] > 0, report
    assert report["elapsed_s"] < 600, report  # not the 5,000 s between the drivers
    reached = [line for line in out.stdout.splitlines() if "after its start" in line]
    if reached:  # (the goal may not be reached with 60 simulations) its time is campaign time too
        assert float(reached[0].split(" s after its start")[0].split(", ")[-1]) < 600, reached


def test_steerflow_run_of_a_resumed_pipeline_says_the_whole_campaigns_time(tmp_path):
    spec = Path(__file__).resolve().parent.parent / "examples" / "02-yaml-pipeline" / "pipeline.yaml"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    outs = [subprocess.run([sys.executable, "-m", "steerflow", "run", *extra, "--dir", str(tmp_path / "p"), str(spec)],
                           capture_output=True, text=True, timeout=120, env=env) for extra in ([], ["--resume"])]
    assert all(o.returncode == 0 for o in outs), [o.stderr[-2000:] for o in outs]
    assert "drivers" not in outs[0].stdout and "(2 drivers: " in outs[1].stdout and " s in all)" in outs[1].stdout
