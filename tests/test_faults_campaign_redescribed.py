"""A task whose description changed in the script since the journal was written: it runs again ONCE.

Before: the journal kept the task's first description, so every later resume found it changed again,
warned again, and ran it again (and a resume killed before the new run ended replayed the OLD result for
the NEW task). Now the resume that finds the change records the new description, drops the old result,
and later resumes replay the new result, in the order this driver delivered it, without a word.
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

from .conftest import wait_until

SCRIPT = textwrap.dedent("""
    import os, sys, time
    import steerflow as sf

    def first(x):
        return x

    def second(x):
        with open(os.environ["RUNS"], "a") as f:
            f.write(f"{x}\\n")
        time.sleep(float(os.environ.get("NAP", "0")))
        return x + 100

    fn = second if os.environ.get("CHANGED") else first
    camp = sf.Campaign(sys.argv[1], resume=True, progress=False,
                       allocation=sf.Allocation.declare(nodes=1, cores=2))
    seen = []

    @camp.on_result()
    def got(result, ctx):
        seen.append(result.value)
        if len(seen) == 1:  # a handler's submission (key 4): on resume it comes after the replay passed
            ctx.submit(sf.Function(first, args=(7,)))  # its journaled delivery (which used to hang the campaign)

    for i in range(3):
        camp.submit(sf.Function(fn, args=(i,)))
    summary = camp.run()
    print("seen", seen, summary["stop_reason"])
""")


def run(script: Path, directory: Path, runs: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script), str(directory)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "RUNS": str(runs), **env})


def seen(out: subprocess.CompletedProcess) -> list[int]:
    assert out.returncode == 0 and "seen [" in out.stdout, out.stderr[-3000:]
    return [int(v) for v in out.stdout.split("seen [")[1].split("]")[0].split(", ")]


def names(directory: Path) -> list[str]:
    with sqlite3.connect(directory / "journal.db") as conn:
        return [row[0] for row in conn.execute("SELECT name FROM tasks ORDER BY key")]


def test_a_changed_task_is_journaled_anew_once_and_later_resumes_replay_its_new_result(tmp_path):
    script, directory, runs = tmp_path / "camp.py", tmp_path / "run", tmp_path / "runs"
    script.write_text(SCRIPT)
    one = run(script, directory, runs)
    assert sorted(seen(one)) == [0, 1, 2, 7]
    two = run(script, directory, runs, CHANGED="1")
    assert sorted(seen(two)) == [7, 100, 101, 102]
    assert two.stderr.count("running it again") == 3, two.stderr
    assert sorted(runs.read_text().split()) == ["0", "1", "2"]
    assert names(directory) == ["second", "second", "second", "first"]
    three = run(script, directory, runs, CHANGED="1")  # the same script again: nothing changed, nothing runs
    assert seen(three) == seen(two)  # replayed in the order the second driver delivered them
    assert "running it again" not in three.stderr and "not deterministic" not in three.stderr, three.stderr
    assert sorted(runs.read_text().split()) == ["0", "1", "2"], "a task ran again on the third run"


def test_a_resume_killed_before_the_changed_task_ended_never_replays_its_old_result(tmp_path):
    script, directory, runs = tmp_path / "camp.py", tmp_path / "run", tmp_path / "runs"
    script.write_text(SCRIPT)
    assert run(script, directory, runs).returncode == 0
    proc = subprocess.Popen([sys.executable, str(script), str(directory)], start_new_session=True,
                            env={**os.environ, "RUNS": str(runs), "CHANGED": "1", "NAP": "60"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # the new descriptions are committed once the changed tasks started (their rows come first)
        assert wait_until(lambda: runs.exists() and len(runs.read_text().split()) >= 2, timeout=60)
        assert wait_until(lambda: names(directory)[:2] == ["second", "second"], timeout=30)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    four = run(script, directory, runs, CHANGED="1")
    assert sorted(seen(four)) == [7, 100, 101, 102]  # never an old result
    assert "not deterministic" not in four.stderr, four.stderr


def test_a_new_result_committed_but_not_delivered_before_a_kill_is_delivered_on_resume(tmp_path):
    """The crash window between a result's commit and its delivery, for a task journaled anew."""
    script, directory, runs = tmp_path / "camp.py", tmp_path / "run", tmp_path / "runs"
    script.write_text(SCRIPT)
    assert run(script, directory, runs).returncode == 0
    with sqlite3.connect(directory / "journal.db") as conn:
        before = conn.execute("SELECT MAX(seq) FROM steering").fetchone()[0]
    two = run(script, directory, runs, CHANGED="1")
    assert sorted(seen(two)) == [7, 100, 101, 102]
    with sqlite3.connect(directory / "journal.db") as conn:  # as if killed after the commit, before delivery
        conn.execute("DELETE FROM steering WHERE seq > ? AND kind IN ('result', 'results')", (before,))
    three = run(script, directory, runs, CHANGED="1")
    assert sorted(seen(three)) == [7, 100, 101, 102]
    assert sorted(runs.read_text().split()) == ["0", "1", "2"], "a task whose new result is journaled ran again"


CHANGING = textwrap.dedent("""
    import os, random, sys, time
    import steerflow as sf

    def f0(x):
        return x

    def f1(x):
        return x + 1000

    def f2(x):
        time.sleep(0.01)
        return x + 2000

    FNS = [f0, f1, f2]
    choice = [random.Random(int(os.environ["VARIANT"])).randrange(3) for _ in range(64)]
    camp = sf.Campaign(sys.argv[1], resume=True, progress=False, allocation=sf.Allocation.declare(nodes=1, cores=2))
    count = [0]

    @camp.on_result()
    def got(result, ctx):
        count[0] += 1
        if count[0] % 3 == 0 and count[0] < 40:  # follow-ups (unchanged), submitted as results arrive
            ctx.submit(sf.Function(f0 if count[0] % 2 else FNS[choice[count[0] % 64]], args=(count[0],)))

    for i in range(12):
        camp.submit(sf.Function(FNS[choice[i]], args=(i,)))
    summary = camp.run()
    print("OK", summary["results_seen"], summary["stop_reason"])
""")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_scripts_that_change_between_runs_and_drivers_killed_at_random_never_hang(tmp_path, seed):
    """Each run picks other functions for some keys (and so other follow-ups); some runs are SIGKILLed."""
    import random

    rng = random.Random(seed)
    script = tmp_path / "camp.py"
    script.write_text(CHANGING)
    for step in range(5):
        variant, kill = rng.randrange(3), step < 4 and rng.random() < 0.4
        proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "run")], start_new_session=True,
                                env={**os.environ, "VARIANT": str(variant)}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        if kill:
            wait_until(lambda: False, timeout=rng.uniform(0.2, 1.0))  # (a random moment of the run)
            os.killpg(proc.pid, signal.SIGKILL)
        try:
            out, err = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise AssertionError(f"run {step} (variant {variant}) hung") from None
        if not kill:
            assert proc.returncode == 0 and "OK" in out and "Traceback" not in err, (step, err[-3000:])
